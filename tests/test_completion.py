"""Completion through click's own machinery, against the test server; the committed scripts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import pytest
from click.shell_completion import ShellComplete

from ollamactl import completion
from ollamactl.cli import cli
from ollamactl.client import Client
from ollamactl.config import Flags, resolve, save_config
from ollamactl.conversations import Conversation, ConversationStore
from tests.fake_ollama import OllamaTestServer
from tests.helpers import dead_url, run_cli

ROOT = Path(__file__).resolve().parent.parent
COMPLETION_FILES = {"bash": "ollamactl.bash", "zsh": "_ollamactl", "fish": "ollamactl.fish"}


def complete(args: list[str], incomplete: str) -> list[str]:
    """The candidates a shell would get for ``ollamactl ARGS INCOMPLETE<TAB>``."""
    completer = ShellComplete(cli, {}, "ollamactl", "_OLLAMACTL_COMPLETE")
    return [str(item.value) for item in completer.get_completions(args, incomplete)]


@pytest.mark.parametrize("command", ["run", "chat", "embed", "show", "rm", "cp", "push", "exists"])
def test_model_names_come_from_the_server(server: OllamaTestServer, command: str) -> None:
    assert complete(["--host", server.url, command], "gem") == ["gemma3:12b"]
    assert sorted(complete(["--host", server.url, command], "")) == sorted(server.models)


def test_only_the_source_of_cp_completes(server: OllamaTestServer) -> None:
    assert complete(["--host", server.url, "cp"], "ti") == ["tiny:latest"]
    assert complete(["--host", server.url, "cp", "tiny:latest"], "ti") == []  # DEST is new


def test_rm_does_not_offer_the_names_already_given(server: OllamaTestServer) -> None:
    candidates = complete(["--host", server.url, "rm", "gemma3:12b"], "")
    assert "gemma3:12b" not in candidates and "tiny:latest" in candidates


def test_stop_completes_the_running_models_only(server: OllamaTestServer) -> None:
    Client(resolve(Flags(host=server.url))).load("tiny:latest")
    assert complete(["--host", server.url, "stop"], "") == ["tiny:latest"]


def test_the_host_comes_from_the_environment_and_profiles(
    server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_config({"profiles": {"lab": {"host": server.url}}})
    assert complete(["--profile", "lab", "rm"], "gem") == ["gemma3:12b"]
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    assert complete(["rm"], "nomic") == ["nomic-embed-text:latest"]


def test_a_second_tab_is_answered_from_the_cache(server: OllamaTestServer) -> None:
    args = ["--host", server.url, "show"]
    first = complete(args, "")
    server.stop()
    assert first and complete(args, "") == first


def test_names_are_cached_per_server(server: OllamaTestServer) -> None:
    with OllamaTestServer() as other:
        other.add_model("other-model:latest")
        assert complete(["--host", server.url, "rm"], "o") == []
        assert complete(["--host", other.url, "rm"], "o") == ["other-model:latest"]


def test_the_cache_holds_no_credentials(
    gateway_server: OllamaTestServer, isolated_env: Path
) -> None:
    args = ["--host", gateway_server.url, "--api-key", "canary-token-123", "rm"]
    assert "tiny:latest" in complete(args, "")
    cached = list((isolated_env / "home" / ".cache" / "ollamactl").iterdir())
    assert cached and all(f.stat().st_mode & 0o777 == 0o600 for f in cached)
    assert not any("canary-token-123" in f.read_text() for f in cached)


def test_a_dead_server_gives_no_candidates_and_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert complete(["--host", dead_url(), "rm"], "") == []
    assert complete(["--host", "http://bad host", "rm"], "") == []
    assert capfd.readouterr() == ("", "")


def test_profile_names_complete(server: OllamaTestServer) -> None:
    save_config({"profiles": {"gpu": {"host": server.url}, "lab": {"host": "lab"}}})
    assert complete(["--profile"], "g") == ["gpu"]
    assert complete(["config", "profile", "use"], "") == ["gpu", "lab"]
    assert complete(["config", "get"], "profiles.gpu.h") == ["profiles.gpu.host"]


def test_a_warm_cache_completion_does_not_import_requests(
    server: OllamaTestServer, isolated_env: Path
) -> None:
    env = {**os.environ, "OLLAMA_HOST": server.url, "_OLLAMACTL_COMPLETE": "zsh_complete"}
    env |= {"COMP_WORDS": "ollamactl rm gem", "COMP_CWORD": "2", "PYTHONPATH": str(ROOT)}
    probe = (
        "import sys\nfrom ollamactl.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(' '.join(sys.modules))"
    )
    cold = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    server.stop()
    warm = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert "gemma3:12b" in cold.stdout and "requests" in cold.stderr.split()
    assert warm.stdout == cold.stdout
    assert not {"requests", "urllib3"} & set(warm.stderr.split())


def test_bash_requests_in_clicks_own_form_are_answered(server: OllamaTestServer) -> None:
    """Without COMP_LINE (click's protocol: COMP_WORDS/COMP_CWORD) bash completion still works."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMP_")}
    env |= {
        "OLLAMA_HOST": server.url,
        "_OLLAMACTL_COMPLETE": "bash_complete",
        "COMP_WORDS": "ollamactl rm gem",
        "COMP_CWORD": "2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ollamactl"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "plain,gemma3:12b" in done.stdout.splitlines()


@pytest.mark.parametrize("shell", sorted(COMPLETION_FILES))
def test_committed_completion_scripts_are_what_the_code_generates(shell: str) -> None:
    committed = (ROOT / "completions" / COMPLETION_FILES[shell]).read_text()
    assert run_cli("completion", shell).stdout == committed, (
        "stale completions/: run python scripts/gen_completions.py"
    )


def complete_items(args: list[str], incomplete: str) -> list[tuple[str, str, str | None]]:
    """(type, value, description) of each candidate for ``ollamactl ARGS INCOMPLETE<TAB>``."""
    completer = ShellComplete(cli, {}, "ollamactl", "_OLLAMACTL_COMPLETE")
    return [(i.type, str(i.value), i.help) for i in completer.get_completions(args, incomplete)]


@pytest.fixture
def silent_server() -> Iterator[tuple[str, Callable[[], int]]]:
    """A URL whose server accepts connections and never answers, and a count of them."""
    with closing(socket.socket()) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)

        def connections() -> int:
            count = 0
            with suppress(BlockingIOError):
                while True:
                    listener.accept()[0].close()
                    count += 1
            return count

        yield f"http://127.0.0.1:{listener.getsockname()[1]}", connections


def test_a_server_that_does_not_answer_is_not_asked_again_at_once(
    silent_server: tuple[str, Callable[[], int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, connections = silent_server
    monkeypatch.setattr(completion, "SERVER_TIMEOUT", 0.2)
    assert complete(["--host", url, "rm"], "") == []
    assert connections() == 1
    assert complete(["--host", url, "rm"], "") == [] and complete(["--host", url, "stop"], "") == []
    assert connections() == 0, "a second TAB within DOWN_SECONDS does not wait for it again"


def test_a_failed_server_is_asked_again_once_the_note_is_old(
    server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.stop()
    assert complete(["--host", server.url, "rm"], "") == []
    with OllamaTestServer(port=server.port) as again:
        again.add_model("tiny:latest")
        assert complete(["--host", again.url, "rm"], "") == []  # still noted as down
        monkeypatch.setattr(completion, "DOWN_SECONDS", 0.0)
        assert complete(["--host", again.url, "rm"], "tin") == ["tiny:latest"]


def test_a_host_name_that_does_not_resolve_in_time_costs_one_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deadline covers the name lookup too (getaddrinfo has no timeout of its own)."""
    released = threading.Event()
    lookups: list[str] = []

    def hanging_lookup(host: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        released.wait(30)
        raise socket.gaierror("released")

    monkeypatch.setattr(completion, "SERVER_TIMEOUT", 0.2)
    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    try:
        assert complete(["--host", "http://slow-dns.invalid:11434", "rm"], "") == []
        assert complete(["--host", "http://slow-dns.invalid:11434", "rm"], "") == []
    finally:
        released.set()
    assert lookups == ["slow-dns.invalid"]


def seed_registry_and_modelfile(server: OllamaTestServer, folder: Path) -> Path:
    server.add_registry_model("fresh:latest", [1000])
    modelfile = folder / "Modelfile"
    modelfile.write_text("FROM tiny:latest\nSYSTEM Be brief.\n")
    return modelfile


@pytest.mark.parametrize(
    ("command", "typed", "before", "after"),
    [
        (["pull", "fresh"], "fr", [], ["fresh:latest"]),
        (["cp", "tiny", "copied"], "cop", [], ["copied:latest"]),
        (["create", "made", "-f", "{modelfile}"], "ma", [], ["made:latest"]),
        (["rm", "-y", "gemma3:12b"], "gem", ["gemma3:12b"], []),
    ],
)
def test_the_next_tab_after_a_command_that_changes_models_asks_again(
    server: OllamaTestServer,
    tmp_path: Path,
    command: list[str],
    typed: str,
    before: list[str],
    after: list[str],
) -> None:
    modelfile = seed_registry_and_modelfile(server, tmp_path)
    assert complete(["--host", server.url, "show"], typed) == before  # now in the cache
    args = [arg.format(modelfile=modelfile) for arg in command]
    assert run_cli("--host", server.url, *args).exit_code == 0
    assert complete(["--host", server.url, "show"], typed) == after


def test_running_models_are_asked_again_after_run_and_stop(server: OllamaTestServer) -> None:
    assert complete(["--host", server.url, "stop"], "") == []
    assert run_cli("--host", server.url, "run", "tiny", "hi").exit_code == 0
    assert complete(["--host", server.url, "stop"], "") == ["tiny:latest"]
    assert run_cli("--host", server.url, "stop", "tiny").exit_code == 0
    assert complete(["--host", server.url, "stop"], "") == []


def test_a_command_that_changes_nothing_keeps_the_cache(server: OllamaTestServer) -> None:
    assert complete(["--host", server.url, "show"], "gem") == ["gemma3:12b"]
    server.models.clear()
    assert run_cli("--host", server.url, "list").exit_code == 0
    assert complete(["--host", server.url, "show"], "gem") == ["gemma3:12b"]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "tiny", "-i"],
        ["chat", "tiny", "--image"],
        ["chat", "--messages"],
        ["chat", "--tools"],
        ["embed", "tiny", "-f"],
        ["create", "x", "-f"],
        ["batch", "tiny"],
        ["batch", "tiny", "-o"],
        ["--ca-cert"],
        ["config", "profile", "add", "lab", "--ca-cert"],
    ],
)
def test_options_that_take_a_file_complete_file_names(args: list[str]) -> None:
    assert complete_items(args, "sub") == [("file", "sub", None)]


def test_format_completes_json_or_the_files_after_the_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "schemas").mkdir(parents=True)
    (work / "schemas" / "answer.json").write_text("{}")
    (work / "schema.json").write_text("{}")
    (work / ".hidden.json").write_text("{}")
    monkeypatch.chdir(work)
    for args in (["run", "tiny", "--format"], ["chat", "--format"], ["batch", "tiny", "--format"]):
        assert complete(args, "") == ["json"]
        assert complete(args, "@") == ["@schema.json", "@schemas/"]
        assert complete(args, "@schemas/") == ["@schemas/answer.json"]
        assert complete(args, "@.h") == ["@.hidden.json"]
        assert complete(args, f"@{work}/sche") == [f"@{work}/schema.json", f"@{work}/schemas/"]


def save_conversation(conversation_id: str, model: str, question: str) -> None:
    conversation = Conversation(id=conversation_id, model=model)
    conversation.messages.append({"role": "user", "content": question})
    ConversationStore().save(conversation)


def test_saved_conversations_complete_with_their_model_and_first_words() -> None:
    save_conversation("3fa9c1", "tiny:latest", "Why is the sky blue?\nAnd the sea?")
    save_conversation("3fb000", "gemma3:12b", "Name three rivers")
    save_conversation("a11111", "tiny:latest", "")
    expected = [
        ("plain", "3fa9c1", "tiny:latest Why is the sky blue?"),
        ("plain", "3fb000", "gemma3:12b Name three rivers"),
    ]
    for args in (["chat", "--resume"], ["chat", "show"], ["chat", "rm"]):
        assert sorted(complete_items(args, "3f")) == expected
    assert complete_items(["chat", "show"], "a") == [("plain", "a11111", "tiny:latest")]
    assert [value for _, value, _ in complete_items(["chat", "rm", "3fa9c1"], "3f")] == ["3fb000"]


def test_help_completes_the_commands_below_the_words_given() -> None:
    assert complete(["help"], "ver") == ["version"]
    assert complete(["help", "config"], "pro") == ["profile"]
    assert complete(["help", "config", "profile"], "a") == ["add"]
    assert complete(["help", "version"], "") == []
