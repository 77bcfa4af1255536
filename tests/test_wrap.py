"""Word wrap of a streamed answer and of thinking text, as the Go CLI wraps (in-process)."""

from __future__ import annotations

import io
import re

from ollamactl.answer import DisplayOptions, Reply, StreamPrinter, WordWrapper
from ollamactl.terminal import Terminal
from tests.helpers import screen

#: An escape sequence as the terminal must receive it: whole.
WHOLE_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def wrapped(*chunks: str, width: int = 40) -> str:
    """What the wrapper writes for ``chunks`` on a terminal of ``width`` columns."""
    written = io.StringIO()
    wrapper = WordWrapper(written, width=lambda: width)
    for chunk in chunks:
        wrapper.write(chunk)
    return written.getvalue()


def test_a_space_crossing_the_margin_takes_its_word_down_as_go_does() -> None:
    # the space after "ggggg" would be column 36 of 40 (text stops at 35)
    output = wrapped("aaaa bbbb cccc dddd eeee ffff ggggg hhhh")
    assert screen(output) == ["aaaa bbbb cccc dddd eeee ffff ", "ggggg hhhh"]
    assert "\x1b[5D\x1b[K\nggggg " in output, "erased, then written again with its space"


def test_escape_sequences_take_no_columns_and_are_never_split() -> None:
    grey, reset = "\x1b[38;5;245m", "\x1b[0m"
    text = f"{grey}aaaa bbbb cccc dddd eeee ffff ggg{reset}gg hhhh iiii"
    chunks = [text[i : i + 3] for i in range(0, len(text), 3)]  # escapes cut across chunks
    output = wrapped(*chunks)
    assert not WHOLE_ESCAPE.sub("", output).count("\x1b"), "a sequence was split"
    assert WHOLE_ESCAPE.findall(output) == [grey, reset, "\x1b[5D", "\x1b[K"]
    assert screen(output) == ["aaaa bbbb cccc dddd eeee ffff ", "ggggg hhhh iiii"]


def test_thinking_wraps_at_the_same_width_as_the_answer() -> None:
    terminal = Terminal(
        io.StringIO(),
        io.StringIO(),
        io.StringIO(),
        stdout_is_tty=True,
        stderr_is_tty=True,
        env={"TERM": "xterm"},
        fixed_size=(40, 24),
    )
    words = "alpha bravo charlie delta echo foxtrot golf hotel "
    events = [{"thinking": words[i : i + 5]} for i in range(0, len(words), 5)]
    events += [{"response": words, "done": True}]
    StreamPrinter(DisplayOptions(), terminal).stream(iter(events), Reply(), chat=False)
    thinking = terminal.stderr.getvalue()  # type: ignore[attr-defined]
    assert thinking.startswith("\x1b[38;5;245m\x1b[1mThinking...\n\x1b[0m\x1b[38;5;245m")
    shown = [line.rstrip() for line in screen(thinking)]
    answer = [line.rstrip() for line in screen(terminal.stdout.getvalue())]  # type: ignore[attr-defined]
    assert shown[1:3] == answer[:2] == ["alpha bravo charlie delta echo", "foxtrot golf hotel"]
    assert shown[3] == "...done thinking."
