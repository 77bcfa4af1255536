"""What `run` looks like in a real terminal: answers wrap at word boundaries, as the Go CLI's do."""

from __future__ import annotations

import re

import pexpect
import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import ANSI, spawn

pytestmark = pytest.mark.pty
COLUMNS = 30
TEXT = "wrapping words on a narrow terminal keeps every word whole " * 3
#: What the screen receives: text, line ends, and the escapes the word wrapper may send.
PIECES = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z]|\r\n|\r|\n)")


def screen(output: str) -> list[str]:
    """The lines a terminal shows for ``output`` (cursor left, erase to the end of line)."""
    lines, column = [""], 0
    for piece in filter(None, PIECES.split(output)):
        left = re.fullmatch(r"\x1b\[(\d*)D", piece)
        if piece in ("\r\n", "\n"):
            lines.append("")
            column = 0
        elif piece == "\r":
            column = 0
        elif left:
            column = max(column - int(left.group(1) or 1), 0)
        elif piece == "\x1b[K":
            lines[-1] = lines[-1][:column]
        elif piece.startswith("\x1b["):
            raise AssertionError(f"an escape the test does not know: {piece!r}")
        else:
            line = lines[-1]
            lines[-1] = line[:column] + piece + line[column + len(piece) :]
            column += len(piece)
    return lines


def answer_on_a_narrow_terminal(server: OllamaTestServer, *flags: str) -> str:
    """Everything the terminal received from `run` (tokens cut words in the middle)."""
    server.generation["tokens"] = [TEXT[i : i + 3] for i in range(0, len(TEXT), 3)]
    child = spawn(server, "run", "tiny", "hi", *flags, dimensions=(24, COLUMNS))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def test_run_wraps_words_on_a_narrow_terminal(server: OllamaTestServer) -> None:
    lines = [line.rstrip() for line in screen(answer_on_a_narrow_terminal(server)) if line.strip()]
    assert len(lines) > 3 and all(len(line) < COLUMNS for line in lines), lines
    assert " ".join(lines).split() == TEXT.split(), "no word is split across two lines"


def test_nowordwrap_sends_the_answer_as_it_came(server: OllamaTestServer) -> None:
    output = answer_on_a_narrow_terminal(server, "--nowordwrap")
    assert not ANSI.search(output), "no cursor movement"
    assert output == TEXT + "\r\n\r\n"
