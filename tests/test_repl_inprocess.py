"""The REPL driven in-process: lines from a list, output in string streams, a real session.

No pseudo-terminal: the session talks to the fake server through a real client, the lines
come from ``read_line`` and the terminal is built from StringIO streams (as simonw/llm
tests its chat loop). The pty tests (test_repl_pty.py) cover readline and the terminal.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ollamactl.answer import DisplayOptions
from ollamactl.client import Client
from ollamactl.config import Flags, resolve
from ollamactl.conversations import Conversation, ConversationStore
from ollamactl.params import RequestOptions
from ollamactl.repl import Repl, completions
from ollamactl.session import Session
from ollamactl.terminal import Terminal
from tests.backends import Backend
from tests.fake_ollama import OllamaTestServer
from tests.helpers import PNG, on, run_cli
from tests.helpers import screen as lines_shown


class Screen:
    """What the REPL wrote, and the lines it was given (on a terminal of ``columns`` if set)."""

    def __init__(self, lines: list[str], columns: int | None = None) -> None:
        self.terminal = Terminal(io.StringIO(), io.StringIO(), io.StringIO())
        if columns:
            self.terminal.stdout_is_tty = True
            self.terminal.env = {"TERM": "xterm", "NO_COLOR": "1"}
            self.terminal.fixed_size = (columns, 24)
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
    server: OllamaTestServer | Backend,
    *lines: str,
    request: RequestOptions | None = None,
    model: str = "tiny",
    store: ConversationStore | None = None,
    conversation: Conversation | None = None,
    columns: int | None = None,
) -> tuple[Screen, Session]:
    """Run the REPL of ``model`` over ``lines`` (then Ctrl-D); the screen and the session.

    ``store``: saved as ``chat`` saves; ``conversation``: resumed; ``columns``: on a terminal.
    """
    client = Client(resolve(Flags(host=server.url), env={}))
    if conversation is None:
        conversation = store.new(model) if store else Conversation("", model)
    session = Session(client, client.show(model), request or RequestOptions(), conversation, store)
    shown = Screen(list(lines), columns)
    resumed = bool(conversation.messages)
    Repl(
        session, DisplayOptions(), shown.terminal, read_line=shown.read_line, resumed=resumed
    ).run()
    return shown, session


def user_messages(server: OllamaTestServer) -> list[str]:
    """The user messages of the last chat request."""
    messages = server.json_bodies("/api/chat")[-1]["messages"]
    return [m["content"] for m in messages if m["role"] == "user"]


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
    assert "error: model 'nope:1b' not found" in screen.stdout, "the server's words, as Go"
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


def test_a_pasted_block_is_one_message_whatever_its_lines_say(server: OllamaTestServer) -> None:
    repl(server, "first line\n/bye\n/set system x", '"""second', "paste\nin a block", 'end"""')
    assert user_messages(server) == [
        "first line\n/bye\n/set system x",
        "second\npaste\nin a block\nend",
    ], "the pasted /bye neither ended the REPL nor was a command"


def test_save_of_a_model_built_from_a_file_is_from_the_model(server: OllamaTestServer) -> None:
    record = server.add_model("fromfile:latest")
    record["details"]["parent_model"] = "/root/.ollama/models/blobs/sha256-" + "7" * 64
    screen, _ = repl(server, "hi", "/save saved", model="fromfile")
    assert "Created new model 'saved'" in screen.stdout
    assert server.json_bodies("/api/create")[-1]["from"] == "fromfile", "not the blob path"


@pytest.mark.real
def test_save_of_a_model_built_from_a_gguf_file_on_a_real_server(
    real_backend: Backend, tmp_path: Path
) -> None:
    built, saved = real_backend.unique_name("gguf"), real_backend.unique_name("saved")
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {real_backend.gguf}\n")
    created = run_cli("--host", real_backend.url, "create", built, "-f", str(modelfile))
    assert created.exit_code == 0, created.stderr
    client = Client(resolve(Flags(host=real_backend.url), env={}))
    assert client.show(built)["details"]["parent_model"].startswith("/"), "a blob path"
    bounded = RequestOptions(options={"num_predict": 4})
    screen, _ = repl(real_backend, "hi", f"/save {saved}", model=built, request=bounded)
    assert f"Created new model '{saved}'" in screen.stdout, screen.stdout + screen.stderr
    shown = client.show(saved)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    assert shown["parameters"].split() == ["num_predict", "4"]


def test_save_keeps_a_parent_that_is_a_model_name(server: OllamaTestServer) -> None:
    server.add_model("child:latest")["details"]["parent_model"] = "tiny:latest"
    repl(server, "/save saved", model="child")
    assert server.json_bodies("/api/create")[-1]["from"] == "tiny:latest", "as the Go CLI"


@pytest.mark.parametrize(
    ("version", "sent", "said", "note"),
    [
        ("0.9.3", True, "Set 'think' mode.", "note: this server (0.9.3) has no think levels"),
        ("0.11.0", "high", "Set 'think' mode to 'high'.", ""),
    ],
)
def test_a_think_level_is_true_on_a_server_without_levels(
    server: OllamaTestServer, version: str, sent: object, said: str, note: str
) -> None:
    server.version = version
    server.add_model("qwen3:latest", capabilities=["completion", "thinking"])
    screen, _ = repl(server, "/set think high", "hi", model="qwen3")
    assert server.json_bodies("/api/chat")[-1]["think"] == sent
    assert said in screen.stdout.splitlines()
    assert screen.stderr == (f"{note}; thinking on\n" if note else "")
    result = on(server, "run", "qwen3", "--think=high", "hi")
    assert result.exit_code == 0, result.stderr
    assert server.json_bodies("/api/generate")[-1]["think"] == sent
    assert result.stderr == (f"{note}; thinking on\n" if note else "")


def test_image_is_refused_for_a_model_without_vision(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    screen, _ = repl(server, f"/image {picture}", "what is it?")
    assert 'error: model "tiny" does not take images' in screen.stdout
    assert "Added image" not in screen.stderr
    assert "images" not in server.json_bodies("/api/chat")[-1]["messages"][-1]
    screen, _ = repl(server, f"/image {picture}", "what is it?", model="gemma3:12b")
    assert f"Added image '{picture}'" in screen.stderr
    assert len(server.json_bodies("/api/chat")[-1]["messages"][-1]["images"]) == 1


@pytest.mark.parametrize("command", ["run", "chat"])
def test_dash_i_is_refused_for_a_model_without_vision(
    server: OllamaTestServer, tmp_path: Path, command: str
) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    result = on(server, command, "tiny", "-i", str(picture), "what is it?")
    assert (result.exit_code, result.stderr) == (2, 'Error: model "tiny" does not take images\n')
    assert not server.requests_to("/api/generate") and not server.requests_to("/api/chat")


def test_export_records_the_options_and_makes_no_folders(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    missing = tmp_path / "nope" / "chat.json"
    screen, _ = repl(
        server,
        f"/export {tmp_path / 'early.md'}",
        "/set parameter temperature 0.5",
        "hi",
        f"/export {missing}",
        f"/export {tmp_path / 'chat.json'}",
        f"/export {tmp_path / 'chat.md'}",
    )
    assert "Nothing to export." in screen.stdout and not (tmp_path / "early.md").exists()
    assert f"error: cannot write '{missing}': No such file or directory" in screen.stdout
    assert not missing.parent.exists(), "no folder was made"
    assert json.loads((tmp_path / "chat.json").read_text())["options"] == {"temperature": 0.5}
    assert "Options: `temperature=0.5`" in (tmp_path / "chat.md").read_text()


def test_clear_and_load_name_every_conversation_saved_at_exit(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    store = ConversationStore(tmp_path / "chats")
    screen, _ = repl(
        server, "first", "/clear", "/clear", "second", "/load gemma3:12b", "third", store=store
    )
    said = [line.split()[3] for line in screen.stderr.splitlines() if line.startswith("Saved as")]
    assert len(said) == 3 and sorted(said) == sorted(store.ids()), screen.stderr
    assert [len(store.load(i).messages) for i in said] == [2, 2, 2]


def test_a_resumed_conversation_is_replayed_wrapped(server: OllamaTestServer) -> None:
    long = "lorem ipsum dolor sit amet consectetur " * 4
    resumed = Conversation(
        "abc",
        "tiny",
        messages=[
            {"role": "user", "content": "a question"},
            {"role": "assistant", "content": long},
        ],
    )
    screen, _ = repl(server, conversation=resumed, columns=40)
    lines = [line.rstrip() for line in lines_shown(screen.stdout)]
    assert lines[0] == ">>> a question"
    assert all(len(line) <= 35 for line in lines), lines
    assert " ".join(lines[1:]).split() == long.split()


def _chats(server: OllamaTestServer) -> list[dict]:
    return list(server.json_bodies("/api/chat"))
