"""The REPL's terminal as a person meets it, beside the Go CLI's: pasting, the grey
placeholder, resizing during an answer, thinking text, TERM=dumb and LC_ALL=C."""

from __future__ import annotations

import io
import itertools
import re
import threading
from pathlib import Path

import pexpect
import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import run_cli, saved_chats, screen, spawn

pytestmark = pytest.mark.pty

GREY = "\x1b[38;5;245m"
SEND_A_MESSAGE = f"{GREY}Send a message (/? for help)\x1b[28D\x1b[0m"
END_THE_BLOCK = f'{GREY}Use """ to end multi-line input\x1b[31D\x1b[0m'
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"
#: An escape sequence as the terminal must receive it: whole.
WHOLE_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OLLAMACTL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def finish(child: pexpect.spawn) -> str:
    """At the next prompt, Ctrl-D; what the terminal received until the REPL exited (0)."""
    child.expect_exact(">>> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def contents(server: OllamaTestServer) -> list[str]:
    """The user messages of the last chat request."""
    messages = server.last_request("/api/chat").json["messages"]
    return [m["content"] for m in messages if m["role"] == "user"]


def hold_after(server: OllamaTestServer, pieces: int) -> threading.Event:
    """Make the server stop after ``pieces`` streamed pieces until the returned event is set."""
    count, go_on = itertools.count(), threading.Event()
    pause = server._pause

    def held(seconds: float) -> None:
        if next(count) == pieces:
            go_on.wait(10)
        pause(seconds)

    server._pause = held  # type: ignore[method-assign]
    return go_on


def test_a_pasted_block_is_one_message_and_its_commands_are_text(
    server: OllamaTestServer,
) -> None:
    child = spawn(server, "run", "tiny")
    child.expect_exact("\x1b[?2004h")  # bracketed paste on, as the Go CLI
    child.expect_exact(">>> ")
    child.send(f"{PASTE_START}first line\rsecond line\r/bye\r/set system x\rlast{PASTE_END}")
    child.expect_exact("last")
    child.send("\r")
    child.expect_exact("Hello, world!")
    assert contents(server) == ["first line\nsecond line\n/bye\n/set system x\nlast"]
    child.expect_exact(">>> ")
    child.send(f'{PASTE_START}"""quoted\r/show info{PASTE_END}\r')
    child.expect_exact("Hello, world!")
    assert contents(server)[-1] == '"""quoted\n/show info', "neither a block nor a command"
    child.expect_exact(">>> ")
    child.sendline('"""a block')
    child.expect_exact("... ")
    child.send(f'{PASTE_START}pasted in it\rand closed"""{PASTE_END}\r')
    child.expect_exact("Hello, world!")
    assert contents(server)[-1] == "a block\npasted in it\nand closed"
    finish(child)


def test_the_placeholder_is_grey_and_goes_with_the_first_key(server: OllamaTestServer) -> None:
    child = spawn(server, "run", "tiny")
    child.logfile_read = received = io.StringIO()
    child.expect_exact(f">>> {SEND_A_MESSAGE}")  # the Go CLI's bytes
    child.setwinsize(24, 60)  # readline draws the line again: once, placeholder included
    child.expect_exact(f">>> {SEND_A_MESSAGE}")
    child.send("h")
    child.expect_exact("\x1b[Kh")
    assert screen(received.getvalue())[0] == ">>> h"
    child.send("\x7f")  # Backspace to an empty line: it comes back
    child.expect_exact(SEND_A_MESSAGE)
    child.sendline('"""')
    child.expect_exact(f"... {END_THE_BLOCK}")
    child.sendline('one"""')
    child.expect_exact("Hello, world!")
    child.expect_exact(SEND_A_MESSAGE)
    child.sendintr()
    child.expect_exact("Use Ctrl + d or /bye to exit.")
    assert screen(child.before)[-2:] == [">>> ", ""], "Ctrl-C erased the placeholder only"
    finish(child)
    assert contents(server)[-1].strip() == "one"


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_placeholder_without_colour(server: OllamaTestServer, env: dict[str, str]) -> None:
    child = spawn(server, "run", "tiny", **env)
    child.expect_exact(">>> ")
    child.sendline("hi")
    child.expect_exact("Hello, world!")
    output = finish(child)
    assert GREY not in output
    if env.get("TERM") == "dumb":
        assert "\x1b" not in child.before + output, "no escape code at all on a dumb terminal"


def test_resizing_during_an_answer_wraps_the_rest_at_the_new_width(
    server: OllamaTestServer,
) -> None:
    server.generation["token_count"] = 120
    resized = hold_after(server, 60)
    child = spawn(server, "run", "tiny", dimensions=(24, 100))
    child.logfile_read = received = io.StringIO()
    child.expect_exact(">>> ")
    child.sendline("count")
    child.expect_exact("tok59 ")
    child.setwinsize(24, 40)
    resized.set()
    child.expect_exact("tok119 ")
    finish(child)
    lines = [line.rstrip() for line in screen(received.getvalue())]
    first = next(i for i, line in enumerate(lines) if line.startswith("tok0 "))
    assert len(lines[first]) > 80, "before: the width of 100 columns"
    later = next(i for i, line in enumerate(lines) if "tok62 " in line) + 1
    after = [line for line in lines[later:] if line.startswith("tok")]
    assert len(after) > 3 and all(len(line) <= 35 for line in after), after
    assert " ".join(lines).split().count("tok100") == 1, "no word was cut or repeated"


def test_thinking_wraps_on_its_visible_width_and_escapes_stay_whole(
    server: OllamaTestServer,
) -> None:
    server.add_model("qwen3:latest", capabilities=["completion", "thinking"])
    server.generation["thinking"] = [WORDS[i : i + 4] for i in range(0, len(WORDS), 4)]
    child = spawn(server, "run", "qwen3", "hi", dimensions=(24, 40))
    child.expect(pexpect.EOF)
    child.close()
    output = str(child.before)
    assert child.exitstatus == 0, output
    assert not re.sub(WHOLE_ESCAPE, "", output).count("\x1b"), "an escape sequence was split"
    lines = [line.rstrip() for line in screen(output)]
    start = lines.index("Thinking...")
    assert lines[start + 1 : start + 5] == [
        "alpha bravo charlie delta echo",  # 35 columns, as the Go CLI's answer text
        "foxtrot golf hotel india juliet",
        "kilo lima mike",
        "...done thinking.",
    ]


def test_lc_all_c_keeps_characters_whole(server: OllamaTestServer, data_dir: Path) -> None:
    child = spawn(server, "run", "tiny", LC_ALL="C", LANG="", LC_CTYPE="")
    child.expect_exact(">>> ")
    child.send("é日本")
    child.expect_exact("本")
    child.send("\x7f\r")  # Backspace takes the whole last character
    child.expect_exact("Hello, world!")
    finish(child)
    assert contents(server) == ["é日"]
    assert (data_dir / "history").read_text(encoding="utf-8").splitlines() == ["é日"]


def test_chat_show_wraps_words_on_a_terminal(server: OllamaTestServer) -> None:
    server.generation["tokens"] = [WORDS * 2]
    assert run_cli("--host", server.url, "chat", "tiny", "a question").exit_code == 0
    [saved] = saved_chats()
    child = spawn(server, "chat", "show", saved["id"], dimensions=(24, 40))
    child.expect(pexpect.EOF)
    child.close()
    lines = [line.rstrip() for line in screen(child.before) if line.strip()]
    assert lines[0] == ">>> a question"
    assert len(lines) > 3 and all(len(line) <= 35 for line in lines), lines
    assert " ".join(lines[1:]).split() == (WORDS * 2).split()
