"""Reading REPL lines on a terminal: readline editing, a history file and tab completion.

The REPL asks for lines through :meth:`LineEditor.read_line`; what to complete is the
REPL's (a function of the line so far). ``OLLAMA_NOHISTORY`` turns the history file off,
as it does for the Go CLI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

HISTORY_LENGTH = 1000


def history_disabled() -> bool:
    """``OLLAMA_NOHISTORY`` as Go reads it: any set value but a false one disables saving."""
    value = os.environ.get("OLLAMA_NOHISTORY", "")
    return bool(value) and value not in ("0", "f", "F", "FALSE", "false", "False")


class LineEditor:
    """``input()`` with readline: editing keys, a history file, tab completion.

    ``candidates(line)`` lists the completions for the line up to the cursor; the
    standard library's readline is used when present (GNU readline or libedit).
    """

    def __init__(self, history_path: Path, candidates: Callable[[str], Sequence[str]]) -> None:
        self.history_path = history_path
        self.candidates = candidates
        self.save_history = not history_disabled()
        self.readline: Any = None
        try:
            import readline
        except ImportError:  # pragma: no cover - Windows without pyreadline
            return
        self.readline = readline
        readline.set_completer_delims(" \t\n")
        readline.set_completer(self._complete)
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
        readline.set_history_length(HISTORY_LENGTH)
        with suppress(OSError):
            readline.read_history_file(self.history_path)

    def read_line(self, prompt: str) -> str:
        """One line (EOFError on Ctrl-D, KeyboardInterrupt on Ctrl-C), added to the history."""
        line = input(prompt)
        self._remember()
        return line

    def typed(self) -> str:
        """What was typed on the current line so far (when Ctrl-C interrupted it)."""
        return str(self.readline.get_line_buffer()) if self.readline else ""

    def close(self) -> None:
        """Rewrite the history file, keeping the last HISTORY_LENGTH lines (if it is kept)."""
        if self.save_history and self.readline:
            with suppress(OSError):
                self.readline.write_history_file(self.history_path)

    def _remember(self) -> None:
        """Append the line just read to the history file (when history is saved)."""
        if not (self.save_history and self.readline):
            return
        try:
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.history_path, os.O_WRONLY | os.O_CREAT, 0o600))
            self.readline.append_history_file(1, self.history_path)
        except OSError:
            pass

    def _complete(self, text: str, state: int) -> str | None:
        buffer = self.readline.get_line_buffer()[: self.readline.get_endidx()]
        matches = [c + " " for c in self.candidates(buffer) if c.startswith(text)]
        return matches[state] if state < len(matches) else None
