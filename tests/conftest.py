"""Fixtures for every test: an isolated environment and the fake Ollama server.

The fast inner loop leaves out what drives real programs (pseudo-terminals, nginx, shells,
a real Ollama)::

    python -m pytest -m "not pty and not gateway and not shell and not real"

Markers (declared in pyproject.toml): ``pty`` runs the CLI in a pseudo-terminal, ``gateway``
goes through the nginx TLS gateway (a test that asks for the ``gateway`` fixture is marked
here, automatically), ``shell`` drives a real bash or zsh, ``real`` needs a real Ollama.

Where things are: helpers to run the CLI and seed a server in tests/helpers.py, the fake
Ollama in tests/fake_ollama/ (``server.last_request("/api/chat")`` tells what it received),
the ``backend``/``real_backend`` fixtures in tests/backends.py and ``gateway`` in
tests/gateway.py (registered below).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import seed

pytest_plugins = ["tests.backends", "tests.gateway"]

ISOLATED_PREFIXES = ("OLLAMA_", "OLLAMACTL_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use the nginx gateway (before ``-m`` selects)."""
    for item in items:
        if "gateway" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.gateway)


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
    """Re-issue broken pulls, pushes and batch prompts at once: tests check what is retried,
    not the waiting (in-process runs only; no message names the wait, so every one stays)."""
    from ollamactl import batch, transfers

    monkeypatch.setattr(transfers, "RETRY_BACKOFF_SECONDS", 0.0)
    monkeypatch.setattr(batch, "RETRY_BACKOFF_SECONDS", 0.0)


@pytest.fixture
def server() -> Iterator[OllamaTestServer]:
    """A local Ollama-compatible server on 127.0.0.1 with three models."""
    with seed(OllamaTestServer()) as srv:
        yield srv


@pytest.fixture
def bare() -> Iterator[OllamaTestServer]:
    """A local Ollama-compatible server without the seeded models."""
    with OllamaTestServer() as srv:
        yield srv


@pytest.fixture
def gateway_server() -> Iterator[OllamaTestServer]:
    """The same server behind a path prefix that requires a bearer token."""
    with seed(OllamaTestServer(prefix="/ollama-api", token="canary-token-123")) as srv:
        yield srv
