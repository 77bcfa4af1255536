"""Reading REPL lines on a terminal: readline editing, a history file and tab completion.

The REPL asks for lines through :meth:`LineEditor.read_line`; what to complete is the
REPL's (a function of the line so far). ``OLLAMA_NOHISTORY`` turns the history file off,
as it does for the Go CLI. With GNU readline, a pasted block arrives as one line (bracketed
paste) and an empty line shows the Go CLI's grey placeholder text.
"""

from __future__ import annotations

import ctypes
import locale
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from ollamactl.paths import private_folder
from ollamactl.terminal import without_surrogates

HISTORY_LENGTH = 1000
PLACEHOLDER_COLOR = "\x1b[38;5;245m"
UTF8_LOCALES = ("C.UTF-8", "en_US.UTF-8")
_GETC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
_REDISPLAY = ctypes.CFUNCTYPE(None)


def history_disabled() -> bool:
    """``OLLAMA_NOHISTORY`` as Go reads it: any set value but a false one disables saving."""
    value = os.environ.get("OLLAMA_NOHISTORY", "")
    return bool(value) and value not in ("0", "f", "F", "FALSE", "false", "False")


def use_utf8_locale() -> None:
    """Let readline edit characters, not bytes, when the text is UTF-8 but the locale is not.

    Under ``LC_ALL=C`` Python reads UTF-8 (its UTF-8 mode) while GNU readline works per
    byte: a first non-ASCII key is dropped and Backspace removes one byte of a character.
    Readline takes its locale from the environment when it starts (and CPython sets it
    again from there for every line), so ``LC_ALL`` must name a UTF-8 locale before
    ``readline`` is imported. Nothing changes under a UTF-8 or another 8-bit locale.
    """
    if "readline" in sys.modules or (sys.stdin.encoding or "").lower() not in ("utf-8", "utf8"):
        return
    if "utf" in locale.nl_langinfo(locale.CODESET).lower().replace("-", ""):
        return
    current = locale.setlocale(locale.LC_CTYPE)
    for name in UTF8_LOCALES:
        try:
            locale.setlocale(locale.LC_CTYPE, name)
        except locale.Error:
            continue
        locale.setlocale(locale.LC_CTYPE, current)
        os.environ["LC_ALL"] = name
        return


class Placeholder:
    """Grey text after the prompt while the line is empty, erased by the next key (as Go).

    GNU readline has no such setting; it is drawn from readline's redisplay function and
    erased from its key-reading function, both replaced through ctypes for as long as the
    editor is open. ``text`` is what to show on the current line ("" for nothing).
    """

    def __init__(self, library: Any, fd: int) -> None:
        self.fd = fd
        self.text = ""
        self.shown = False
        self._getc_slot = ctypes.c_void_p.in_dll(library, "rl_getc_function")
        self._redisplay_slot = ctypes.c_void_p.in_dll(library, "rl_redisplay_function")
        self._line_end = ctypes.c_int.in_dll(library, "rl_end")
        self._cursor_column = ctypes.c_int.in_dll(library, "_rl_last_c_pos")
        self._saved = (self._getc_slot.value, self._redisplay_slot.value)
        self._original_getc = _GETC(self._saved[0])
        self._original_redisplay = _REDISPLAY(self._saved[1])
        # the callbacks must live as long as readline may call them
        self._getc = _GETC(self._read_key)
        self._redisplay = _REDISPLAY(self._draw)
        self._getc_slot.value = ctypes.cast(self._getc, ctypes.c_void_p).value
        self._redisplay_slot.value = ctypes.cast(self._redisplay, ctypes.c_void_p).value

    @classmethod
    def install(cls, readline: Any, stream: Any) -> Placeholder | None:
        """A placeholder for GNU readline's line on ``stream``, or None where it cannot be."""
        if "libedit" in (readline.__doc__ or ""):
            return None
        try:
            return cls(ctypes.CDLL(readline.__file__), stream.fileno())
        except (AttributeError, OSError, ValueError, TypeError):
            return None  # readline linked in statically, an unusual build, no file behind

    def remove(self) -> None:
        """Give readline its own functions back."""
        self._getc_slot.value, self._redisplay_slot.value = self._saved

    def erase_after_interrupt(self, prompt: str) -> None:
        """After Ctrl-C (readline has put the cursor at column 0): the prompt without the text."""
        if self.shown:
            self._write(f"\r{prompt}\x1b[K")
            self.shown = False

    def _read_key(self, stream: int) -> int:
        key = int(self._original_getc(stream))
        if self.shown:
            self.shown = False
            self._write("\x1b[K")
        return key

    def _draw(self) -> None:
        if self._cursor_column.value == 0:  # readline draws the line anew (after a resize):
            self._write("\r")  # from where it thinks the cursor is, as its own redisplay does
        try:
            self._original_redisplay()
        except BaseException:  # a pending Ctrl-C: readline is cleaning up after it
            return  # (input() raises KeyboardInterrupt all the same)
        if self.text and self._line_end.value == 0:  # again after a resize
            count = len(self.text.encode("utf-8"))
            self._write(f"{PLACEHOLDER_COLOR}{self.text}\x1b[{count}D\x1b[0m")
            self.shown = True

    def _write(self, text: str) -> None:
        with suppress(OSError):
            os.write(self.fd, text.encode("utf-8"))


class LineEditor:
    """``input()`` with readline: editing keys, a history file, tab completion.

    ``candidates(line)`` lists the completions for the line up to the cursor; the
    standard library's readline is used when present (GNU readline or libedit).
    ``paste``: a pasted block is one line (GNU readline's bracketed paste);
    ``placeholders`` maps a prompt to the grey text shown while its line is empty.
    """

    def __init__(
        self,
        history_path: Path,
        candidates: Callable[[str], Sequence[str]],
        *,
        paste: bool = False,
        placeholders: Mapping[str, str] | None = None,
    ) -> None:
        self.history_path = history_path
        self.candidates = candidates
        self.save_history = not history_disabled()
        self.placeholders = placeholders or {}
        self.placeholder: Placeholder | None = None
        self.readline: Any = None
        use_utf8_locale()
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
            if paste:
                self._enable_bracketed_paste()
            if self.placeholders:
                self.placeholder = Placeholder.install(readline, sys.stdout)
        readline.set_history_length(HISTORY_LENGTH)
        with suppress(OSError):
            readline.read_history_file(self.history_path)

    def _enable_bracketed_paste(self) -> None:
        """Pasted text is inserted as it is (newlines too) instead of run key by key.

        CPython turns it off; without reverse video on the pasted text (readline 8.1+).
        """
        self.readline.parse_and_bind("set enable-bracketed-paste on")
        if getattr(self.readline, "_READLINE_RUNTIME_VERSION", 0) >= 0x0801:
            self.readline.parse_and_bind("set enable-active-region off")

    def read_line(self, prompt: str) -> str:
        """One line (EOFError on Ctrl-D, KeyboardInterrupt on Ctrl-C), added to the history.

        A pasted block comes as one line holding newlines; text that is not valid UTF-8
        has U+FFFD in place of the bytes.
        """
        placeholder = self.placeholder
        if placeholder is not None:
            placeholder.text = self.placeholders.get(prompt, "")
        try:
            line = input(prompt)
        except KeyboardInterrupt:
            if placeholder is not None:
                placeholder.erase_after_interrupt(prompt)
            raise
        self._remember()
        return without_surrogates(line)

    def typed(self) -> str:
        """What was typed on the current line so far (when Ctrl-C interrupted it)."""
        return str(self.readline.get_line_buffer()) if self.readline else ""

    def close(self) -> None:
        """Rewrite the history file, keeping the last HISTORY_LENGTH lines (if it is kept)."""
        if self.placeholder is not None:
            self.placeholder.remove()
            self.placeholder = None
        if self.save_history and self.readline:
            with suppress(OSError):
                self.readline.write_history_file(self.history_path)

    def _remember(self) -> None:
        """Append the line just read to the history file (when history is saved)."""
        if not (self.save_history and self.readline):
            return
        try:
            private_folder(self.history_path.parent)
            os.close(os.open(self.history_path, os.O_WRONLY | os.O_CREAT, 0o600))
            self.readline.append_history_file(1, self.history_path)
        except OSError:
            pass

    def _complete(self, text: str, state: int) -> str | None:
        buffer = self.readline.get_line_buffer()[: self.readline.get_endidx()]
        matches = [c + " " for c in self.candidates(buffer) if c.startswith(text)]
        return matches[state] if state < len(matches) else None
