"""REPL commands in a real terminal (/list, /export, /load, /set think), undecodable input
bytes for chat and embed, and the order of saved conversations."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import run_cli, screen, spawn

NOT_UTF8 = b"caf\xe9 ?"
REPLACED = "caf\ufffd ?"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OLLAMACTL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def repl(server: OllamaTestServer, model: str) -> pexpect.spawn:
    """The REPL of ``run MODEL`` in a pseudo-terminal, at its first prompt."""
    child = spawn(server, "run", model)
    child.expect_exact(">>> ")
    return child


def say(child: pexpect.spawn, line: str) -> str:
    """Type a line; what the terminal showed until the next prompt (the echo included)."""
    child.sendline(line)
    child.expect_exact(">>> ")
    return "\n".join(screen(child.before))


def finish(child: pexpect.spawn) -> int:
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


# -- the REPL -----------------------------------------------------------------------------


@pytest.mark.pty
def test_list_prints_the_model_table_filtered_by_a_prefix(
    server: OllamaTestServer, data_dir: Path
) -> None:
    child = repl(server, "tiny")
    everything = say(child, "/list")
    header, *rows = everything.splitlines()[1:]
    assert header.split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert sorted(row.split()[0] for row in rows) == [
        "gemma3:12b",
        "nomic-embed-text:latest",
        "tiny:latest",
    ]
    filtered = say(child, "/list GEM")
    assert [line.split()[0] for line in filtered.splitlines()[1:]] == ["NAME", "gemma3:12b"]
    assert finish(child) == 0


@pytest.mark.pty
def test_export_replaces_the_file_whole_with_mode_0600(
    server: OllamaTestServer, data_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "chat.md"
    target.write_text("an older export\n")
    other_name = tmp_path / "linked.md"
    os.link(target, other_name)
    child = repl(server, "tiny")
    assert "Hello, world!" in say(child, "hi")
    assert "Exported 2 messages to" in say(child, f"/export {target}")
    failed = say(child, f"/export {tmp_path}")
    assert failed.splitlines()[1:] == [f"error: cannot write '{tmp_path}': Is a directory"]
    assert "Hello, world!" in say(child, "still here?"), "the REPL goes on after the error"
    assert finish(child) == 0

    assert target.read_text().startswith("# Chat with tiny\n\n## User\n\nhi\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert other_name.read_text() == "an older export\n", "a new file was renamed over it"
    assert not list(tmp_path.glob(".chat.md.*")), "no temporary file is left behind"


@pytest.mark.pty
def test_load_of_a_remote_model_connects_instead_of_preloading(
    server: OllamaTestServer, data_dir: Path
) -> None:
    child = repl(server, "tiny")
    remote = {
        "remote_host": "https://ollama.com:443",
        "remote_model": "gpt-oss:20b",
        "capabilities": ["completion"],
        "details": {"family": "gptoss", "parameter_size": "20.9B"},
    }
    server.add_fault("/api/show", status=200, body=json.dumps(remote))
    loaded = say(child, "/load gpt-oss:20b-cloud")
    assert loaded.splitlines()[1:] == [
        "Loading model 'gpt-oss:20b-cloud'",
        "Connecting to 'gpt-oss:20b' on 'https://ollama.com:443'",
    ]
    assert finish(child) == 0
    loads = [body["model"] for body in server.json_bodies("/api/generate")]
    assert loads == ["tiny"], "only the first model was preloaded"


@pytest.mark.pty
def test_set_think_checks_the_level(server: OllamaTestServer, data_dir: Path) -> None:
    server.add_model("qwen3:latest", capabilities=["completion", "thinking"])
    server.version = "0.11.0"  # the first to take levels
    child = repl(server, "qwen3")
    assert "Set 'think' mode to 'high'." in say(child, "/set think high")
    invalid = say(child, "/set think lots")
    assert invalid.splitlines()[1:] == [
        'error: invalid think value: "lots"'
        ' (must be "high", "medium", "low", "max", true, or false)'
    ]
    say(child, "first")
    assert "Set 'think' mode to 'false'." in say(child, "/set think false")
    say(child, "second")
    assert finish(child) == 0
    assert [body.get("think") for body in server.json_bodies("/api/chat")] == ["high", False]


# -- undecodable input bytes --------------------------------------------------------------


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_chat_with_non_utf8_stdin_saves_the_conversation(
    server: OllamaTestServer, data_dir: Path, locale: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ollamactl", "--host", server.url, "chat", "tiny"],
        input=NOT_UTF8,
        capture_output=True,
        env={**os.environ, "LC_ALL": locale},
        timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"Hello, world!\n\n"
    [saved] = [json.loads(p.read_text("utf-8")) for p in (data_dir / "chats").glob("*.json")]
    assert saved["messages"][0] == {"role": "user", "content": REPLACED}
    assert server.last_request("/api/chat").json["messages"][0]["content"] == REPLACED


@pytest.mark.parametrize("source", ["file", "-f -", "stdin"])
def test_embed_replaces_undecodable_bytes_in_file_and_stdin_lines(
    server: OllamaTestServer, tmp_path: Path, source: str
) -> None:
    data = NOT_UTF8 + b"\nplain\n"
    path = tmp_path / "inputs.txt"
    path.write_bytes(data)
    args = {"file": ["-f", str(path)], "-f -": ["-f", "-"], "stdin": []}[source]
    result = run_cli(
        "--host",
        server.url,
        "embed",
        "nomic-embed-text",
        *args,
        input=None if source == "file" else data,  # type: ignore[arg-type]
    )
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert server.json_bodies("/api/embed") == [
        {"model": "nomic-embed-text", "input": [REPLACED, "plain"]}
    ]


# -- the order of saved conversations -----------------------------------------------------


def test_chat_list_follows_updated_at_and_continue_breaks_file_time_ties_with_it(
    server: OllamaTestServer, data_dir: Path
) -> None:
    for question in ("first", "second", "third"):
        assert run_cli("--host", server.url, "chat", "tiny", question).exit_code == 0
    chats = data_dir / "chats"
    by_question = {
        json.loads(p.read_text())["messages"][0]["content"]: p for p in chats.glob("*.json")
    }
    # As after a copy from a backup: the file times say the opposite of updated_at.
    for seconds, question in enumerate(("third", "second", "first")):
        os.utime(by_question[question], ns=(10**18 + seconds, 10**18 + seconds))

    listing = run_cli("chat", "list", "--json")
    assert [c["title"] for c in json.loads(listing.stdout)] == ["third", "second", "first"]

    for path in by_question.values():  # equal file times: the same order
        os.utime(path, ns=(10**18, 10**18))
    listing = run_cli("chat", "list")
    assert [line.split()[-1] for line in listing.stdout.splitlines()[1:]] == [
        "third",
        "second",
        "first",
    ]

    assert run_cli("--host", server.url, "chat", "--continue", "fourth").exit_code == 0
    history = server.last_request("/api/chat").json["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["third", "fourth"]
