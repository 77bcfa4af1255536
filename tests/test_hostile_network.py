"""Issue 13, the network classes beyond tests/test_hostile_faults.py's matrix: the other members
of each class (a chat cut short, single answers without ``done``, the batch engine, bodies that
trickle, ``Retry-After`` of POSTs, compressed and oversized bodies, the order of the trust
settings, downgrades of a POST, answers that hold an error or too few vectors).

In-process CLI runs against a tests/fault_proxy.py proxy or the client against mocked
transports (responses); the few servers of this file trickle with bounded waits.
"""

from __future__ import annotations

import gzip
import io
import json
import socket
import threading
import zlib
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import certifi
import pytest
import responses

from ollamactl import bodies, transport
from ollamactl.client import Client
from ollamactl.config import Flags, resolve
from ollamactl.errors import APIError, BadResponse
from tests.fake_ollama import OllamaTestServer
from tests.fault_proxy import (
    Certificates,
    FaultProxy,
    certs_fixture,  # noqa: F401  (the `certs` fixture)
    proxy_fixture,  # noqa: F401  (the `proxy` fixture)
    tls_proxy_fixture,  # noqa: F401  (the `tls_proxy` fixture)
)
from tests.gateway import assert_one_clean_error
from tests.helpers import run_cli, saved_chats

BASE = "https://gw.example.com/ollama-api"
CUT_SHORT = "closed the stream before the answer was complete"


def client(**flags: object) -> Client:
    return Client(resolve(Flags(host=BASE, **flags), env={}))  # type: ignore[arg-type]


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's waits between tries, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(transport.time, "sleep", slept.append)
    return slept


# -- 1: an answer is complete only with its last event ----------------------------------------


def test_a_chat_cut_short_is_kept_as_an_interrupted_answer(proxy: FaultProxy) -> None:
    """As Ctrl-C keeps it: the part shown, marked interrupted, never as a complete answer."""
    proxy.add_fault("/api/chat", cut_after_lines=2)
    result = run_cli("--host", proxy.url, "chat", "tiny", "Say hello")
    assert result.exit_code == 3, result.stderr
    assert_one_clean_error(result.stderr, CUT_SHORT)
    question, answer = saved_chats()[0]["messages"]
    assert question == {"role": "user", "content": "Say hello"}
    assert answer == {"role": "assistant", "content": result.stdout, "interrupted": True}


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("run", "tiny", "hi", "--no-stream"), "/api/generate"),
        (("chat", "tiny", "hi", "--no-stream"), "/api/chat"),
    ],
    ids=["run", "chat"],
)
def test_a_single_answer_without_done_is_cut_short(
    proxy: FaultProxy, args: tuple[str, ...], path: str
) -> None:
    body = {"model": "tiny", "response": "Hel", "message": {"content": "Hel"}, "done": False}
    proxy.add_fault(path, status=200, body=json.dumps(body))
    result = run_cli("--host", proxy.url, *args)
    assert result.exit_code == 3, result.stderr
    assert_one_clean_error(result.stderr, CUT_SHORT)


def test_a_pull_cut_short_is_issued_again_and_completes(
    proxy: FaultProxy, server: OllamaTestServer
) -> None:
    """As a pull that broke off: the server resumes it, and only "success" ends it."""
    server.add_registry_model("fresh:latest", [4_000, 120])
    proxy.add_fault("/api/pull", cut_after_lines=3, times=1)
    result = run_cli("--host", proxy.url, "pull", "fresh", "--progress", "plain")
    assert result.exit_code == 0, result.stderr
    assert f"retrying pull of fresh (attempt 2 of 4): the server at {proxy.url} {CUT_SHORT}" in (
        result.stderr
    )
    assert [r.path for r in proxy.requests].count("/api/pull") == 2


def test_the_batch_engine_tries_a_cut_answer_again(proxy: FaultProxy, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("one\ntwo\n")
    proxy.add_fault("/api/generate", cut_after_lines=0, times=1)
    result = run_cli("--host", proxy.url, "batch", "tiny", str(source))
    assert result.exit_code == 0, result.stderr
    assert sorted(json.loads(line)["id"] for line in result.stdout.splitlines()) == [1, 2]
    assert CUT_SHORT in result.stderr


def test_the_batch_engine_records_answers_that_never_end(proxy: FaultProxy, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("one\n")
    proxy.add_fault("/api/generate", cut_after_lines=0)
    result = run_cli("--host", proxy.url, "batch", "tiny", str(source), "--retries", "0")
    assert result.exit_code == 1, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert CUT_SHORT in record["error"]


# -- 2: deadlines and retries -----------------------------------------------------------------


class TricklingServer:
    """Answers the first request with ``first`` at once, then ``drip`` one byte every 0.1 s."""

    def __init__(self, first: bytes, drip: bytes) -> None:
        self.first, self.drip = first, drip
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TricklingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.listener.close()
        self.thread.join(5)

    def _serve(self) -> None:
        with suppress(OSError):
            connection, _ = self.listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(self.first)
                for index in range(len(self.drip)):
                    if self.stopping.wait(0.1):
                        return
                    connection.sendall(self.drip[index : index + 1])


def test_a_body_that_trickles_in_hits_the_deadline() -> None:
    body = b"{" + b" " * 60 + b"}"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    with TricklingServer(head, body) as server:
        args = ("--read-timeout", "0.5", "--retries", "0", "list")
        result = run_cli("--host", f"http://127.0.0.1:{server.port}", *args)
    assert result.exit_code == 3, result.stderr
    assert_one_clean_error(result.stderr, "did not complete its answer within 0.5s")


def test_a_tls_handshake_that_trickles_in_is_a_connect_timeout() -> None:
    """A TLS record of 16 KB announced, then a byte every 0.1 s: within --connect-timeout."""
    with TricklingServer(b"\x16\x03\x03\x40\x00", bytes(60)) as server:
        args = ("--connect-timeout", "0.5", "--retries", "0", "list")
        result = run_cli("--host", f"https://127.0.0.1:{server.port}", *args)
    assert result.exit_code == 3, result.stderr
    assert_one_clean_error(result.stderr, "timed out connecting to", "--connect-timeout")


def test_a_short_retry_after_is_obeyed(mocked: responses.RequestsMock, waits: list[float]) -> None:
    mocked.get(f"{BASE}/api/tags", status=429, headers={"Retry-After": "2"})
    mocked.get(f"{BASE}/api/tags", json={"models": []})
    assert client(retries=1).tags() == []
    assert waits == [2.0]


def test_a_long_retry_after_fails_at_once_naming_both_waits(
    mocked: responses.RequestsMock, waits: list[float]
) -> None:
    mocked.get(f"{BASE}/api/tags", status=503, headers={"Retry-After": "3600"})
    with pytest.raises(APIError) as error:
        client(retries=2).tags()
    assert "asks to wait 3600s" in str(error.value) and "(30s)" in str(error.value)
    assert len(mocked.calls) == 1 and waits == []


def test_a_post_is_not_retried_but_says_what_the_server_asked(
    mocked: responses.RequestsMock, waits: list[float]
) -> None:
    mocked.post(
        f"{BASE}/api/show", status=429, json={"error": "slow down"}, headers={"Retry-After": "20"}
    )
    with pytest.raises(APIError) as error:
        client(retries=3).show("tiny")
    assert str(error.value) == "slow down (the server asks to wait 20s before trying again)"
    assert len(mocked.calls) == 1 and waits == []


def test_busy_gets_are_retried_with_a_growing_backoff(
    mocked: responses.RequestsMock, waits: list[float]
) -> None:
    for _ in range(3):
        mocked.get(f"{BASE}/api/version", status=502, body="<html>bad gateway</html>")
    with pytest.raises(BadResponse, match="HTTP 502"):
        client(retries=2).version()
    assert waits == [0.25, 0.5]  # no Retry-After: the backoff doubles


# -- 7: bodies of bounded size ----------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        gzip.compress,
        zlib.compress,
        lambda data: gzip.compress(data[:5]) + gzip.compress(data[5:]),  # two gzip members
    ],
    ids=["gzip", "deflate", "two-members"],
)
def test_compressed_answers_are_read(mocked: responses.RequestsMock, encode: Any) -> None:
    encoding = "deflate" if encode is zlib.compress else "gzip"
    body = encode(json.dumps({"models": [{"name": "tiny:latest"}]}).encode())
    mocked.get(f"{BASE}/api/tags", body=body, headers={"Content-Encoding": encoding})
    assert client(retries=0).tags() == [{"name": "tiny:latest"}]


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (b"\x1f\x8b not gzip", "gzip"),
        (gzip.compress(b'{"models":[]}')[:-12], "gzip"),
        (b"{}", "br"),
    ],
    ids=["corrupt", "truncated", "unasked-encoding"],
)
def test_bodies_that_do_not_decode_are_an_error(
    mocked: responses.RequestsMock, body: bytes, encoding: str
) -> None:
    mocked.get(f"{BASE}/api/tags", body=body, headers={"Content-Encoding": encoding})
    with pytest.raises(BadResponse, match="does not decode"):
        client(retries=0).tags()


@pytest.mark.parametrize("status", [200, 500])
def test_an_answer_larger_than_the_cap_is_refused(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """Error bodies too: the cap counts the bytes once decompressed."""
    monkeypatch.setattr(bodies, "MAX_BODY_BYTES", 4096)
    body = gzip.compress(b'{"error":"' + b"x" * 10_000 + b'"}')
    mocked.post(f"{BASE}/api/show", status=status, body=body, headers={"Content-Encoding": "gzip"})
    with pytest.raises(BadResponse, match="larger than"):
        client(retries=0).show("tiny")


# -- 9: trust and transport -------------------------------------------------------------------


def test_a_ca_bundle_variable_comes_before_ssl_cert_file(
    tls_proxy: FaultProxy, certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order: --ca-cert, OLLAMACTL_CA_CERT, REQUESTS_CA_BUNDLE, SSL_CERT_FILE/DIR."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    refused = run_cli("--host", tls_proxy.url, "list", "-q")
    assert refused.exit_code == 3, refused.stderr
    assert_one_clean_error(refused.stderr, "certificate verify failed")
    trusted = run_cli("--host", tls_proxy.url, "--ca-cert", str(certs.ca), "list", "-q")
    assert trusted.exit_code == 0, trusted.stderr


def test_insecure_tls_still_skips_verification(
    tls_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    result = run_cli("--host", tls_proxy.url, "--insecure-tls", "list", "-q")
    assert result.exit_code == 0, result.stderr
    assert "tiny:latest" in result.stdout.split()


def test_a_post_redirected_from_https_to_http_is_not_sent(
    tls_proxy: FaultProxy, certs: Certificates, server: OllamaTestServer
) -> None:
    tls_proxy.add_fault("/api/show", redirect=f"http://127.0.0.1:{server.port}")
    args = ("--host", tls_proxy.url, "--ca-cert", str(certs.ca), "run", "tiny", "hi")
    result = run_cli(*args)
    assert result.exit_code == 3, result.stderr
    assert_one_clean_error(result.stderr, "a redirect from https to http is not followed")
    assert server.requests == []


# -- 10: answers that are not what they claim -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("ps",), "/api/ps"),
        (("version",), "/api/version"),
        (("cp", "tiny", "copy"), "/api/copy"),
        (("rm", "tiny"), "/api/delete"),
        (("stop", "tiny"), "/api/generate"),
    ],
    ids=["ps", "version", "cp", "rm", "stop"],
)
def test_a_200_holding_an_error_is_an_error(
    proxy: FaultProxy, args: tuple[str, ...], path: str
) -> None:
    proxy.add_fault(path, status=200, body='{"error":"boom"}')
    result = run_cli("--host", proxy.url, *args)
    assert result.exit_code == 1, result.stderr
    assert assert_one_clean_error(result.stderr) == "Error: boom"


def test_a_blob_upload_answered_with_an_error_is_an_error(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(f"{BASE}/api/blobs/sha256:aa", status=200, json={"error": "disk full"})
    with pytest.raises(APIError, match="disk full"):
        client(retries=0).upload_blob("sha256:aa", io.BytesIO(b"GGUF"))


def test_doctor_reports_a_200_holding_an_error(proxy: FaultProxy) -> None:
    proxy.add_fault("/api/version", status=200, body='{"error":"boom"}')
    result = run_cli("--host", proxy.url, "doctor")
    assert result.exit_code == 1, result.stdout
    assert "boom" in result.stdout


@pytest.mark.parametrize(
    "answer",
    ['{"embeddings":[[0.1],[0.2],[0.3]]}', "{}", '{"embeddings":[0.1, 0.2]}'],
    ids=["more-vectors-than-inputs", "no-vectors", "not-vectors"],
)
def test_embed_refuses_an_answer_without_one_vector_per_input(
    proxy: FaultProxy, answer: str
) -> None:
    proxy.add_fault("/api/embed", status=200, body=answer)
    result = run_cli("--host", proxy.url, "embed", "nomic-embed-text", "one", "two")
    assert result.exit_code == 1, result.stderr
    assert_one_clean_error(result.stderr, "/api/embed answered")


def test_the_body_of_a_redirect_is_not_read(mocked: responses.RequestsMock) -> None:
    """requests reads it whole (a bomb would be decompressed in memory): it is dropped unread."""
    headers = {"Location": f"{BASE}/api/tags2", "Content-Encoding": "gzip"}
    body = gzip.compress(b" " * 1_000_000)
    mocked.get(f"{BASE}/api/tags", status=307, body=body, headers=headers)
    mocked.get(f"{BASE}/api/tags2", json={"models": []})
    assert client(retries=0).tags() == []
    assert mocked.calls[0].response.raw.tell() == 0
