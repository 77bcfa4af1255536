"""What the terminal is: one place that knows the streams, their TTY-ness, width and colour.

Built once per command (``App.terminal``) and handed to the code that draws: the streamed
answer, the spinner, progress bars, the REPL, prompts for secrets. Tests build one directly,
with string streams and the TTY flags they want (as httpie's ``MockEnvironment``).

Escape codes (colour, cursor movement, spinners, bars) are written only to a stream that is
a terminal and whose ``TERM`` is not ``dumb``; colour also needs ``NO_COLOR`` unset. The width
is read again on every use, so a resized window is followed. Text a server sent is shown
through :func:`sanitise`: its control characters can neither move the cursor nor set the
clipboard.

:func:`guard_standard_streams` (run once by ``main``) makes the process's own streams safe:
a closed descriptor reads as empty or fails on the first write, a reader that stops early
(a broken pipe) ends the command quietly, a full disk is one error.
"""

from __future__ import annotations

import errno
import io
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

from ollamactl.errors import UsageError

DEFAULT_SIZE = (80, 24)
#: C0 controls but tab and line feed, DEL and the C1 controls (CSI, OSC... in 8 bits).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code >= 0x80:  # a C1 control is ESC and a letter in 7 bits: shown so
        return f"^[{chr(code - 0x40)}"
    return f"^{chr(code ^ 0x40)}"


def sanitise(text: str) -> str:
    r"""``text`` with its control characters (but tab and newline) shown in caret notation.

    For text from a server shown to a person: an escape sequence in it (``ESC ]52`` sets the
    clipboard, ``ESC [2J`` clears the screen) is printed as characters, never obeyed.

    >>> sanitise("boom \x1b]52;c;Y2E=\x07 \x1b[2J\x9b31m\tok\n")
    'boom ^[]52;c;Y2E=^G ^[[2J^[[31m\tok\n'
    """
    return _CONTROL.sub(_visible, text) if _CONTROL.search(text) else text


def sanitising(write: Callable[[str], None]) -> Callable[[str], None]:
    """``write`` with its text made safe by :func:`sanitise` first (for a terminal)."""

    def write_sanitised(text: str) -> None:
        write(sanitise(text))

    return write_sanitised


class OutputFailed(UsageError):
    """stdout cannot be written (closed, disk full): the data is lost, which is not a success."""


#: The exit status of a process killed by SIGPIPE, as a shell reports it (128 + 13).
BROKEN_PIPE_EXIT = 141


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwind as Ctrl-C does (a partial answer is saved), then exit
    with 128 + the signal's number, as a shell reports a process that signal ended."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class OutputClosed(Terminated):
    """The reader of stdout went away (a broken pipe): unwind as SIGPIPE's death would, so a
    partial answer is saved, then end quietly with BROKEN_PIPE_EXIT."""

    def __init__(self) -> None:
        super().__init__(BROKEN_PIPE_EXIT - 128)


def binary_stream(name: str) -> BinaryIO:
    """The bytes beneath ``sys.stdin``, ``stdout`` or ``stderr`` (click 8.5 deprecates its own)."""
    stream = getattr(sys, name)
    binary: BinaryIO = getattr(stream, "buffer", stream)
    return binary


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

    def read_secret_line(self, what: str) -> str:
        """The first line of stdin, which must be UTF-8 text: a secret is never guessed at."""
        binary = getattr(self.stdin, "buffer", None)
        if binary is None:
            return self.read_stdin_line()
        try:
            return binary.readline().decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"the {what} on stdin is not UTF-8 text") from None
        except (OSError, ValueError):  # a closed or unreadable stdin holds no secret
            return ""

    def stdin_lines(self) -> Iterator[str]:
        """The lines of stdin as UTF-8, as they arrive; undecodable bytes become U+FFFD."""
        with self._stdin_text() as text:
            for line in text:
                yield without_surrogates(line)

    @contextmanager
    def _stdin_text(self) -> Iterator[TextIO]:
        """Stdin decoded as UTF-8 whatever the locale, its bytes left open afterwards."""
        if self.stdin is None:  # no stdin at all: as empty
            yield io.StringIO()
            return
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


class _GuardedDescriptor(io.RawIOBase):
    """The descriptor of stdout or stderr: a failed write becomes one clean outcome.

    stdout: a broken pipe raises :class:`OutputClosed`, any other failure (a full disk, a
    closed descriptor) :class:`OutputFailed`; stderr: failures are dropped (nowhere to say
    them). After the first failure the bytes are discarded, so that nothing is raised again
    while the process ends.
    """

    def __init__(self, fd: int, name: str, *, closed: bool = False) -> None:
        super().__init__()
        self.fd = fd
        self.name = name
        #: The first failed write (kept), and whether it was raised already.
        self.failure: OSError | None = OSError(errno.EBADF, "it is closed") if closed else None
        self.raised = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return self.failure is None and os.isatty(self.fd)

    @property
    def broken_pipe(self) -> bool:
        """Whether the reader went away."""
        return self.failure is not None and self.failure.errno == errno.EPIPE

    def write(self, data: Any) -> int:
        if self.failure is None:
            try:
                return os.write(self.fd, data)
            except OSError as e:
                self.failure = e
        if self.name != "stdout" or self.raised:
            return len(data)
        self.raised = True
        if self.broken_pipe:
            raise OutputClosed()
        reason = self.failure.strerror or self.failure
        raise OutputFailed(f"cannot write the output to stdout: {reason}")


@dataclass
class StandardStreams:
    """The guarded stdout and stderr of the process (see :func:`guard_standard_streams`)."""

    stdout: _GuardedDescriptor
    stderr: _GuardedDescriptor

    def exit_code(self, code: int) -> int:
        """The exit code once the command ended with ``code``: a lost output is not a success.

        Flushes stdout; a broken pipe anywhere makes the code BROKEN_PIPE_EXIT, a failed
        stdout turns a 0 into 2 with one error line.
        """
        try:
            sys.stdout.flush()
        except OutputClosed:
            pass
        except OutputFailed as e:
            if code == 0:
                _say(f"Error: {e}")
                code = int(e.exit_code)
        return BROKEN_PIPE_EXIT if self.stdout.broken_pipe else code


def _say(line: str) -> None:
    with suppress(OSError, ValueError, AttributeError):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def guard_standard_streams() -> StandardStreams:
    """Make stdin, stdout and stderr safe for the whole process; once, at start.

    A descriptor that was closed (``>&-``) is reopened on the null device, so no file or
    socket opened later takes its number: stdin then reads as empty, stderr drops what is
    written, and stdout fails on the first write. stdout and stderr are rewrapped over
    :class:`_GuardedDescriptor` with their encoding and buffering kept.
    """
    closed = {fd for fd in (0, 1, 2) if not _is_open(fd)}
    for fd in sorted(closed):
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    if 0 in closed:
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    wrapped = {}
    for fd, name in ((1, "stdout"), (2, "stderr")):
        old = getattr(sys, name)
        raw = _GuardedDescriptor(fd, name, closed=fd in closed)
        stream = io.TextIOWrapper(
            io.BufferedWriter(raw),
            encoding=getattr(old, "encoding", None) or "utf-8",
            errors=getattr(old, "errors", None) or "strict",
            line_buffering=bool(getattr(old, "line_buffering", False)),
            write_through=name == "stderr",
        )
        with suppress(AttributeError, ValueError, OSError):
            old.flush()
        setattr(sys, name, stream)
        wrapped[name] = raw
    return StandardStreams(wrapped["stdout"], wrapped["stderr"])


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
