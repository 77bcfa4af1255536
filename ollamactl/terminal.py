"""What the terminal is: one place that knows the streams, their TTY-ness, width and colour.

Built once per command (``App.terminal``) and handed to the code that draws: the streamed
answer, the spinner, progress bars, the REPL, prompts for secrets. Tests build one directly,
with string streams and the TTY flags they want (as httpie's ``MockEnvironment``).

Escape codes (colour, cursor movement, spinners, bars) are written only to a stream that is
a terminal and whose ``TERM`` is not ``dumb``; colour also needs ``NO_COLOR`` unset. The width
is read again on every use, so a resized window is followed.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TextIO

DEFAULT_SIZE = (80, 24)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


@dataclass
class Terminal:
    """The three standard streams, whether each is a TTY, and the environment that styles them."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    stdin_is_tty: bool = False
    stdout_is_tty: bool = False
    stderr_is_tty: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    #: A fixed (columns, lines) for tests; ``None`` asks the terminal on every use.
    fixed_size: tuple[int, int] | None = None

    @classmethod
    def system(cls, env: Mapping[str, str] | None = None) -> Terminal:
        """The process's streams as they are now (``sys.stdin``/``stdout``/``stderr``)."""
        return cls(
            stdin=sys.stdin,
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin_is_tty=_isatty(sys.stdin),
            stdout_is_tty=_isatty(sys.stdout),
            stderr_is_tty=_isatty(sys.stderr),
            env=os.environ if env is None else env,
        )

    @property
    def dumb(self) -> bool:
        """``TERM=dumb``: a terminal that understands no escape codes."""
        return self.env.get("TERM") == "dumb"

    def is_tty(self, stream: TextIO) -> bool:
        """Whether ``stream`` (one of the three, or another one) is a terminal."""
        known = {
            id(self.stdin): self.stdin_is_tty,
            id(self.stdout): self.stdout_is_tty,
            id(self.stderr): self.stderr_is_tty,
        }
        return known.get(id(stream), False)

    def fancy(self, stream: TextIO) -> bool:
        """Whether escape codes (cursor movement, spinner, bars) may be written to ``stream``."""
        return self.is_tty(stream) and not self.dumb

    def color(self, stream: TextIO) -> bool:
        """Whether colour may be written to ``stream`` (also off when ``NO_COLOR`` is set)."""
        return self.fancy(stream) and not self.env.get("NO_COLOR")

    @property
    def interactive(self) -> bool:
        """A person at both ends: stdin and stdout are terminals (the REPL may start)."""
        return self.stdin_is_tty and self.stdout_is_tty

    def size(self, stream: TextIO | None = None) -> tuple[int, int]:
        """(columns, lines) of the terminal behind ``stream`` (stdout by default), read now.

        A terminal that reports no size (a fresh pseudo-terminal) or no terminal at all
        falls back to ``COLUMNS``/``LINES``, then 80x24, as the Go CLI does.
        """
        if self.fixed_size is not None:
            return self.fixed_size
        try:
            columns, lines = os.get_terminal_size((stream or self.stdout).fileno())
        except (AttributeError, OSError, ValueError):
            columns = lines = 0
        return (
            columns or _positive(self.env.get("COLUMNS")) or DEFAULT_SIZE[0],
            lines or _positive(self.env.get("LINES")) or DEFAULT_SIZE[1],
        )

    def width(self, stream: TextIO | None = None) -> int:
        """Columns of the terminal behind ``stream`` (stdout by default), read now."""
        return self.size(stream)[0]

    def read_stdin(self) -> str:
        """All of stdin as UTF-8; undecodable bytes become U+FFFD (as Go's JSON encoder does)."""
        with self._stdin_text() as text:
            return without_surrogates(text.read())

    def read_stdin_line(self) -> str:
        """The first line of stdin as UTF-8 (undecodable bytes become U+FFFD)."""
        with self._stdin_text() as text:
            return without_surrogates(text.readline())

    def stdin_lines(self) -> Iterator[str]:
        """The lines of stdin as UTF-8, as they arrive; undecodable bytes become U+FFFD."""
        with self._stdin_text() as text:
            for line in text:
                yield without_surrogates(line)

    @contextmanager
    def _stdin_text(self) -> Iterator[TextIO]:
        """Stdin decoded as UTF-8 whatever the locale, its bytes left open afterwards."""
        binary = getattr(self.stdin, "buffer", None)
        if binary is None:  # already text (e.g. a StringIO in a test)
            yield self.stdin
            return
        text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace")
        try:
            yield text
        finally:
            with suppress(ValueError):  # stdin was closed under us
                text.detach()


def _positive(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def without_surrogates(text: str) -> str:
    """Text with the bytes Python could not decode (surrogate escapes) replaced by U+FFFD.

    >>> without_surrogates("caf\\udce9 ?")
    'caf\\ufffd ?'
    """
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
