"""The two servers end-to-end tests run against: the local test server and a real Ollama.

The real one is started by ``scripts/real-ollama.sh start``; it is found through the
``OLLAMACTL_REAL_*`` environment variables, or the env file that script writes in its state
folder. Without it, tests of the ``real`` tier are skipped with the reason. The fixtures
``backend`` and ``real_backend`` are registered by conftest.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shlex
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import STRICT

DEFAULT_STATE = Path.home() / ".cache" / "ollamactl-real" / "state"
START_HINT = "start one with: bash scripts/real-ollama.sh start"
#: Bytes of the weights layer a stalled pull receives before the registry goes silent.
STALL_AT = 256 * 1024
#: Longest time the stalling registry waits for the client to hang up.
STALL_LIMIT = 30.0
#: The stalling registry stops by itself after this many seconds (should a teardown not run).
REGISTRY_LIFETIME = 300.0


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
    wanted = ("OLLAMACTL_REAL_FRESH_MODEL", "OLLAMACTL_REAL_REGISTRY", "OLLAMACTL_REAL_GGUF")
    missing = [key for key in wanted if key not in env]
    if missing:
        return None, f"the real Ollama server lacks {', '.join(missing)} ({START_HINT})"
    return env, ""


REAL_ENV, REAL_SKIP_REASON = discover_real()
#: Set by CI (either variable): without a real server the real tier fails instead of skipping.
REAL_REQUIRED = bool(os.environ.get("OLLAMACTL_REAL_REQUIRED")) or STRICT


@dataclass
class StalledPull:
    """A model whose first pull stops in the middle of a layer and then stays silent.

    The next pull resumes; on the real server its download waits for ``resume()``, so that
    the client sees where the server resumed before the rest arrives.
    """

    name: str
    #: Wait up to this many seconds until the stalled transfer is dropped; True when it is.
    released: Callable[[float], bool]
    #: Let the resumed download go on.
    resume: Callable[[], None]


@dataclass
class Backend:
    """A server to run the CLI against, with the names its models have there."""

    kind: str
    url: str
    #: A model that generates, chats and embeds.
    model: str
    #: A model in a registry and not on the server (pull it with --insecure).
    pullable_model: str
    #: ``host[:port]`` of a registry to push to with --insecure.
    registry: str
    #: A GGUF file whose blob the server does not have yet.
    gguf: Path
    #: Makes a model whose first pull stalls after some bytes (see :class:`StalledPull`).
    stalled_pull: Callable[[], StalledPull]
    go_cli: str | None = None
    #: Models a test made: deleted again when the test ends.
    created: list[str] = field(default_factory=list)

    @property
    def missing_tag(self) -> str:
        """A tag of the pullable model that the registry does not have."""
        return self.pullable_model.rsplit(":", 1)[0] + ":nosuchtag"

    def unique_name(self, stem: str, *, in_registry: bool = False) -> str:
        """A model name no other test run uses (under the registry's host if asked).

        It is remembered in ``created``, so the model is deleted when the test ends.
        """
        name = f"e2e-{stem}-{uuid.uuid4().hex[:8]}:latest"
        if in_registry:
            name = f"{self.registry}/library/{name}"
        self.created.append(name)
        return name


# -- the local test server ------------------------------------------------------------------


def _fake_backend(tmp_path: Path) -> Iterator[Backend]:
    server = OllamaTestServer()
    server.add_model("tiny:latest", size=605_814, parameter_size="148K")
    server.add_registry_model("registry.test/library/tiny-fresh:latest", layers=[605_814, 120])
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 64 + uuid.uuid4().bytes)

    def stalled_pull() -> StalledPull:
        name = "registry.test/library/e2e-stalled:latest"
        server.add_registry_model(name, layers=[2_000_000, 120])
        server.pull_steps = 10
        server.add_fault("/api/pull", stall_after_lines=4, stall_seconds=STALL_LIMIT)
        server.stall_released.clear()
        server.resume_gate = threading.Event()
        return StalledPull(name, server.stall_released.wait, server.resume_gate.set)

    with server:
        yield Backend(
            "fake",
            server.url,
            "tiny",
            "registry.test/library/tiny-fresh:latest",
            "registry.test",
            gguf,
            stalled_pull,
        )


# -- the real Ollama ------------------------------------------------------------------------


class _StallingRegistry(ThreadingHTTPServer):
    """A registry on 127.0.0.1 with one model whose weights stall on their first download.

    Ollama fetches a blob only through a 307 redirect to another host name (ollama.com sends
    it to a CDN), so blob reads are redirected from 127.0.0.1 to localhost, this same server.
    The first GET of the weights sends ``STALL_AT`` bytes, then nothing until Ollama hangs up;
    the resumed download asks for the rest with a Range header and gets it once ``resuming``
    is set.
    """

    daemon_threads = True

    def __init__(self, repository: str, weights: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _RegistryHandler)
        self.repository = repository
        config = json.dumps({"model_format": "gguf", "model_family": "llama"}).encode()
        self.blobs = {_digest(weights): weights, _digest(config): config}
        self.weights = _digest(weights)
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": _descriptor("application/vnd.docker.container.image.v1+json", config),
                "layers": [_descriptor("application/vnd.ollama.image.model", weights)],
            }
        ).encode()
        self.stalled = False
        self.released = threading.Event()
        self.resuming = threading.Event()
        self.stopping = threading.Event()
        self._lifetime: threading.Timer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def start(self) -> _StallingRegistry:
        """Serve in a daemon thread; stop by itself after REGISTRY_LIFETIME seconds."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        timer = threading.Timer(REGISTRY_LIFETIME, self.stop)
        timer.daemon = True
        timer.start()
        self._lifetime = timer
        return self

    def stop(self) -> None:
        """Release every waiting handler, stop serving and close the socket. Idempotent."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.resuming.set()
        if self._lifetime is not None:
            self._lifetime.cancel()
        self.shutdown()
        self.server_close()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


class _RegistryHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StallingRegistry

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def _serve(self, with_body: bool) -> None:
        registry = self.server
        prefix = f"/v2/library/{registry.repository}/"
        if self.path == prefix + "manifests/latest":
            self._send(200, registry.manifest, with_body)
        elif self.path.startswith(prefix + "blobs/"):
            port = registry.server_address[1]
            self.send_response(307)
            self.send_header("Location", f"http://localhost:{port}/data/{self.path.split('/')[-1]}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/data/") and self.path[6:] in registry.blobs:
            self._send_blob(self.path[6:], with_body)
        else:
            self._send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', with_body)

    def _send(self, status: int, body: bytes, with_body: bool, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _send_blob(self, digest: str, with_body: bool) -> None:
        registry = self.server
        data = registry.blobs[digest]
        first, _, last = self.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
        start, end = int(first or 0), int(last) if last else len(data) - 1
        chunk = data[start : end + 1]
        weights = with_body and digest == registry.weights
        if weights and registry.stalled:
            registry.resuming.wait(STALL_LIMIT)
        if not weights or registry.stalled:
            self._send(206, chunk, with_body, Content_Range=f"bytes {start}-{end}/{len(data)}")
            return
        registry.stalled = True
        self.send_response(206)
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        self.wfile.write(chunk[:STALL_AT])
        self.wfile.flush()
        self._wait_for_hang_up()
        self.close_connection = True
        registry.released.set()

    def _wait_for_hang_up(self) -> None:
        """Send nothing more until the client closes the connection (at most STALL_LIMIT s)."""
        deadline = time.monotonic() + STALL_LIMIT
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return
                time.sleep(0.05)


def _unique_gguf(source: Path, target: Path, padding: int = 0) -> Path:
    """A copy of a GGUF with a unique tail (Ollama ignores it), so its blob is new to the server."""
    target.write_bytes(source.read_bytes() + uuid.uuid4().bytes + os.urandom(padding))
    return target


def _remove(url: str, name: str) -> None:
    """Unload and delete a model, as `ollama rm` does (a deleted model cannot be unloaded)."""
    for path, method, body in (
        ("/api/generate", "POST", {"model": name, "keep_alive": 0}),
        ("/api/delete", "DELETE", {"model": name}),
    ):
        request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method)
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=10).close()


def _real_backend(tmp_path: Path) -> Iterator[Backend]:
    if REAL_ENV is None:
        if REAL_REQUIRED:
            pytest.fail(f"OLLAMACTL_REAL_REQUIRED/_TEST_STRICT is set but {REAL_SKIP_REASON}")
        pytest.skip(REAL_SKIP_REASON)
    source = Path(REAL_ENV["OLLAMACTL_REAL_GGUF"])
    registries: list[_StallingRegistry] = []

    def stalled_pull() -> StalledPull:
        repository = f"e2e-stalled-{uuid.uuid4().hex[:8]}"
        weights = _unique_gguf(source, tmp_path / f"{repository}.gguf", padding=4 * STALL_AT)
        registry = _StallingRegistry(repository, weights.read_bytes()).start()
        registries.append(registry)
        name = f"{registry.host}/library/{repository}:latest"
        backend.created.append(name)
        return StalledPull(name, released=registry.released.wait, resume=registry.resuming.set)

    backend = Backend(
        "real",
        REAL_ENV["OLLAMACTL_REAL_HOST"],
        REAL_ENV.get("OLLAMACTL_REAL_MODEL", "tiny"),
        REAL_ENV["OLLAMACTL_REAL_FRESH_MODEL"],
        REAL_ENV["OLLAMACTL_REAL_REGISTRY"],
        _unique_gguf(source, tmp_path / "tiny.gguf"),
        stalled_pull,
        go_cli=REAL_ENV.get("OLLAMACTL_REAL_BIN"),
    )
    yield backend
    for registry in registries:
        registry.stop()
    for name in [backend.pullable_model, *backend.created]:  # leave the server as it was
        _remove(backend.url, name)


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.real)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each end-to-end test runs against the local test server and, in the real tier, Ollama."""
    if request.param == "fake":
        yield from _fake_backend(tmp_path)
    else:
        yield from _real_backend(tmp_path)


@pytest.fixture
def real_backend(tmp_path: Path) -> Iterator[Backend]:
    """Only the real Ollama (for comparisons with the Go CLI)."""
    yield from _real_backend(tmp_path)
