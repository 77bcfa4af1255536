"""Issue 13, a hostile network and server: each fault of tests/fault_proxy.py against each command
that talks to the server, through the real CLI (a subprocess with bounded time and memory).

What every case expects: the documented exit code, one clean ``Error:`` line on stderr and no
traceback, no credential in any output (also not JSON-escaped or base64-encoded), and an end
within the bound.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.fake_ollama import OllamaTestServer
from tests.fault_proxy import (
    Certificates,
    FaultProxy,
    Outcome,
    assert_clean_error,
    certs_fixture,  # noqa: F401  (the `certs` fixture)
    proxy_fixture,  # noqa: F401  (the `proxy` fixture)
    run_ollamactl,
    tls_proxy_fixture,  # noqa: F401  (the `tls_proxy` fixture)
)
from tests.gateway import fill, prepare
from tests.helpers import require_program, saved_chats

CANARY_TOKEN = "canary-tok-13f00d"
CANARY_HEADER = "canary-hdr-13beef"
CANARY_PASSWORD = "canary-pw-13cafe"
#: An API key that JSON and shells escape: a leak may show it as ``canary-\\"q\\\\-13``.
CANARY_QUOTED = 'canary-"q\\-13'
#: The error a hostile server sends: OSC 52 (set the clipboard), clear screen, red.
ESCAPES = "boom \x1b]52;c;Y2FuYXJ5\x07 \x1b[2J\x1b[31mred"
BOMB_BYTES = 200_000_000


@dataclass(frozen=True)
class Command:
    """A command line, the endpoint whose answer a fault replaces, and where a cut falls."""

    args: tuple[str, ...]
    path: str
    #: Lines of the answer let through by a cut (0: none of a plain JSON answer).
    lines: int


COMMANDS = {
    "list": Command(("list",), "/api/tags", 0),
    "show": Command(("show", "tiny"), "/api/show", 0),
    "run": Command(("run", "tiny", "Say hello"), "/api/generate", 2),
    "chat": Command(("chat", "tiny", "Say hello"), "/api/chat", 2),
    "pull": Command(("pull", "fresh", "--retries", "0"), "/api/pull", 3),
    "push": Command(("push", "tiny", "--retries", "0"), "/api/push", 2),
    "create": Command(("create", "made", "-f", "{modelfile}"), "/api/create", 1),
    "embed": Command(("embed", "nomic-embed-text", "hello", "world"), "/api/embed", 0),
}


def each_command() -> list[Any]:
    """Every command as a pytest param."""
    return [pytest.param(name, id=name) for name in COMMANDS]


@pytest.fixture
def world(server: OllamaTestServer, tmp_path: Path) -> dict[str, str]:
    """The server holds what every command needs (a pullable model; a Modelfile on disk)."""
    return prepare(server, tmp_path)


def through(proxy: FaultProxy, world: dict[str, str], name: str, *options: str) -> Outcome:
    """Run command ``name`` against ``proxy`` with global ``options``."""
    return run_ollamactl("--host", proxy.url, *options, *fill(COMMANDS[name].args, world))


def assert_no_complete_answer_saved() -> None:
    """A chat cut short is not saved as if its answer were complete."""
    for chat in saved_chats():
        for message in chat["messages"]:
            if message.get("role") == "assistant":
                assert message.get("interrupted"), f"saved as a complete answer: {message}"


# -- 1: a stream that ends early --------------------------------------------------------------


@pytest.mark.parametrize("name", each_command())
def test_an_answer_that_ends_cleanly_before_its_end_is_an_error(
    proxy: FaultProxy, world: dict[str, str], name: str
) -> None:
    command = COMMANDS[name]
    proxy.add_fault(command.path, cut_after_lines=command.lines)
    assert_clean_error(through(proxy, world, name), {1, 3})
    assert_no_complete_answer_saved()


@pytest.mark.parametrize("name", each_command())
def test_an_answer_broken_off_is_a_connection_error(
    proxy: FaultProxy, world: dict[str, str], name: str
) -> None:
    command = COMMANDS[name]
    proxy.add_fault(command.path, abort_after_lines=command.lines)
    assert_clean_error(through(proxy, world, name), {3}, "broke in the middle of the response")
    assert_no_complete_answer_saved()


# -- 2: waiting has a bound -------------------------------------------------------------------


@pytest.mark.parametrize("name", each_command())
def test_response_headers_that_drip_in_hit_the_timeout(
    proxy: FaultProxy, world: dict[str, str], name: str
) -> None:
    """A byte of the response head every 0.4 s for 3.2 s: the head must come in --read-timeout."""
    proxy.add_fault(COMMANDS[name].path, drip_bytes=8)
    assert_clean_error(through(proxy, world, name, "--read-timeout", "1"), {3})


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("name", each_command())
def test_a_retry_after_of_an_hour_is_not_waited_for(
    proxy: FaultProxy, world: dict[str, str], name: str, status: int
) -> None:
    """Not obeyed blindly: a retried request (list's GET) gives up and says what it was asked."""
    proxy.add_fault(
        COMMANDS[name].path,
        status=status,
        headers=(("Retry-After", "3600"),),
        body='{"error":"slow down"}',
    )
    line = assert_clean_error(through(proxy, world, name), {1, 3})
    if name == "list":
        assert "3600" in line, line


def test_a_get_that_times_out_says_how_long_it_waited(server: OllamaTestServer) -> None:
    """Each retry waits --read-timeout again: the message must not claim one wait."""
    server.add_fault("/api/tags", delay=5, times=-1)
    outcome = run_ollamactl("--host", server.url, "--read-timeout", "0.5", "--retries", "2", "list")
    line = assert_clean_error(outcome, {3})
    tries = sum(1 for request in server.requests if request.path == "/api/tags")
    if tries > 1:
        told = (f"{tries * 0.5:g}s", f"{tries} attempts", f"{tries} tries")
        assert any(text in line for text in told), (tries, line)


# -- 3: no credential in any output -----------------------------------------------------------

CREDENTIALS = {
    "token": ("--api-key", CANARY_TOKEN, "-H", f"X-Auth-Token: {CANARY_HEADER}"),
    "basic-auth": (),
    "quoted-key": ("--api-key", CANARY_QUOTED),
}


def leaked_forms(secret: str) -> set[str]:
    """A secret as a leak may show it: as is, JSON-escaped, or in a basic-auth header."""
    basic = base64.b64encode(f"admin:{secret}".encode()).decode()
    return {secret, json.dumps(secret)[1:-1], basic}


LEAKS = set().union(*map(leaked_forms, (CANARY_TOKEN, CANARY_HEADER, CANARY_PASSWORD)))
LEAKS |= leaked_forms(CANARY_QUOTED)


def assert_no_leak(outcome: Outcome) -> None:
    for form in LEAKS:
        assert form not in outcome.stdout + outcome.stderr, f"{form!r} leaked: {outcome}"


def with_credentials(proxy: FaultProxy, kind: str) -> list[str]:
    """Global options that send a canary credential of this kind to ``proxy``."""
    basic = proxy.url.replace("://", f"://admin:{CANARY_PASSWORD}@")
    return ["--host", basic if kind == "basic-auth" else proxy.url, *CREDENTIALS[kind]]


@pytest.mark.parametrize("kind", ["token", "basic-auth", "quoted-key"])
@pytest.mark.parametrize("name", each_command())
def test_a_401_that_echoes_the_request_shows_no_credential(
    proxy: FaultProxy, world: dict[str, str], name: str, kind: str
) -> None:
    proxy.add_fault(echo_request=True)
    options = with_credentials(proxy, kind)
    outcome = run_ollamactl(*options, *fill(COMMANDS[name].args, world))
    assert_clean_error(outcome, {4}, "HTTP 401")
    assert_no_leak(outcome)


@pytest.mark.parametrize(
    "kind",
    [
        "token",
        "basic-auth",
        "quoted-key",
    ],
)
def test_doctor_json_shows_no_credential_a_401_echoes(proxy: FaultProxy, kind: str) -> None:
    proxy.add_fault(echo_request=True)
    outcome = run_ollamactl(*with_credentials(proxy, kind), "doctor", "--json")
    assert outcome.code == 4, str(outcome)
    assert json.loads(outcome.stdout)["exit_code"] == 4
    assert_no_leak(outcome)


@pytest.fixture
def other_origin(server: OllamaTestServer) -> Iterator[FaultProxy]:
    """A second proxy in front of the same server: another port, so another origin."""
    with FaultProxy(server.url) as other:
        yield other


@pytest.mark.parametrize("name", each_command())
def test_a_redirect_to_another_port_carries_no_credential(
    proxy: FaultProxy, other_origin: FaultProxy, world: dict[str, str], name: str
) -> None:
    proxy.add_fault(redirect=other_origin.url)
    outcome = run_ollamactl(*with_credentials(proxy, "token"), *fill(COMMANDS[name].args, world))
    assert outcome.code == 0, str(outcome)
    assert other_origin.requests, "the redirect was not followed: the test proves nothing"
    for request in other_origin.requests:
        sent = {header.lower() for header in request.headers}
        assert not sent & {"authorization", "x-auth-token"}, request
    assert_no_leak(outcome)


# -- 7: memory --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", each_command())
def test_a_gzip_bomb_is_refused(proxy: FaultProxy, world: dict[str, str], name: str) -> None:
    """200 KB of gzip that expand to 200 MB of JSON white space: refused, not swallowed.

    The subprocess has 1 GB of address space: a client that swallows it all dies, not the host.
    """
    proxy.add_fault(COMMANDS[name].path, gzip_bomb=BOMB_BYTES)
    assert_clean_error(through(proxy, world, name), {1})


# -- 8: untrusted text ------------------------------------------------------------------------


@pytest.mark.parametrize("name", each_command())
def test_terminal_escapes_in_a_server_error_are_not_written(
    proxy: FaultProxy, world: dict[str, str], name: str
) -> None:
    proxy.add_fault(COMMANDS[name].path, status=500, body=json.dumps({"error": ESCAPES}))
    outcome = through(proxy, world, name)
    assert_clean_error(outcome, {1}, "boom")
    assert "\x1b" not in outcome.stdout + outcome.stderr, str(outcome)


def test_terminal_escapes_in_a_server_error_do_not_reach_a_terminal(proxy: FaultProxy) -> None:
    proxy.add_fault("/api/tags", status=500, body=json.dumps({"error": ESCAPES}))
    argv = ["-m", "ollamactl", "--host", proxy.url, "list"]
    child = pexpect.spawn(sys.executable, argv, encoding="utf-8", timeout=10)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert "boom" in child.before
    for sequence in ("\x1b]52", "\x1b[2J"):
        assert sequence not in child.before, repr(child.before)


# -- 10: answers that are not what they claim --------------------------------------------------


@pytest.mark.parametrize("name", each_command())
def test_a_200_holding_an_error_is_an_error(
    proxy: FaultProxy, world: dict[str, str], name: str
) -> None:
    proxy.add_fault(COMMANDS[name].path, status=200, body='{"error":"boom"}')
    line = assert_clean_error(through(proxy, world, name), {1})
    assert line == "Error: boom", line


def test_embed_refuses_fewer_vectors_than_inputs(proxy: FaultProxy) -> None:
    proxy.add_fault("/api/embed", status=200, body='{"embeddings":[[0.1,0.2]]}')
    outcome = run_ollamactl("--host", proxy.url, "embed", "nomic-embed-text", "one", "two")
    assert_clean_error(outcome, {1})


# -- 9: trust and transport -------------------------------------------------------------------


def test_the_tls_proxy_is_trusted_with_its_ca(tls_proxy: FaultProxy, certs: Certificates) -> None:
    """The control of the tests below: --ca-cert with the test CA connects."""
    outcome = run_ollamactl("--host", tls_proxy.url, "--ca-cert", str(certs.ca), "list", "-q")
    assert outcome.code == 0, str(outcome)
    assert "tiny:latest" in outcome.stdout.split()


def test_a_redirect_from_https_to_http_is_refused(
    tls_proxy: FaultProxy, certs: Certificates, server: OllamaTestServer
) -> None:
    tls_proxy.add_fault(redirect=f"http://127.0.0.1:{server.port}")
    outcome = run_ollamactl(
        "--host", tls_proxy.url, "--ca-cert", str(certs.ca), "--api-key", CANARY_TOKEN, "list"
    )
    assert_clean_error(outcome, {1, 3})
    assert server.requests == [], "a request went over plain http"
    assert_no_leak(outcome)


def hashed_cert_dir(ca: Path, folder: Path) -> Path:
    """An OpenSSL CA directory (``SSL_CERT_DIR``) holding ``ca`` under its subject hash."""
    require_program(shutil.which("openssl"), "openssl is not installed")
    done = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(ca)],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    folder.mkdir()
    (folder / f"{done.stdout.strip()}.0").symlink_to(ca)
    return folder


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_the_openssl_trust_variables_are_honoured(
    tls_proxy: FaultProxy, certs: Certificates, tmp_path: Path, variable: str
) -> None:
    where = certs.ca if variable == "SSL_CERT_FILE" else hashed_cert_dir(certs.ca, tmp_path / "ca")
    env = {**os.environ, variable: str(where)}
    outcome = run_ollamactl("--host", tls_proxy.url, "list", "-q", env=env)
    assert outcome.code == 0, str(outcome)
    assert "tiny:latest" in outcome.stdout.split()
