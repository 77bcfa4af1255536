"""The REPL driven in-process: lines from a list, output in string streams, a real session.

No pseudo-terminal: the session talks to the fake server through a real client, the lines
come from ``read_line`` and the terminal is built from StringIO streams (as simonw/llm
tests its chat loop). The pty tests (test_repl_pty.py) cover readline and the terminal.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from ollamactl.answer import DisplayOptions
from ollamactl.client import Client
from ollamactl.config import Flags, resolve
from ollamactl.conversations import Conversation
from ollamactl.params import RequestOptions
from ollamactl.repl import Repl, completions
from ollamactl.session import Session
from ollamactl.terminal import Terminal
from tests.fake_ollama import OllamaTestServer


class Screen:
    """What the REPL wrote, and the lines it was given."""

    def __init__(self, lines: list[str]) -> None:
        self.terminal = Terminal(io.StringIO(), io.StringIO(), io.StringIO())
        self.prompts: list[str] = []
        self._lines: Iterator[str] = iter(lines)

    def read_line(self, prompt: str) -> str:
        self.prompts.append(prompt)
        try:
            return next(self._lines)
        except StopIteration:
            raise EOFError from None

    @property
    def stdout(self) -> str:
        return self.terminal.stdout.getvalue()  # type: ignore[attr-defined]

    @property
    def stderr(self) -> str:
        return self.terminal.stderr.getvalue()  # type: ignore[attr-defined]


def repl(
    server: OllamaTestServer, *lines: str, request: RequestOptions | None = None
) -> tuple[Screen, Session]:
    """Run the REPL of ``tiny`` over ``lines`` (then Ctrl-D); the screen and the session."""
    client = Client(resolve(Flags(host=server.url), env={}))
    session = Session(
        client, client.show("tiny"), request or RequestOptions(), Conversation("", "tiny")
    )
    screen = Screen(list(lines))
    Repl(session, DisplayOptions(), screen.terminal, read_line=screen.read_line).run()
    return screen, session


def test_a_prompt_is_answered_and_the_history_grows(server: OllamaTestServer) -> None:
    screen, session = repl(server, "first", "second")
    assert screen.stdout == "Hello, world!\n\nHello, world!\n\n\n"
    assert server.json_bodies("/api/chat")[-1]["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "second"},
    ]
    assert session.messages[-1] == {"role": "assistant", "content": "Hello, world!"}
    assert screen.prompts == [">>> "] * 3
    load = server.json_bodies("/api/generate")[0]
    assert load == {"model": "tiny", "stream": False}, "the model is preloaded first"


def test_a_multi_line_block_is_one_message(server: OllamaTestServer) -> None:
    screen, _ = repl(server, '"""one', "two", 'three"""')
    assert screen.prompts[:3] == [">>> ", "... ", "... "]
    sent = server.json_bodies("/api/chat")[-1]["messages"]
    assert sent == [{"role": "user", "content": "one\ntwo\nthree"}]


def test_set_changes_what_is_sent_and_show_reports_it(server: OllamaTestServer) -> None:
    screen, session = repl(
        server,
        "/set parameter temperature 0.5",
        "/set system Answer in French.",
        "/set format json",
        "/set nothink",
        "/show parameters",
        "hi",
    )
    assert "Set parameter 'temperature' to '0.5'" in screen.stdout
    assert "  temperature                    0.5" in screen.stdout
    request = server.json_bodies("/api/chat")[-1]
    assert request["options"] == {"temperature": 0.5}
    assert request["format"] == "json"
    assert request["think"] is False
    assert request["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert session.request.system == "Answer in French."


def test_display_settings_are_not_sent(server: OllamaTestServer) -> None:
    screen, _ = repl(server, "/set verbose", "/set nowordwrap", "hi")
    assert "total duration:" in screen.stderr, "--verbose statistics after the answer"
    request = server.json_bodies("/api/chat")[-1]
    assert set(request) == {"model", "messages"}


def test_save_creates_a_model_from_the_session(server: OllamaTestServer) -> None:
    screen, _ = repl(
        server, "/set system Be brief.", "hello", "/save mine", "/save", "/bye", "never read"
    )
    assert "Created new model 'mine'" in screen.stdout
    assert "Usage:\n  /save <modelname>" in screen.stdout
    body = server.json_bodies("/api/create")[-1]
    assert body["model"] == "mine" and body["from"] == "tiny"
    assert body["system"] == "Be brief."
    assert body["messages"][-1] == {"role": "assistant", "content": "Hello, world!"}
    assert not any(r["messages"][-1]["content"] == "never read" for r in _chats(server))


def test_load_switches_the_model_or_says_it_is_missing(server: OllamaTestServer) -> None:
    screen, session = repl(server, "/load nope:1b", "/load gemma3:12b", "hi")
    assert "Couldn't find model 'nope:1b'" in screen.stdout
    assert session.model == "gemma3:12b"
    assert server.json_bodies("/api/chat")[-1]["model"] == "gemma3:12b"


def test_unknown_commands_and_help(server: OllamaTestServer) -> None:
    screen, _ = repl(server, "/frobnicate", "/?")
    assert "Unknown command '/frobnicate'. Type /? for help" in screen.stdout
    assert "Available Commands:" in screen.stderr
    assert not server.json_bodies("/api/chat"), "no line was a prompt"


def test_a_server_error_is_reported_and_the_repl_goes_on(server: OllamaTestServer) -> None:
    server.add_fault("/api/chat", status=500, body=json.dumps({"error": "out of memory"}))
    screen, _ = repl(server, "first", "/retry")
    assert "Error: out of memory" in screen.stderr
    assert "(/retry sends the message again)" in screen.stderr
    assert screen.stdout.endswith("Hello, world!\n\n\n"), "the retry was answered"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/sh", ["/show"]),
        ("/set ", ["parameter", "system", "history"]),
        ("/load ", ["tiny", "gemma3:12b"]),
        ("hello", []),
    ],
)
def test_completions(line: str, expected: list[str]) -> None:
    word = "" if line.endswith(" ") else line.split()[-1]
    found = [c for c in completions(line, lambda: ["tiny", "gemma3:12b"]) if c.startswith(word)]
    assert found[: len(expected)] == expected


def _chats(server: OllamaTestServer) -> list[dict]:
    return list(server.json_bodies("/api/chat"))
