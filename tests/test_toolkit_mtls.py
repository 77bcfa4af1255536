"""Client certificates (mutual TLS): through nginx with ``ssl_verify_client on``, a server that
refuses in the handshake, and the files checked before any request."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.shell_completion import ShellComplete

from ollamactl.cli import cli
from ollamactl.config import Flags, resolve
from tests.fake_ollama import OllamaTestServer
from tests.gateway import Certificates, Gateway, assert_one_clean_error, certificates
from tests.helpers import on, run_cli

CLIENT_HINT = "--client-cert PATH --client-key PATH"


def client_args(certs: Certificates) -> list[str]:
    return ["--client-cert", str(certs.client_cert), "--client-key", str(certs.client_key)]


# -- through nginx ---------------------------------------------------------------------------


def test_the_client_certificate_gets_through_nginx(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(url=gateway.mtls_url), *client_args(gateway.certs), "list")
    assert result.exit_code == 0, result.stderr + gateway.log_tail()
    assert "tiny:latest" in result.stdout
    assert gateway.upstream.requests_to("/api/tags")


def test_without_a_certificate_nginx_s_page_becomes_exit_4_with_a_hint(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(url=gateway.mtls_url), "list")
    assert result.exit_code == 4
    assert_one_clean_error(
        result.stderr, "requires a client certificate (HTTP 400)", CLIENT_HINT, "OLLAMACTL_CLIENT"
    )
    assert gateway.upstream.requests == []


def test_a_certificate_nginx_refuses_is_exit_4(gateway: Gateway) -> None:
    # The server's own certificate: the right CA, but made for server authentication only.
    certs = gateway.certs
    args = ["--client-cert", str(certs.server_cert), "--client-key", str(certs.server_key)]
    result = run_cli(*gateway.args(url=gateway.mtls_url), *args, "list")
    assert result.exit_code == 4
    assert_one_clean_error(
        result.stderr, "refused the client certificate from --client-cert (HTTP 400)", "clientAuth"
    )


def test_one_file_with_certificate_and_key_is_enough(gateway: Gateway, tmp_path: Path) -> None:
    combined = tmp_path / "me.pem"
    combined.write_bytes(
        gateway.certs.client_cert.read_bytes() + gateway.certs.client_key.read_bytes()
    )
    result = run_cli(*gateway.args(url=gateway.mtls_url), "--client-cert", str(combined), "ps")
    assert result.exit_code == 0, result.stderr


def test_a_profile_and_the_environment_carry_the_certificate(gateway: Gateway) -> None:
    certs = gateway.certs
    added = run_cli(
        "config", "profile", "add", "corp", "--host", gateway.mtls_url,
        "--ca-cert", gateway.ca_cert, *client_args(certs),
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    shown = run_cli("config", "show").stdout
    assert f'client_cert = "{certs.client_cert}"' in shown and "mutual TLS" in shown
    assert f'client_key = "{certs.client_key}"' in shown
    result = run_cli("--profile", "corp", "--api-key", gateway.token, "list", "-q")
    assert result.exit_code == 0, result.stderr
    env = {
        "OLLAMACTL_CLIENT_CERT": str(certs.client_cert),
        "OLLAMACTL_CLIENT_KEY": str(certs.client_key),
    }
    from_env = run_cli(*gateway.args(url=gateway.mtls_url), "list", "-q", env=env)
    assert from_env.exit_code == 0, from_env.stderr
    assert from_env.stdout == result.stdout


def test_the_gateway_without_client_verification_ignores_a_certificate(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(), *client_args(gateway.certs), "list", "-q")
    assert result.exit_code == 0, result.stderr


# -- a server that refuses in the TLS handshake (Go, Caddy, Python: no HTTP page) -------------


class _Tags(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"models": [{"name": "secured:latest"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _StrictTLS(ThreadingHTTPServer):
    """HTTPS that requires a client certificate; after a failed handshake it reads what the
    client sends until the client closes, so its TLS alert is never lost to a reset."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Tags)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self.context.wrap_socket(
            request, server_side=True, do_handshake_on_connect=False
        ) as tls:
            tls.settimeout(10)
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError):
                with suppress(OSError):
                    while socket.socket.recv(tls, 65536):  # raw bytes, bounded by the timeout
                        pass
                return
            super().finish_request(tls, client_address)


@pytest.fixture
def strict_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Certificates]]:
    """An HTTPS server on 127.0.0.1 that requires a client certificate in the handshake."""
    certs = certificates(tmp_path_factory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    context.load_verify_locations(certs.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    httpd = _StrictTLS(context)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}", certs
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_handshake_refusal_is_exit_4_too(strict_tls: tuple[str, Certificates]) -> None:
    url, certs = strict_tls
    base = ["--host", url, "--ca-cert", str(certs.ca), "--retries", "0"]
    missing = run_cli(*base, "list")
    assert missing.exit_code == 4
    assert_one_clean_error(missing.stderr, "requires a client certificate (TLS alert)", CLIENT_HINT)
    wrong = run_cli(
        *base, "--client-cert", str(certs.other_cert), "--client-key", str(certs.other_key), "list"
    )
    assert wrong.exit_code == 4
    assert_one_clean_error(wrong.stderr, "refused the client certificate from --client-cert")
    good = run_cli(*base, *client_args(certs), "list", "-q")
    assert good.exit_code == 0, good.stderr
    assert good.stdout == "secured:latest\n"


# -- the files, checked before any request ---------------------------------------------------


@pytest.fixture
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return certificates(tmp_path_factory)


def refused_up_front(server: OllamaTestServer, *args: str) -> str:
    """Run ``list`` with ``args``: exit 2, one error line, and nothing sent to the server."""
    result = on(server, *args, "list", input="")
    assert result.exit_code == 2, result.stderr
    assert server.requests == []
    return assert_one_clean_error(result.stderr)


def test_an_encrypted_key_is_refused_without_asking_for_a_password(
    server: OllamaTestServer, certs: Certificates
) -> None:
    error = refused_up_front(
        server,
        "--client-cert",
        str(certs.client_cert),
        "--client-key",
        str(certs.client_key_encrypted),
    )
    assert "is encrypted, and ollamactl cannot ask for its password" in error
    assert "openssl pkey -in" in error


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            ("missing.pem", None),
            "cannot read the client certificate 'missing.pem' (from --client-cert)",
        ),
        (("ca", "missing.key"), "cannot read the client key 'missing.key' (from --client-key)"),
        (("client_key", "client_key"), "is not a PEM certificate"),
        (("client_cert", "ca"), "is not a PEM private key"),
        (("client_cert", None), "holds no private key"),
        (("client_cert", "other_key"), "is not the key of the certificate"),
        ((None, "client_key"), "a client key (from --client-key) needs a client certificate"),
    ],
)
def test_unusable_files_are_usage_errors(
    server: OllamaTestServer,
    certs: Certificates,
    files: tuple[str | None, str | None],
    message: str,
) -> None:
    def path(name: str) -> str:
        return str(getattr(certs, name)) if hasattr(certs, name) else name

    cert, key = files
    args = [
        *(["--client-cert", path(cert)] if cert else []),
        *(["--client-key", path(key)] if key else []),
    ]
    assert message in refused_up_front(server, *args)


def test_a_profile_s_certificate_stays_with_its_host(certs: Certificates, tmp_path: Path) -> None:
    config = {
        "profiles": {
            "corp": {
                "host": "https://ollama.corp.example",
                "client_cert": str(certs.client_cert),
                "client_key": str(certs.client_key),
            }
        }
    }
    own = resolve(Flags(profile="corp"), env={}, config=config)
    assert (own.client_cert, own.client_key) == (str(certs.client_cert), str(certs.client_key))
    assert own.sources["client_cert"] == "profile 'corp' (--profile)"
    elsewhere = resolve(Flags(profile="corp", host="http://127.0.0.1:1"), env={}, config=config)
    assert (elsewhere.client_cert, elsewhere.client_key) == (None, None)


def test_profile_add_checks_the_pair(certs: Certificates) -> None:
    result = run_cli(
        "config", "profile", "add", "corp", "--host", "https://corp",
        "--client-cert", str(certs.client_cert), "--client-key", str(certs.other_key),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "is not the key of the certificate" in result.stderr
    assert "corp" not in run_cli("config", "profile", "list", "-q").stdout


def test_all_profiles_refuses_a_certificate_from_the_command_line(certs: Certificates) -> None:
    result = run_cli("--client-cert", str(certs.client_cert), "list", "--all-profiles")
    assert result.exit_code == 2
    assert "--client-cert (each profile has its own)" in result.stderr


def test_completion_offers_files_for_the_certificate_options() -> None:
    completer = ShellComplete(cli, {}, "ollamactl", "_OLLAMACTL_COMPLETE")
    for option in ("--client-cert", "--client-key"):
        items = completer.get_completions([option], "")
        assert [item.type for item in items] == ["file"]
    profile_add = completer.get_completions(["config", "profile", "add", "x", "--client-key"], "")
    assert [item.type for item in profile_add] == ["file"]
