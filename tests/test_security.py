"""``ollamactl doctor --security``: exposure without credentials, transport, advisories."""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from ollamactl.security import ADVISORIES, HIGH, INFO, LOW, MEDIUM, parse_version
from tests.backends import Backend
from tests.fake_ollama import OllamaTestServer
from tests.helpers import run_cli

#: A host name that is not this machine; the forwarding proxy below reaches it.
REMOTE = "http://ollama.lab.example:11434"
PATCHED = '{"version":"0.17.1"}'


class ForwardProxy(ThreadingHTTPServer):
    """An HTTP proxy on 127.0.0.1 that sends every request to one local port, whatever host
    it names: the CLI believes it talks to a remote server."""

    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        connection.request("GET", parts.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def remote(server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Reach ``server`` as REMOTE (through a proxy); yields the base URL to give --host."""
    proxy = ForwardProxy(urlsplit(server.url).port or 80)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    try:
        yield REMOTE + urlsplit(server.url).path
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.fixture
def open_remote(server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The seeded server, without a token, as a remote host."""
    yield from remote(server, monkeypatch)


@pytest.fixture
def guarded_remote(
    gateway_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The server that requires the bearer token canary-token-123, as a remote host."""
    yield from remote(gateway_server, monkeypatch)


def review(host: str, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run ``doctor --security --json``: exit code, report, stderr."""
    result = run_cli("--host", host, *args, "doctor", "--security", "--json")
    return result.exit_code, json.loads(result.stdout), result.stderr


def found(report: dict[str, Any], check: str) -> list[tuple[str, str]]:
    """(severity, message) of the findings of one check."""
    return [(f["severity"], f["message"]) for f in report["findings"] if f["check"] == check]


def test_an_open_server_on_loopback_is_fine_an_old_version_is_not(
    server: OllamaTestServer,
) -> None:
    result = run_cli("--host", server.url, "doctor", "--security")
    assert result.exit_code == 1
    assert f"Security review of {server.url} (Ollama 0.9.3;" in result.stdout
    assert re.search(r"info +exposure .* on loopback only: fine", result.stdout)
    assert re.search(
        r"high +version +CVE-2026-7482 \(2026-05-04\): .*fixed in 0.17.1", result.stdout
    )
    assert re.search(r"medium +version +CVE-2025-51471 .*fixed in 0.14.3", result.stdout)
    assert "hint: upgrade Ollama to 0.17.1 or later" in result.stdout
    assert "Error: 2 security problem(s) found" in result.stderr


def test_a_patched_server_on_loopback_has_no_problem(server: OllamaTestServer) -> None:
    server.add_fault("/api/version", status=200, body=PATCHED, times=-1)
    code, report, stderr = review(server.url)
    assert (code, report["problems"], stderr) == (0, 0, "")
    assert report["server_version"] == "0.17.1"
    [(severity, message)] = found(report, "version")
    assert severity == INFO and "no published advisory with a fix applies" in message
    [(severity, message)] = found(report, "exposure")
    assert severity == INFO and "HTTP 200, 3 models" in message


def test_the_probe_sends_no_credential_at_all(gateway_server: OllamaTestServer) -> None:
    gateway_server.add_fault("/api/version", status=200, body=PATCHED, times=-1)
    args = ("--api-key", "canary-token-123", "-H", "X-Team: lab")
    code, report, _ = review(gateway_server.url, *args)
    assert code == 0
    assert found(report, "exposure") == [
        (INFO, f"without credentials, {gateway_server.url} is refused (HTTP 401)")
    ]
    probe = gateway_server.requests_to("/api/tags")[-1]
    sent = {name.lower() for name in probe.headers}
    assert not sent & {"authorization", "x-team", "cookie"}


def test_an_open_remote_server_is_usable_by_anyone(open_remote: str) -> None:
    code, report, _ = review(open_remote)
    assert code == 1
    [(severity, message)] = found(report, "exposure")
    assert severity == HIGH
    assert "usable by anyone who finds it" in message and "CVE-2025-63389" in message
    assert found(report, "transport") == [
        (LOW, "prompts and answers travel in clear text over http:// to ollama.lab.example")
    ]


def test_a_token_the_remote_server_does_not_enforce_is_said(open_remote: str) -> None:
    code, report, _ = review(open_remote, "--api-key", "canary-token-123")
    assert code == 1
    [(severity, message)] = found(report, "exposure")
    assert severity == HIGH and "although you send the API key from --api-key" in message
    [(severity, message)] = found(report, "transport")
    assert severity == HIGH and "clear text over http:// to ollama.lab.example" in message
    assert "canary-token-123" not in json.dumps(report)


def test_a_remote_server_that_enforces_its_token_over_http_leaks_it(
    guarded_remote: str,
) -> None:
    code, report, _ = review(guarded_remote, "--api-key", "canary-token-123")
    assert code == 1
    assert found(report, "exposure")[0][0] == INFO
    assert [severity for severity, _ in found(report, "transport")] == [HIGH]


def test_tls_verification_turned_off_is_a_problem(server: OllamaTestServer) -> None:
    server.add_fault("/api/version", status=200, body=PATCHED, times=-1)
    code, report, _ = review(server.url, "--insecure-tls")
    assert code == 1
    assert found(report, "tls") == [
        (MEDIUM, "TLS certificates are not verified (--insecure-tls, from --insecure-tls)")
    ]


@pytest.mark.parametrize("version", ["0.0.0", "unknown"])
def test_a_version_that_cannot_be_compared_is_said_not_guessed(
    server: OllamaTestServer, version: str
) -> None:
    server.add_fault("/api/version", status=200, body=json.dumps({"version": version}), times=-1)
    code, report, _ = review(server.url)
    assert code == 0
    assert found(report, "version") == [(INFO, f"cannot compare the server's version {version!r}")]


def release(text: str) -> tuple[int, int, int, int]:
    parsed = parse_version(text)
    assert parsed is not None, text
    return parsed


def test_every_advisory_is_dated_sourced_and_has_a_fixed_version() -> None:
    for advisory in ADVISORIES:
        assert re.fullmatch(r"CVE-\d{4}-\d{4,}", advisory.id)
        assert re.fullmatch(r"20\d\d-\d\d-\d\d", advisory.published)
        assert advisory.url.startswith("https://")
        assert release(advisory.fixed)[3] == 1  # a release, not a pre-release
        assert advisory.severity in (HIGH, MEDIUM)
    assert len({advisory.id for advisory in ADVISORIES}) == len(ADVISORIES)


@pytest.mark.real
def test_a_real_server_on_loopback(real_backend: Backend) -> None:
    code, report, _ = review(real_backend.url)
    version = release(report["server_version"])
    due = [a.id for a in ADVISORIES if version < release(a.fixed)]
    assert [m.split(" ")[0] for s, m in found(report, "version") if s != INFO] == due
    assert found(report, "exposure")[0][0] == INFO
    assert code == (1 if due else 0)


class _Gatekeeper(BaseHTTPRequestHandler):
    """``/login/...`` redirects to a login page; everything else is refused (401)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        redirect = self.path.startswith("/login")
        self.send_response(302 if redirect else 401)
        if redirect:
            self.send_header("Location", "https://sso.example/login")
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"nope\n")


def test_the_probe_words_redirects_refusals_and_failures_as_the_client_does() -> None:
    from ollamactl.config import Flags, resolve
    from ollamactl.security import probe_without_credentials
    from tests.helpers import dead_url

    gate = ThreadingHTTPServer(("127.0.0.1", 0), _Gatekeeper)
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{gate.server_address[1]}"
    try:
        moved = probe_without_credentials(resolve(Flags(host=f"{base}/login")))
        refused = probe_without_credentials(resolve(Flags(host=base)))
    finally:
        gate.shutdown()
        gate.server_close()
    down = probe_without_credentials(resolve(Flags(host=dead_url())))
    assert moved.detail == "redirects to https://sso.example/login"
    assert refused.detail == "is refused (HTTP 401)"
    assert down.detail.startswith("gave no answer: could not connect to ")
    assert not (moved.answered or refused.answered or down.answered)
