"""Fallback servers: a profile's ``fallback`` profiles, tried in order when its server is down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager

import pytest
from click.shell_completion import ShellComplete

from ollamactl.cli import cli
from tests.fake_ollama import OllamaTestServer
from tests.gateway import Gateway
from tests.helpers import dead_url, run_cli

#: Connections made to fill a listening socket's backlog, at most.
MAX_FILLERS = 500


def ok(*args: str, input: str | None = None) -> str:
    result = run_cli(*args, input=input)
    assert result.exit_code == 0, result.stderr
    return result.stderr


def profile(name: str, host: str, *options: str, input: str | None = None) -> None:
    ok("config", "profile", "add", name, "--host", host, *options, input=input)


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Warning:")]


@pytest.fixture
def other() -> Iterator[OllamaTestServer]:
    """A second server, with one model of its own."""
    with OllamaTestServer() as server:
        server.add_model("other-only:latest")
        yield server


def test_a_dead_server_falls_back_to_the_first_live_one_in_order(
    server: OllamaTestServer, other: OllamaTestServer
) -> None:
    down = dead_url()
    profile("second", server.url)
    profile("third", other.url)
    profile("lab", dead_url())
    profile("gpu", down, "--fallback", "lab,second,third")
    result = run_cli("--profile", "gpu", "list", "-q")
    assert result.exit_code == 0, result.stderr
    assert "tiny:latest" in result.stdout.split()
    (warning,) = warnings(result.stderr)
    assert warning.startswith(f"Warning: cannot reach 'gpu' (could not connect to {down}: ")
    assert "'lab' (could not connect to http://127.0.0.1:" in warning
    assert warning.endswith(f"; using the fallback 'second' ({server.url})")
    assert other.requests == []  # the third is not asked once the second answers


def test_the_server_that_answered_is_the_one_the_command_reports(server: OllamaTestServer) -> None:
    profile("local", server.url)
    profile("gpu", dead_url(), "--fallback", "local", "--default")
    result = run_cli("version", "--json")
    assert result.exit_code == 0, result.stderr
    assert f'"host": "{server.url}"' in result.stdout


def test_each_fallback_sends_its_own_credentials_only(
    server: OllamaTestServer, other: OllamaTestServer
) -> None:
    profile("plain", server.url)
    profile("keyed", other.url, "--api-key-stdin", input="keyed-secret-token\n")
    profile("gpu", dead_url(), "--fallback", "plain", "--api-key-stdin", input="gpu-secret-tok\n")
    profile("gpu2", dead_url(), "--fallback", "keyed", "-H", "X-Api-Key: gpu2-secret")
    assert run_cli("--profile", "gpu", "--api-key", "flag-secret-tok", "list").exit_code == 0
    assert run_cli("--profile", "gpu2", "list").exit_code == 0
    sent = server.last_request("/api/tags").headers
    assert "Authorization" not in sent  # neither gpu's key nor the --api-key meant for gpu
    keyed = other.last_request("/api/tags").headers
    assert keyed["Authorization"] == "Bearer keyed-secret-token"
    assert "X-Api-Key" not in keyed


def test_an_http_answer_is_never_a_reason_to_fall_back(
    server: OllamaTestServer, other: OllamaTestServer
) -> None:
    server.add_fault("/api/tags", status=503, body="{}", times=10)
    profile("spare", other.url)
    profile("gpu", server.url, "--fallback", "spare")
    result = run_cli("--profile", "gpu", "--retries", "0", "list")
    assert result.exit_code == 1
    assert warnings(result.stderr) == []
    assert other.requests == []


@pytest.mark.parametrize("how", ["--host", "OLLAMA_HOST"])
def test_a_server_named_explicitly_has_no_fallback(server: OllamaTestServer, how: str) -> None:
    profile("local", server.url)
    profile("gpu", dead_url(), "--fallback", "local", "--default")
    down = dead_url()
    args = ["--host", down] if how == "--host" else []
    env = {"OLLAMA_HOST": down} if how == "OLLAMA_HOST" else None
    result = run_cli(*args, "list", env=env)
    assert result.exit_code == 3
    assert f"could not connect to {down}" in result.stderr
    assert warnings(result.stderr) == []
    assert server.requests == []


def test_when_no_server_can_be_reached_every_one_is_named(server: OllamaTestServer) -> None:
    profile("lab", dead_url())
    profile("gpu", dead_url(), "--fallback", "lab")
    result = run_cli("--profile", "gpu", "list")
    assert result.exit_code == 3
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: cannot reach profile 'gpu' nor its fallbacks ('gpu': could not")
    assert "'lab': could not connect to" in error
    assert "--host or OLLAMA_HOST uses one server" in error


def test_a_fallback_s_own_fallback_comes_after_the_ones_already_named(
    server: OllamaTestServer, other: OllamaTestServer
) -> None:
    profile("deep", other.url)
    profile("last", server.url)
    profile("lab", dead_url(), "--fallback", "deep")
    profile("gpu", dead_url(), "--fallback", "lab,last")
    result = run_cli("--profile", "gpu", "list", "-q")
    assert result.exit_code == 0, result.stderr
    assert warnings(result.stderr)[0].endswith(f"using the fallback 'last' ({server.url})")
    assert other.requests == []


def test_the_fleet_view_asks_each_profile_s_own_server(server: OllamaTestServer) -> None:
    profile("local", server.url)
    profile("gpu", dead_url(), "--fallback", "local")
    result = run_cli("list", "--all-profiles", "--output-format", "tsv", "--no-headers")
    assert result.exit_code == 3
    assert {line.split("\t")[0] for line in result.stdout.splitlines()} == {"local"}
    assert "Error: gpu (http://127.0.0.1:" in result.stderr
    assert warnings(result.stderr) == []


@contextmanager
def blackhole() -> Iterator[str]:
    """A URL whose connections time out: a listening socket with a full backlog."""
    with closing(socket.socket()) as listener, ExitStack() as stack:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(MAX_FILLERS):
            filler = stack.enter_context(closing(socket.socket()))
            filler.setblocking(False)
            filler.connect_ex(address)
            with closing(socket.socket()) as probe:
                probe.settimeout(0.05)
                try:
                    probe.connect(address)
                except socket.timeout:
                    break
                except OSError:
                    continue
        else:
            pytest.skip("the kernel accepted every connection: no connect timeout to test")
        yield f"http://127.0.0.1:{address[1]}"


def test_a_connect_timeout_falls_back(server: OllamaTestServer) -> None:
    profile("local", server.url)
    with blackhole() as url:
        profile("gpu", url, "--fallback", "local")
        result = run_cli("--profile", "gpu", "--connect-timeout", "0.2", "list", "-q")
    assert result.exit_code == 0, result.stderr
    (warning,) = warnings(result.stderr)
    assert f"'gpu' (timed out connecting to {url})" in warning


def test_through_the_tls_gateway_with_the_gateway_s_own_token(gateway: Gateway) -> None:
    profile(
        "edge", gateway.url, "--ca-cert", gateway.ca_cert, "--api-key-stdin",
        input=f"{gateway.token}\n",
    )  # fmt: skip
    profile("gpu", dead_url(), "--fallback", "edge", "--api-key-stdin", input="wrong-token\n")
    result = run_cli("--profile", "gpu", "ps", "--output-format", "csv")
    assert result.exit_code == 0, result.stderr + gateway.log_tail()
    assert result.stdout.startswith("name,digest,size")
    assert warnings(result.stderr)[0].endswith(f"using the fallback 'edge' ({gateway.url})")
    assert gateway.upstream.requests_to("/api/ps")


def test_a_gateway_that_answers_502_is_an_answer(
    gateway: Gateway, server: OllamaTestServer
) -> None:
    profile("local", server.url)
    profile("edge", gateway.bad_gateway_url, "--ca-cert", gateway.ca_cert, "--fallback", "local")
    result = run_cli("--profile", "edge", "--retries", "0", "list")
    assert result.exit_code == 1
    assert "502" in result.stderr
    assert server.requests == []


# -- the fallback key in the config file -----------------------------------------------------


def test_profile_add_refuses_an_unknown_fallback() -> None:
    result = run_cli("config", "profile", "add", "gpu", "--host", "gpu", "--fallback", "nope")
    assert result.exit_code == 2
    assert "the fallback of profile 'gpu' names 'nope', which is not a profile" in result.stderr
    assert run_cli("config", "profile", "list", "-q").stdout == ""


def test_config_set_refuses_a_circle_and_takes_lists() -> None:
    profile("a", "a.lab")
    profile("b", "b.lab", "--fallback", "a")
    result = run_cli("config", "set", "profiles.a.fallback", "b")
    assert result.exit_code == 2
    assert "go round in a circle: a -> b -> a" in result.stderr
    assert run_cli("config", "set", "profiles.a.fallback", "a").exit_code == 2
    profile("c", "c.lab")
    ok("config", "set", "profiles.a.fallback", '["c", "c"]')
    assert run_cli("config", "get", "profiles.a.fallback").stdout == '["c"]\n'
    profile("d", "d.lab")
    ok("config", "set", "profiles.d.fallback", " c , b")
    assert run_cli("config", "get", "profiles.d.fallback").stdout == '["c", "b"]\n'


def test_config_show_explains_the_fallback_and_rm_drops_it() -> None:
    profile("lab", "lab.internal")
    profile("gpu", "gpu.internal", "--fallback", "lab")
    shown = run_cli("config", "show").stdout
    assert 'fallback = [\n    "lab",\n]  # profiles tried in order when this server cannot' in shown
    removed = ok("config", "profile", "rm", "lab")
    assert "removed 'lab' from the fallback of 'gpu'" in removed
    assert "fallback" not in run_cli("config", "show").stdout.partition("[profiles.gpu]")[2]


def test_a_bad_fallback_value_is_a_usage_error() -> None:
    profile("gpu", "gpu.internal")
    result = run_cli("config", "set", "profiles.gpu.fallback", "lab;rm -rf")
    assert result.exit_code == 2
    assert "invalid profile name" in result.stderr


def test_fallback_completes_the_last_profile_name() -> None:
    for name in ("lab", "local", "gpu"):
        profile(name, f"{name}.internal")
    completer = ShellComplete(cli, {}, "ollamactl", "_OLLAMACTL_COMPLETE")
    args = ["config", "profile", "add", "x", "--host", "h", "--fallback"]
    assert [i.value for i in completer.get_completions(args, "gpu,l")] == ["gpu,lab", "gpu,local"]
    assert [i.value for i in completer.get_completions(args, "g")] == ["gpu"]
