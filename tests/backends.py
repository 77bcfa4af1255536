"""The two servers end-to-end tests run against: the local test server and a real Ollama.

The real one is started by ``scripts/real-ollama.sh start``; it is found through the
``OLLAMACTL_REAL_*`` environment variables, or the env file that script writes in its state
folder. Without it, tests of the ``real`` tier are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.ollama_server import OllamaTestServer

DEFAULT_STATE = Path.home() / ".cache" / "ollamactl-real" / "state"
START_HINT = "start one with: bash scripts/real-ollama.sh start"


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            words = words[1:]
        for word in words:
            key, eq, value = word.partition("=")
            if eq:
                values[key] = value
    return values


def _answers(url: str) -> str | None:
    """The server's version, or None when nothing answers at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=2) as response:
            return str(json.load(response).get("version"))
    except (OSError, ValueError):
        return None


def discover_real() -> tuple[dict[str, str] | None, str]:
    """Find a running real Ollama started by the project's script: (its env, or None; why)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("OLLAMACTL_REAL_")}
    if "OLLAMACTL_REAL_HOST" not in env:
        state = Path(os.environ.get("OLLAMACTL_REAL_STATE") or DEFAULT_STATE)
        env = _read_env_file(state / "env")
    host = env.get("OLLAMACTL_REAL_HOST")
    if not host:
        return None, f"no real Ollama server is configured ({START_HINT})"
    if _answers(host) is None:
        return None, f"the real Ollama server at {host} does not answer ({START_HINT})"
    return env, ""


REAL_ENV, REAL_SKIP_REASON = discover_real()


@dataclass
class Backend:
    """A server to run the CLI against, with the names its models have there."""

    kind: str
    url: str
    model: str
    pullable_model: str
    gguf: Path | None
    go_cli: str | None = None
    server: OllamaTestServer | None = None
    created: list[str] = field(default_factory=list)


def _fake_backend(tmp_path: Path) -> Iterator[Backend]:
    server = OllamaTestServer()
    server.add_model("tiny:latest", size=605_814, parameter_size="148K")
    server.add_registry_model("registry.test/library/tiny-fresh:latest", layers=[605_814, 120])
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    with server:
        yield Backend(
            "fake",
            server.url,
            "tiny",
            "registry.test/library/tiny-fresh:latest",
            gguf,
            server=server,
        )


def _real_backend() -> Iterator[Backend]:
    if REAL_ENV is None:
        pytest.skip(REAL_SKIP_REASON)
    backend = Backend(
        "real",
        REAL_ENV["OLLAMACTL_REAL_HOST"],
        REAL_ENV.get("OLLAMACTL_REAL_MODEL", "tiny"),
        REAL_ENV.get("OLLAMACTL_REAL_FRESH_MODEL", ""),
        Path(REAL_ENV["OLLAMACTL_REAL_GGUF"]) if "OLLAMACTL_REAL_GGUF" in REAL_ENV else None,
        go_cli=REAL_ENV.get("OLLAMACTL_REAL_BIN"),
    )
    yield backend
    for name in backend.created:  # leave the shared real server as it was
        request = urllib.request.Request(
            f"{backend.url}/api/delete", data=json.dumps({"model": name}).encode(), method="DELETE"
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.real)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each end-to-end test runs against the local test server and, in the real tier, Ollama."""
    if request.param == "fake":
        yield from _fake_backend(tmp_path)
    else:
        yield from _real_backend()


@pytest.fixture
def real_backend() -> Iterator[Backend]:
    """Only the real Ollama (for comparisons with the Go CLI)."""
    yield from _real_backend()
