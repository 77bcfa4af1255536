"""Completion through click's own machinery, against the test server; the committed scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete

from ollamactl.cli import cli
from ollamactl.client import Client
from ollamactl.config import Flags, resolve, save_config
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
