"""chat: one-shot turns over /api/chat, saved conversations, tools, and surviving kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
from pathlib import Path

import pytest

from tests.fake_ollama import OllamaTestServer
from tests.gateway import ollamactl, read_until
from tests.helpers import on, run_cli, saved_chats

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture
def chats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder conversations are saved in."""
    monkeypatch.setenv("OLLAMACTL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "chats"


def chat_requests(server: OllamaTestServer) -> list[dict]:
    return server.json_bodies("/api/chat")


def test_one_shot_chat_answers_and_saves_the_conversation(
    server: OllamaTestServer, chats: Path
) -> None:
    result = on(server, "chat", "tiny", "Name", "three", "rivers", "--system", "Be brief.")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello, world!\n\n"
    assert chat_requests(server)[-1] == {
        "model": "tiny",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name three rivers"},
        ],
    }
    [conversation] = saved_chats()
    assert conversation["model"] == "tiny"
    assert conversation["messages"][1:] == [
        {"role": "user", "content": "Name three rivers"},
        {"role": "assistant", "content": "Hello, world!"},
    ]
    path = next(chats.glob("*.json"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in chats.iterdir()] == [path.name], "no temporary file is left behind"


def test_continue_sends_the_whole_history(server: OllamaTestServer, chats: Path) -> None:
    assert on(server, "chat", "tiny", "first question").exit_code == 0
    result = on(server, "chat", "--continue", "second", "question", "-p", "num_ctx=4096")
    assert result.exit_code == 0, result.stderr
    request = chat_requests(server)[-1]
    assert request["model"] == "tiny"
    assert request["options"] == {"num_ctx": 4096}
    assert [m["content"] for m in request["messages"]] == [
        "first question",
        "Hello, world!",
        "second question",
    ]
    [conversation] = saved_chats()
    assert len(conversation["messages"]) == 4
    assert conversation["options"] == {"num_ctx": 4096}


def test_resume_picks_a_conversation_by_id_prefix(server: OllamaTestServer, chats: Path) -> None:
    on(server, "chat", "tiny", "about cats")
    on(server, "chat", "gemma3:12b", "about dogs")
    cats = next(c for c in saved_chats() if c["messages"][0]["content"] == "about cats")
    result = on(server, "chat", "--resume", cats["id"][:4], "more")
    assert result.exit_code == 0, result.stderr
    request = chat_requests(server)[-1]
    assert request["model"] == "tiny"
    assert [m["content"] for m in request["messages"]] == ["about cats", "Hello, world!", "more"]


def test_resume_errors(server: OllamaTestServer, chats: Path) -> None:
    result = on(server, "chat", "--continue", "hi")
    assert result.exit_code == 2
    assert "no saved conversation to continue" in result.stderr
    result = on(server, "chat", "--resume", "zzzz", "hi")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no conversation 'zzzz'")
    assert server.requests == []


def test_list_show_and_rm(server: OllamaTestServer, chats: Path) -> None:
    on(server, "chat", "tiny", "What is the capital of France?\nAnswer briefly.")
    on(server, "chat", "--continue", "And of Italy?")
    [conversation] = saved_chats()
    listing = on(server, "chat", "list")
    assert listing.exit_code == 0
    header, row = listing.stdout.splitlines()
    assert header.split() == ["ID", "MODEL", "TURNS", "UPDATED", "TITLE"]
    assert row.split()[:3] == [conversation["id"], "tiny", "2"]
    assert row.rstrip().endswith("ago    What is the capital of France?")
    assert json.loads(on(server, "chat", "list", "--json").stdout)[0]["turns"] == 2

    shown = on(server, "chat", "show", conversation["id"])
    assert shown.stdout == (
        ">>> What is the capital of France?\nAnswer briefly.\nHello, world!\n\n"
        ">>> And of Italy?\nHello, world!\n\n"
    )
    as_json = json.loads(on(server, "chat", "show", conversation["id"], "--json").stdout)
    assert as_json == conversation

    removed = on(server, "chat", "rm", conversation["id"])
    assert removed.stdout == f"deleted conversation '{conversation['id']}'\n"
    assert saved_chats() == []
    assert on(server, "chat", "list").stdout == "ID    MODEL    TURNS    UPDATED    TITLE \n"


def test_tools_are_sent_without_streaming_and_calls_printed_as_json(
    server: OllamaTestServer, chats: Path, tmp_path: Path
) -> None:
    server.add_model("qwen3", capabilities=["completion", "tools"])
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS))
    result = on(
        server, "chat", "qwen3", "Weather in Paris?", "--tools", str(tmp_path / "tools.json")
    )
    assert result.exit_code == 0, result.stderr
    request = chat_requests(server)[-1]
    assert request["stream"] is False and request["tools"] == TOOLS
    calls = json.loads(result.stdout)
    assert calls == [
        {"function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert saved_chats()[0]["messages"][-1]["tool_calls"] == calls


def test_prepared_messages_are_sent_as_given(server: OllamaTestServer, chats: Path) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "and 3+3?"},
    ]
    result = on(server, "chat", "tiny", "--messages", "-", "--json", input=json.dumps(messages))
    assert result.exit_code == 0, result.stderr
    assert chat_requests(server)[-1]["messages"] == messages
    final = json.loads(result.stdout)
    assert final["message"] == {"role": "assistant", "content": "Hello, world!"}
    assert final["done"] is True


def test_bad_messages_file_exits_2(server: OllamaTestServer, chats: Path, tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text('[{"content": "no role"}]')
    result = on(server, "chat", "tiny", "--messages", str(tmp_path / "m.json"))
    assert result.exit_code == 2
    assert "needs a 'role'" in result.stderr


def test_piped_stdin_is_the_prompt(server: OllamaTestServer, chats: Path) -> None:
    result = on(server, "chat", "tiny", "Summarise:", input="some text")
    assert result.exit_code == 0, result.stderr
    assert chat_requests(server)[-1]["messages"][-1]["content"] == "some text Summarise:"


def test_chat_refuses_an_embedding_model(server: OllamaTestServer, chats: Path) -> None:
    result = on(server, "chat", "nomic-embed-text", "hi")
    assert result.exit_code == 2
    assert "embedding model" in result.stderr and "ollamactl embed" in result.stderr


def test_chat_pulls_a_missing_model_first(server: OllamaTestServer, chats: Path) -> None:
    server.add_registry_model("fresh:latest", [1000])
    result = on(server, "chat", "fresh", "hi")
    assert result.exit_code == 0, result.stderr
    assert [r.path for r in server.requests][:3] == ["/api/show", "/api/pull", "/api/show"]


def test_help_shows_both_forms() -> None:
    group = run_cli("chat", "--help")
    assert "ollamactl chat list | show ID | rm ID..." in group.stdout
    assert "--continue" in group.stdout and "Commands:" in group.stdout
    session = run_cli("chat", "tiny", "--help")
    assert session.stdout.startswith("Usage: ollamactl chat [OPTIONS] [MODEL] [PROMPT]...")
    wrong = run_cli("chat", "tiny", "--bogus")
    assert wrong.exit_code == 2
    assert re.search(r"Try 'ollamactl chat (-h|--help)' for help\.", wrong.stderr)


def test_sigkill_mid_answer_keeps_every_earlier_turn(server: OllamaTestServer, chats: Path) -> None:
    assert on(server, "chat", "tiny", "turn one").exit_code == 0
    assert on(server, "chat", "--continue", "turn two").exit_code == 0
    server.generation.update(token_count=1000, token_delay=0.01)
    with ollamactl("--host", server.url, "chat", "--continue", "turn three") as process:
        read_until(process.stdout, b"tok3 ")  # type: ignore[arg-type]
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL

    server.generation.update(token_count=0, token_delay=0.0)
    result = on(server, "chat", "--continue", "turn four")
    assert result.exit_code == 0, result.stderr
    assert [m["content"] for m in chat_requests(server)[-1]["messages"]] == [
        "turn one",
        "Hello, world!",
        "turn two",
        "Hello, world!",
        "turn three",
        "turn four",
    ], "the question in flight was saved; only its answer was lost"
    [conversation] = saved_chats()
    assert conversation["messages"][-1] == {"role": "assistant", "content": "Hello, world!"}


def test_ctrl_c_keeps_the_partial_answer_marked_interrupted(
    server: OllamaTestServer, chats: Path
) -> None:
    server.generation.update(token_count=1000, token_delay=0.01)
    with ollamactl("--host", server.url, "chat", "tiny", "count") as process:
        read_until(process.stdout, b"tok2 ")  # type: ignore[arg-type]
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert process.returncode == 130
    [conversation] = saved_chats()
    last = conversation["messages"][-1]
    assert last["role"] == "assistant" and last["interrupted"] is True
    assert last["content"].startswith("tok0 tok1 tok2 ")
    server.generation.update(token_count=0, token_delay=0.0)
    assert on(server, "chat", "--continue", "go on").exit_code == 0
    resent = chat_requests(server)[-1]["messages"][1]
    assert "interrupted" not in resent and resent["content"] == last["content"]


def test_saving_is_once_per_message_not_per_token(
    server: OllamaTestServer, chats: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ollamactl.conversations import ConversationStore

    writes = []
    original = ConversationStore.save
    monkeypatch.setattr(
        ConversationStore, "save", lambda self, c: writes.append(1) or original(self, c)
    )
    server.generation["token_count"] = 300
    assert on(server, "chat", "tiny", "long answer").exit_code == 0
    assert len(writes) == 2, "the question before sending, the answer when complete"
