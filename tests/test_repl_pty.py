"""The REPL as a person uses it, in a real pseudo-terminal: commands, keys, history, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pexpect
import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import PNG, run_cli, spawn

pytestmark = pytest.mark.pty


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OLLAMACTL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def say(child: pexpect.spawn, line: str, *expected: str) -> None:
    """Type a line, wait for each expected text, then for the next prompt."""
    child.sendline(line)
    for text in expected:
        child.expect_exact(text)
    child.expect_exact(">>> ")


def finish(child: pexpect.spawn) -> int:
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def chat_messages(server: OllamaTestServer) -> list[dict]:
    return server.last_request("/api/chat").json["messages"]


def test_a_session_with_set_show_multiline_ctrl_c_and_export(
    server: OllamaTestServer, data_dir: Path, tmp_path: Path
) -> None:
    child = spawn(server, "run", "tiny")
    child.expect_exact(">>> ")
    say(child, "/set parameter temperature 0.5", "Set parameter 'temperature' to '0.5'")
    say(child, "/set parameter seed x", 'Couldn\'t set parameter: "invalid int value [x]"')
    say(child, "/set system Talk like a pirate.", "Set system message.")
    say(
        child,
        "/show parameters",
        "Model defined parameters:",
        "  No additional parameters were specified for this model.",
        "User defined parameters:",
        "  temperature                    0.5",
    )
    say(child, "/show system", "Talk like a pirate.")
    child.sendline('"""first line')
    child.expect_exact("... ")
    say(child, 'second line"""', "Hello, world!")

    server.generation.update(token_count=1000, token_delay=0.01)
    child.sendline("count slowly")
    child.expect_exact("tok3 ")
    child.sendintr()
    child.expect_exact(">>> ")
    server.generation.update(token_count=0, token_delay=0.0)
    say(child, "are you there?", "Hello, world!")

    messages = chat_messages(server)
    partial = messages[4]
    assert partial["role"] == "assistant" and partial["content"].startswith("tok0 tok1 tok2 tok3 ")
    assert "interrupted" not in partial, "the marker is local; the API gets a plain message"
    assert messages[:4] + messages[5:] == [
        {"role": "system", "content": "Talk like a pirate."},
        {"role": "user", "content": "first line\nsecond line"},
        {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "count slowly"},
        {"role": "user", "content": "are you there?"},
    ]
    assert [body.get("options") for body in server.json_bodies("/api/chat")] == [
        {"temperature": 0.5}
    ] * 3

    say(child, f"/export {tmp_path / 'chat.md'}", "Exported 7 messages to")
    say(child, f"/export {tmp_path / 'chat.json'}", "Exported 7 messages to")
    assert finish(child) == 0

    exported = json.loads((tmp_path / "chat.json").read_text())
    assert exported["messages"][4]["interrupted"] is True
    assert exported["messages"][-1] == {"role": "assistant", "content": "Hello, world!"}
    markdown = (tmp_path / "chat.md").read_text()
    assert markdown.startswith(
        "# Chat with tiny\n\nOptions: `temperature=0.5`\n\n## System\n\nTalk like a pirate.\n"
    ), "with the options set by /set parameter"
    assert exported["options"] == {"temperature": 0.5}
    assert "## User\n\nfirst line\nsecond line\n" in markdown
    assert "*(interrupted)*" in markdown


def test_help_unknown_commands_and_ctrl_c_at_the_prompt(
    server: OllamaTestServer, data_dir: Path
) -> None:
    child = spawn(server, "run", "tiny")
    child.expect_exact(">>> ")
    say(
        child,
        "/?",
        "Available Commands:\r\n  /set            Set session variables\r\n"
        "  /show           Show model information\r\n",
        "  /? shortcuts    Help for keyboard shortcuts\r\n\r\n",
        'Use """ to begin a multi-line message.',
    )
    say(child, "/? shortcuts", "  Ctrl + c            Stop the model from responding")
    say(
        child,
        "/set format xml",
        "Invalid or missing format. For 'json' mode use '/set format json'",
    )
    say(child, "/show colour", "Unknown command '/show colour'. Type /? for help")
    say(child, "/frobnicate now", "Unknown command '/frobnicate'. Type /? for help")
    child.sendintr()
    child.expect_exact("Use Ctrl + d or /bye to exit.")
    child.expect_exact(">>> ")
    child.send("half a thought")
    child.expect_exact("half a thought")
    child.sendintr()
    child.expect_exact(">>> ")
    assert "Use Ctrl + d" not in child.before
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert server.requests_to("/api/chat") == []


@pytest.mark.parametrize("nohistory", ["", "1"])
def test_tab_completion_and_the_history_file(
    server: OllamaTestServer, data_dir: Path, nohistory: str
) -> None:
    child = spawn(server, "run", "tiny", OLLAMA_NOHISTORY=nohistory)
    child.expect_exact(">>> ")
    child.send("/sh\t")
    child.expect_exact("/show ")
    child.send("param\t")
    child.expect_exact("parameters ")
    child.send("\r")
    child.expect_exact("Model defined parameters:")
    child.expect_exact(">>> ")
    say(child, "hello there", "Hello, world!")
    assert finish(child) == 0
    history = data_dir / "history"
    if nohistory:
        assert not history.exists()
    else:
        assert history.read_text().splitlines()[-2:] == ["/show parameters ", "hello there"]


def test_chat_repl_resumes_retries_attaches_images_and_says_where_it_saved(
    server: OllamaTestServer, data_dir: Path, tmp_path: Path
) -> None:
    assert run_cli("--host", server.url, "chat", "gemma3:12b", "earlier question").exit_code == 0
    [path] = (data_dir / "chats").glob("*.json")
    (tmp_path / "cat.png").write_bytes(PNG)

    child = spawn(server, "chat", "--continue", "-i", str(tmp_path / "cat.png"))
    child.expect_exact(">>> earlier question\r\nHello, world!\r\n\r\n")
    child.expect_exact(">>> ")
    say(child, "/retry", "Hello, world!")
    assert chat_messages(server) == [{"role": "user", "content": "earlier question"}]
    say(child, f"/image {tmp_path / 'cat.png'}", f"Added image '{tmp_path / 'cat.png'}'")
    say(child, "what is this?", "Hello, world!")
    assert len(chat_messages(server)) == 3
    assert len(chat_messages(server)[-1]["images"]) == 2, "the -i image and the /image one"
    child.sendeof()
    child.expect_exact(f"Saved as conversation {path.stem}")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    stored = json.loads(path.read_text())["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]


def test_load_save_and_clear(server: OllamaTestServer, data_dir: Path) -> None:
    child = spawn(server, "run", "tiny")
    child.expect_exact(">>> ")
    say(child, "/load nosuch", "Loading model 'nosuch'", "error: model 'nosuch' not found")
    say(child, "/load gemma3:12b", "Loading model 'gemma3:12b'")
    say(child, "remember me", "Hello, world!")
    say(child, "/save my-session", "Created new model 'my-session'")
    say(child, "/save bad/name/with/too/many/parts", "error: The model name")
    say(child, "/clear", "Cleared session context")
    say(child, "fresh start", "Hello, world!")
    assert finish(child) == 0
    saved = server.models["my-session:latest"]
    assert [m["content"] for m in saved["messages"]] == ["remember me", "Hello, world!"]
    last = server.last_request("/api/chat").json
    assert last["model"] == "gemma3:12b"
    assert last["messages"] == [{"role": "user", "content": "fresh start"}]
