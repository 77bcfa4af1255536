"""Shared fixtures: an isolated environment, the local Ollama test server, a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ollamactl.cli import cli
from tests.ollama_server import OllamaTestServer

ISOLATED_PREFIXES = ("OLLAMA_", "OLLAMACTL_", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No test reads the developer's config, host or tokens; user dirs live in tmp_path."""
    for name in list(os.environ):
        if name.startswith(ISOLATED_PREFIXES) or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("OLLAMACTL_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-issue broken pulls and pushes at once: tests check what is retried, not the waiting.

    (In-process runs only; the retry notice does not name the wait, so every message stays.)
    """
    from ollamactl.commands import transfer

    monkeypatch.setattr(transfer, "RETRY_BACKOFF_SECONDS", 0.0)


def seed(server: OllamaTestServer) -> OllamaTestServer:
    """Give a test server the models most tests expect."""
    server.add_model("tiny:latest", size=605_814, parameter_size="148K")
    server.add_model(
        "gemma3:12b",
        size=8_149_190_253,
        family="gemma3",
        parameter_size="12.2B",
        quantization_level="Q4_K_M",
        capabilities=["completion", "vision"],
    )
    server.add_model(
        "nomic-embed-text:latest",
        size=274_302_450,
        family="nomic-bert",
        parameter_size="137M",
        quantization_level="F16",
        capabilities=["embedding"],
    )
    return server


@pytest.fixture
def server() -> Iterator[OllamaTestServer]:
    """A local Ollama-compatible server on 127.0.0.1 with three models."""
    with seed(OllamaTestServer()) as srv:
        yield srv


@pytest.fixture
def gateway_server() -> Iterator[OllamaTestServer]:
    """The same server behind a path prefix that requires a bearer token."""
    with seed(OllamaTestServer(prefix="/ollama-api", token="canary-token-123")) as srv:
        yield srv


def cli_runner() -> CliRunner:
    """A CliRunner that keeps stderr apart from stdout (click 8.1, for Python 3.9, mixes them)."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2: always separate
        return CliRunner()


def run_cli(
    *args: str, input: str | None = None, env: dict[str, str] | None = None, **kwargs: Any
) -> Result:
    """Run the real CLI in-process; stdout and stderr stay separate."""
    return cli_runner().invoke(
        cli,
        list(args),
        input=input,
        env=env,
        prog_name="ollamactl",
        catch_exceptions=False,
        **kwargs,
    )


def on(
    server: OllamaTestServer,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """Run the CLI against ``server``; off a terminal, nothing may write escape codes."""
    result = run_cli("--host", server.url, *args, input=input, env=env)
    assert "\x1b" not in result.stdout + result.stderr, "escape codes off a terminal"
    return result


from tests.backends import backend, real_backend  # noqa: E402, F401  (fixtures)
