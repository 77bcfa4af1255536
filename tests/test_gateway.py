"""Every command through a real nginx TLS gateway with a path prefix and a bearer token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_ollama import OllamaTestServer
from tests.gateway import (
    PREFIX,
    Gateway,
    assert_one_clean_error,
    certificates,
    command_params,
    fill,
    finish,
    ollamactl,
    prepare,
    read_until,
    serving_gateway,
)
from tests.helpers import run_cli, seed

pytestmark = pytest.mark.gateway

TLS_HINTS = ("--ca-cert", "REQUESTS_CA_BUNDLE", "--insecure-tls")


@pytest.mark.parametrize("args", command_params())
def test_every_command_works_with_the_ca_cert(
    gateway: Gateway, tmp_path: Path, args: tuple[str, ...]
) -> None:
    values = prepare(gateway.upstream, tmp_path)
    result = run_cli(*gateway.args(), *fill(args, values))
    assert result.exit_code == 0, result.stderr
    assert "Error" not in result.stderr
    assert gateway.token not in result.stdout + result.stderr
    requests = gateway.upstream.requests
    assert requests, "nothing reached Ollama behind the gateway"
    assert all(not r.path.startswith(PREFIX) for r in requests)  # nginx strips the prefix


@pytest.mark.parametrize("args", command_params())
def test_every_command_fails_cleanly_without_the_ca_cert(
    gateway: Gateway, tmp_path: Path, args: tuple[str, ...]
) -> None:
    values = prepare(gateway.upstream, tmp_path)
    result = run_cli("--host", gateway.url, "--api-key", gateway.token, *fill(args, values))
    assert result.exit_code == 3
    assert_one_clean_error(result.stderr, "TLS error", "unknown certificate authority", *TLS_HINTS)
    assert gateway.token not in result.stdout + result.stderr
    assert gateway.upstream.requests == []


@pytest.mark.parametrize("args", command_params())
def test_every_command_fails_cleanly_with_a_wrong_token(
    gateway: Gateway, tmp_path: Path, args: tuple[str, ...]
) -> None:
    values = prepare(gateway.upstream, tmp_path)
    result = run_cli(
        *gateway.args(), "--api-key", "wrong-token-5e1d", "--retries", "0", *fill(args, values)
    )
    assert result.exit_code == 4
    assert_one_clean_error(result.stderr, "HTTP 401", "the API key from --api-key")
    assert "wrong-token-5e1d" not in result.stdout + result.stderr
    assert gateway.upstream.requests == []  # nginx refused it, Ollama never saw it


def test_missing_token_says_that_no_credentials_were_sent(gateway: Gateway) -> None:
    result = run_cli("--host", gateway.url, "--ca-cert", gateway.ca_cert, "list")
    assert result.exit_code == 4
    assert_one_clean_error(result.stderr, "HTTP 401", "no credentials were sent")


@pytest.mark.parametrize("variable", ["OLLAMACTL_CA_CERT", "REQUESTS_CA_BUNDLE"])
def test_the_ca_cert_can_come_from_the_environment(gateway: Gateway, variable: str) -> None:
    result = run_cli(
        "--host",
        gateway.url,
        "list",
        "-q",
        env={variable: gateway.ca_cert, "OLLAMA_API_KEY": gateway.token},
    )
    assert result.exit_code == 0, result.stderr
    assert "tiny:latest" in result.stdout.split()


def test_ca_cert_wins_over_an_unrelated_ca_bundle_in_the_environment(gateway: Gateway) -> None:
    import certifi

    unrelated = {"REQUESTS_CA_BUNDLE": certifi.where(), "CURL_CA_BUNDLE": certifi.where()}
    result = run_cli(*gateway.args(), "list", "-q", env=unrelated)
    assert result.exit_code == 0, result.stderr
    insecure = run_cli(
        "--host", gateway.url, "--api-key", gateway.token, "--insecure-tls", "ls", env=unrelated
    )
    assert insecure.exit_code == 0, insecure.stderr
    assert "Warning: TLS certificate verification is disabled" in insecure.stderr


def test_the_host_name_works_as_well_as_the_address(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(url=gateway.localhost_url), "show", "tiny", "--json")
    assert result.exit_code == 0, result.stderr
    assert '"details"' in result.stdout


def test_a_retried_502_is_still_one_line(gateway: Gateway) -> None:
    # test_faults.py has every fault once; here the GET is retried twice before the line.
    result = run_cli(*gateway.args(url=gateway.bad_gateway_url), "--retries", "2", "list")
    assert result.exit_code == 1
    assert_one_clean_error(
        result.stderr,
        "answered HTTP 502 Bad Gateway",
        'an HTML page ("502 Bad Gateway")',
        "the gateway cannot reach Ollama",
    )


def test_a_base_url_without_the_prefix_gets_the_gateways_404_page(gateway: Gateway) -> None:
    root = gateway.url.removesuffix(PREFIX)
    result = run_cli(*gateway.args(url=root), "list")
    assert result.exit_code == 1
    assert_one_clean_error(
        result.stderr,
        'answered HTTP 404 with an HTML page ("404 Not Found")',
        "is the base URL right?",
        f"{root}/ollama-api",
    )


class HeldBackServer(OllamaTestServer):
    """Sends the first token of an answer, then holds the rest back until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.released_after_first_token = False

    def _token_lines(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        lines = super()._token_lines(*args, **kwargs)
        yield next(lines)
        self.released_after_first_token = self.release.wait(timeout=30)
        yield from lines


@pytest.mark.parametrize("command", ["run", "chat"])
def test_tokens_stream_through_the_gateway_one_by_one(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, command: str
) -> None:
    certs = certificates(tmp_path_factory)
    with (
        seed(HeldBackServer()) as upstream,
        serving_gateway(upstream, tmp_path / "nginx", certs) as gateway,
        ollamactl(*gateway.args(), command, "tiny", "Say hello") as process,
    ):
        try:
            # The server sends "Hello" and waits: it reaches stdout before the rest is sent.
            first = read_until(process.stdout, b"Hello", timeout=10)  # type: ignore[arg-type]
        finally:
            upstream.release.set()
        code, rest, err = finish(process)
    assert code == 0, err
    assert first == b"Hello"
    assert upstream.released_after_first_token
    assert (first.decode() + rest).rstrip("\n") == "Hello, world!"
