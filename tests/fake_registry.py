"""A registry on 127.0.0.1 that serves manifests the way distribution 2.8 does (for ``outdated``).

``GET``/``HEAD /v2/<namespace>/<repository>/manifests/<tag>`` answers the stored bytes with
``Docker-Content-Digest``; without the docker manifest type in ``Accept`` it answers 400
``MANIFEST_INVALID``, a tag it lacks 404 ``MANIFEST_UNKNOWN``. ``refuse`` makes every answer
an error status instead (e.g. 401). ``requests`` records (method, path, headers).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def manifest(*sizes: int, seed: str = "") -> dict[str, Any]:
    """A manifest (Go's key order) whose layers have the sizes given and digests from ``seed``."""

    def layer(media: str, index: int, size: int) -> dict[str, Any]:
        digest = hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": size}

    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": layer("application/vnd.docker.container.image.v1+json", 0, 120),
        "layers": [
            layer("application/vnd.ollama.image.model", i + 1, size) for i, size in enumerate(sizes)
        ],
    }


def sha256(data: bytes) -> str:
    """The hex digest a server lists a manifest file of these bytes under."""
    return hashlib.sha256(data).hexdigest()


class FakeRegistry(ThreadingHTTPServer):
    """Manifests by ``namespace/repository:tag``; start with ``with FakeRegistry() as r:``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.manifests: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.refuse: tuple[int, bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the host part of model names in this registry."""
        return f"127.0.0.1:{self.server_address[1]}"

    def put(self, name: str, body: bytes) -> str:
        """Store a manifest under ``namespace/repository:tag``; returns its digest (hex)."""
        self.manifests[name] = body
        return sha256(body)

    def __enter__(self) -> FakeRegistry:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeRegistry

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, with_body: bool) -> None:
        registry = self.server
        registry.requests.append((self.command, self.path, dict(self.headers)))
        parts = self.path.split("/")  # "", "v2", namespace, repository, "manifests", tag
        if registry.refuse is not None:
            status, body = registry.refuse
            self._send(status, body, with_body)
        elif len(parts) != 6 or parts[1] != "v2" or parts[4] != "manifests":
            self._send(404, _errors("NAME_UNKNOWN"), with_body)
        elif MANIFEST_TYPE not in self.headers.get("Accept", ""):
            self._send(400, _errors("MANIFEST_INVALID"), with_body)
        else:
            body = registry.manifests.get(f"{parts[2]}/{parts[3]}:{parts[5]}")
            if body is None:
                self._send(404, _errors("MANIFEST_UNKNOWN"), with_body)
            else:
                digest = f"sha256:{sha256(body)}"
                self._send(200, body, with_body, MANIFEST_TYPE, digest)

    def _send(
        self,
        status: int,
        body: bytes,
        with_body: bool,
        content_type: str = "application/json",
        digest: str | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()
        if with_body:
            self.wfile.write(body)


def _errors(code: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode()
