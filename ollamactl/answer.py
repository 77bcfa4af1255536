"""Showing a streamed answer: tokens to stdout, thinking to stderr, as they arrive.

Used by ``run``, ``chat`` and the REPL. On a terminal words wrap as the Go CLI wraps
them and a spinner waits for the first token; off a terminal nothing but the text is
written. ``StreamPrinter._consume`` is the per-token path and is kept minimal.
"""

from __future__ import annotations

import itertools
import json
import threading
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator, MutableSequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import click

from ollamactl.errors import OllamactlError
from ollamactl.render import to_json
from ollamactl.terminal import Terminal, sanitise, sanitising

if TYPE_CHECKING:
    from ollamactl.client import JSON

GREY = "\x1b[38;5;245m"
BOLD = "\x1b[1m"
RESET = "\x1b[0m"
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
NO_MESSAGE: JSON = {}  # stands in for a chat event's missing or malformed message


def char_width(char: str) -> int:
    """Terminal columns a character takes."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


class WordWrapper:
    """Wrap streamed text on a terminal as the Go CLI does: a word crossing the margin moves down.

    The word already printed is erased (cursor back, clear to end of line) and
    reprinted on the next line, followed by the character that crossed (a space too,
    as Go). Escape sequences in the text take no columns and are never split.
    Used only when the stream is a terminal; ``width`` is asked for every chunk, so a
    resized window is followed.
    """

    def __init__(self, stream: TextIO, width: Callable[[], int]) -> None:
        self.stream = stream
        self.width = width
        self.column = 0
        self.word = ""
        self.escape = ""  # an escape sequence begun and not yet ended

    def write(self, text: str) -> None:
        """Print a chunk of the answer at once, moving a word that crosses the margin down."""
        width = self.width()
        limit, longest_word = width - 5, width - 10
        out = []
        for char in text:
            if self.escape or char == "\x1b":
                self.escape = "" if escape_ended(self.escape + char) else self.escape + char
                out.append(char)
                continue
            char_columns = char_width(char)
            if char not in "\r\n" and self.column + char_columns > limit:
                word_width = sum(map(char_width, self.word))
                if self.word and word_width <= longest_word:
                    out.append(f"\x1b[{word_width}D\x1b[K\n{self.word}")
                    self.column = word_width
                else:
                    out.append("\n")
                    self.column, self.word = 0, ""
                    if char in " \t":
                        continue
            out.append(char)
            self.column += char_columns
            if char in "\r\n":
                self.column, self.word = 0, ""
            elif char in " \t" or char_columns > 1:
                self.word = ""
            else:
                self.word += char
        self.stream.write("".join(out))
        self.stream.flush()


def escape_ended(sequence: str) -> bool:
    """Whether ``sequence`` (starting with ESC) is a whole escape sequence.

    CSI sequences end with a final byte, OSC ones with BEL or ESC backslash, the rest
    after one character; one longer than 256 characters is given up on.

    >>> [escape_ended(s) for s in ("\x1b", "\x1b[38;5", "\x1b[38;5;245m", "\x1b]0;t\x07")]
    [False, False, True, True]
    """
    if len(sequence) < 2:
        return False
    if len(sequence) > 256:
        return True
    if sequence[1] == "[":
        return len(sequence) > 2 and "@" <= sequence[-1] <= "~"
    if sequence[1] == "]":
        return sequence.endswith(("\x07", "\x1b\\"))
    return True


def text_writer(terminal: Terminal, stream: TextIO, wrap: bool) -> Callable[[str], None]:
    """A function writing text to ``stream`` at once, wrapping words on a terminal if asked."""
    if wrap and terminal.fancy(stream) and terminal.width(stream) >= 10:
        return WordWrapper(stream, lambda: max(terminal.width(stream), 10)).write
    write, flush = stream.write, stream.flush

    def write_now(text: str) -> None:
        write(text)
        flush()

    return write_now


class Spinner:
    """A spinner on stderr while waiting for the first token (only on a terminal)."""

    def __init__(self, terminal: Terminal) -> None:
        self.stream = terminal.stderr
        self._shown = terminal.fancy(terminal.stderr)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = False

    def __enter__(self) -> Spinner:
        if self._shown:
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()

    def _spin(self) -> None:
        for frame in itertools.cycle(SPINNER_FRAMES):
            if self._stop.wait(0.1):
                return
            self.stream.write(f"\r{frame} ")
            self.stream.flush()
            self._drawn = True


@dataclass
class Reply:
    """What a streamed answer brought so far (complete, or partial when interrupted)."""

    content: MutableSequence[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[Any] = field(default_factory=list)
    final: JSON | None = None

    @classmethod
    def display_only(cls) -> Reply:
        """A reply that keeps only the last chunk of text: for answers nobody reads back.

        A long one-shot ``run`` then holds no copy of its answer in memory.
        """
        return cls(content=deque(maxlen=1))

    @property
    def text(self) -> str:
        """The answer's text (its last chunk for a display-only reply)."""
        return "".join(self.content)

    def message(self) -> JSON:
        """The assistant message for the chat history."""
        message: JSON = {"role": "assistant", "content": self.text}
        if self.thinking:
            message["thinking"] = "".join(self.thinking)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message

    def response_object(self, *, chat: bool) -> JSON:
        """The final response object with the streamed text filled in (for --json)."""
        final = dict(self.final or {})
        if chat:
            final["message"] = self.message()
        else:
            final["response"] = self.text
            if self.thinking:
                final["thinking"] = "".join(self.thinking)
        return final


@dataclass
class DisplayOptions:
    """How an answer is shown (nothing here is sent to the server)."""

    as_json: bool = False  # the final response object as JSON instead of the text
    hide_thinking: bool = False
    word_wrap: bool = True
    verbose: bool = False  # timings and token rates on stderr


class StreamPrinter:
    """Shows a streamed answer: tokens to stdout, thinking to stderr, as they arrive.

    ``quiet``: show nothing while it streams (the answer is printed another way after).
    """

    def __init__(self, display: DisplayOptions, terminal: Terminal, *, quiet: bool = False) -> None:
        self.terminal = terminal
        self.hide_thinking = display.hide_thinking
        self.quiet = quiet
        self.color = terminal.color(terminal.stderr)
        self._write = text_writer(terminal, terminal.stdout, display.word_wrap)
        if terminal.is_tty(terminal.stdout):  # the model's text: escape sequences shown, not run
            self._write = sanitising(self._write)
        self._write_thinking = text_writer(terminal, terminal.stderr, display.word_wrap)
        self._shown_thinking = sanitise if terminal.is_tty(terminal.stderr) else str
        self._thinking_open = False
        self._thinking_ends_line = True

    def stream(self, events: Iterator[JSON], reply: Reply, *, chat: bool) -> None:
        """Consume ``events`` into ``reply``, showing them as they arrive.

        When Ctrl-C or an error stops the answer, its line is ended on a terminal
        so that what follows starts on a line of its own.
        """
        try:
            self._consume(events, reply, chat)
        except (KeyboardInterrupt, OllamactlError):
            self._close_thinking()
            shown = not self.quiet and reply.content and self.terminal.stdout_is_tty
            if shown and not reply.content[-1].endswith("\n"):
                self._write("\n")
            raise
        self._close_thinking()

    def _consume(self, events: Iterator[JSON], reply: Reply, chat: bool) -> None:
        """The per-token path: kept minimal (it is benchmarked at 100,000 tokens)."""
        with Spinner(self.terminal):
            first = next(events, None)
        if first is None:
            return
        key = "content" if chat else "response"
        content = reply.content
        write = None if self.quiet else self._write
        for event in itertools.chain((first,), events):
            part = event.get("message") if chat else event
            if part.__class__ is not dict:
                part = NO_MESSAGE
            thought = part.get("thinking")
            if thought and thought.__class__ is str:
                self._show_thinking(thought, reply)
            text = part.get(key)
            if text and text.__class__ is str:
                if self._thinking_open:
                    self._end_thinking()
                content.append(text)
                if write is not None:
                    write(text)
            calls = part.get("tool_calls")
            if calls and calls.__class__ is list:
                reply.tool_calls.extend(calls)
            if event.get("done"):
                reply.final = event

    def _show_thinking(self, text: str, reply: Reply) -> None:
        reply.thinking.append(text)
        if self.hide_thinking or self.quiet:
            return
        if not self._thinking_open:
            opening = "Thinking...\n"
            self._write_thinking(f"{GREY}{BOLD}{opening}{RESET}{GREY}" if self.color else opening)
            self._thinking_open = True
        self._write_thinking(self._shown_thinking(text))
        self._thinking_ends_line = text.endswith("\n")

    def _end_thinking(self) -> None:
        closing = ("" if self._thinking_ends_line else "\n") + "...done thinking.\n\n"
        self._write_thinking(f"{GREY}{BOLD}{closing}{RESET}" if self.color else closing)
        self._thinking_open = False

    def _close_thinking(self) -> None:
        """End an open thinking block (an answer that was all thinking, or interrupted)."""
        if self._thinking_open:
            self._end_thinking()

    def tool_calls(self, reply: Reply, *, offered: bool) -> None:
        """After an answer: the tool calls as JSON (or the text) if tools were offered (the
        printer was quiet then), else the Go CLI's note on calls nobody asked for."""
        if offered:
            text = to_json(reply.tool_calls) if reply.tool_calls else reply.text
            click.echo(text, file=self.terminal.stdout)
        elif reply.tool_calls:
            self.tool_call_notes(reply.tool_calls)

    def tool_call_notes(self, calls: list[Any]) -> None:
        """Tool calls nobody asked for, described as the Go CLI does."""
        lines = []
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                function = {}
            arguments = json.dumps(function.get("arguments", {}), separators=(",", ":"))
            lines.append(
                f"  Model called a non-existent function '{function.get('name', '')}()'"
                f" with arguments: {arguments}"
            )
        self._write("\n".join(lines))


def go_duration(nanoseconds: int) -> str:
    """Format a duration as Go's ``time.Duration.String``.

    >>> [go_duration(n) for n in (0, 999, 982_037, 130_079_000, 4_232_710_583, 61_500_000_000)]
    ['0s', '999ns', '982.037µs', '130.079ms', '4.232710583s', '1m1.5s']
    >>> go_duration(3_600_000_000_000)
    '1h0m0s'
    """
    if nanoseconds == 0:
        return "0s"
    sign, value = ("-" if nanoseconds < 0 else ""), abs(nanoseconds)

    def fraction(part: int, digits: int) -> str:
        return ("." + str(part).zfill(digits).rstrip("0")) if part else ""

    if value < 1000:
        return f"{sign}{value}ns"
    if value < 1_000_000:
        whole, part = divmod(value, 1000)
        return f"{sign}{whole}{fraction(part, 3)}µs"
    if value < 1_000_000_000:
        whole, part = divmod(value, 1_000_000)
        return f"{sign}{whole}{fraction(part, 6)}ms"
    seconds, part = divmod(value, 1_000_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{seconds}{fraction(part, 9)}s"
    if minutes or hours:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def stats_summary(final: JSON) -> str:
    """The ``--verbose`` block of the Go CLI (a row only when its value is above zero).

    >>> final = {"total_duration": 864579129, "prompt_eval_count": 26,
    ...     "prompt_eval_duration": 2166574, "eval_count": 193, "eval_duration": 606940931}
    >>> print(stats_summary(final), end="")
    total duration:       864.579129ms
    prompt eval count:    26 token(s)
    prompt eval duration: 2.166574ms
    prompt eval rate:     12000.51 tokens/s
    eval count:           193 token(s)
    eval duration:        606.940931ms
    eval rate:            317.99 tokens/s
    """

    def number(key: str) -> int:
        value = final.get(key)
        return int(value) if isinstance(value, (int, float)) else 0

    lines = []
    if number("total_duration") > 0:
        lines.append(f"total duration:       {go_duration(number('total_duration'))}")
    if number("load_duration") > 0:
        lines.append(f"load duration:        {go_duration(number('load_duration'))}")
    for prefix, label in (("prompt_eval", "prompt eval"), ("eval", "eval")):
        count, duration = number(f"{prefix}_count"), number(f"{prefix}_duration")
        pad = " " * (len("prompt eval") - len(label))
        if count > 0:
            lines.append(f"{label} count:    {pad}{count} token(s)")
        if duration > 0:
            lines.append(f"{label} duration: {pad}{go_duration(duration)}")
            lines.append(f"{label} rate:     {pad}{count / (duration / 1e9):.2f} tokens/s")
    return "".join(line + "\n" for line in lines)


def finish_answer(
    reply: Reply, display: DisplayOptions, terminal: Terminal, *, blank_lines: bool
) -> None:
    """After a streamed answer: the Go CLI's two newlines, then --verbose statistics."""
    if blank_lines and not display.as_json:
        click.echo("\n", file=terminal.stdout)
    if display.verbose and reply.final:
        click.echo(stats_summary(reply.final), file=terminal.stderr, nl=False)
