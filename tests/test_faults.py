"""Every failure a remote user meets, each a test: one clear line, the documented exit code,
no traceback, and nothing lost (partial output kept, partial pulls resumed, files intact)."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pexpect
import pytest

from ollamactl.config import config_path
from tests.fake_ollama import OllamaTestServer
from tests.gateway import Gateway, assert_one_clean_error, finish, ollamactl, read_until
from tests.helpers import dead_url, on, run_cli, saved_chats, wait_until

#: Linux capabilities that let root write into a folder without write permission.
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def only_error(stderr: str, *fragments: str) -> None:
    """stderr is exactly one clean ``Error:`` line with these fragments."""
    line = assert_one_clean_error(stderr, *fragments)
    assert stderr == line + "\n", stderr


# -- cannot connect (exit 3) ------------------------------------------------------------------


def test_connection_refused() -> None:
    url = dead_url()
    result = run_cli("--host", url, "--retries", "0", "list")
    assert result.exit_code == 3
    only_error(
        result.stderr,
        f"could not connect to {url}: connection refused",
        "is the server running and is --host/OLLAMA_HOST right?",
    )


def test_dns_failure() -> None:
    result = run_cli("--host", "https://no-such-gateway.invalid/ollama-api", "--retries", "0", "ps")
    assert result.exit_code == 3
    only_error(result.stderr, "the host name does not resolve (DNS)")


def test_tls_unknown_ca(gateway: Gateway) -> None:
    result = run_cli("--host", gateway.url, "--api-key", gateway.token, "show", "tiny")
    assert result.exit_code == 3
    only_error(
        result.stderr,
        "certificate verify failed (unknown certificate authority)",
        "pass --ca-cert PATH or set REQUESTS_CA_BUNDLE",
        "--insecure-tls",
    )


def test_tls_hostname_mismatch(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(url=gateway.mismatch_url), "ps")
    assert result.exit_code == 3
    only_error(
        result.stderr,
        "the certificate is not valid for this host name",
        "use the host name the certificate was issued for",
    )


def test_a_silent_server_hits_the_idle_timeout(server: OllamaTestServer) -> None:
    server.add_fault("/api/tags", delay=5, times=-1)
    result = on(server, "--timeout", "0.3", "--retries", "0", "list")
    assert result.exit_code == 3
    only_error(result.stderr, "sent nothing for 0.3s", "raise --read-timeout")


@pytest.fixture
def unanswered_url() -> Iterator[str]:
    """A port whose connection queue is full: a new connection is never accepted (SYN dropped)."""
    with closing(socket.socket()) as listener, ExitStack() as fillers:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        for _ in range(3):  # Linux queues backlog + 1 connections; the rest wait in SYN_SENT
            filler = fillers.enter_context(closing(socket.socket()))
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_connection_never_accepted_hits_the_connect_timeout(unanswered_url: str) -> None:
    result = run_cli("--host", unanswered_url, "--connect-timeout", "0.3", "--retries", "0", "list")
    assert result.exit_code == 3
    only_error(
        result.stderr,
        f"timed out connecting to {unanswered_url}",
        "--connect-timeout raises the limit",
    )


def test_a_stream_that_goes_silent_hits_the_stall_timeout(server: OllamaTestServer) -> None:
    server.add_registry_model("fresh:latest", [4_000, 120])
    server.add_fault("/api/pull", stall_after_lines=2, stall_seconds=5, times=-1)
    result = on(server, "pull", "fresh", "--stall-timeout", "0.3", "--retries", "0")
    assert result.exit_code == 3
    assert_one_clean_error(result.stderr, "stalled: no progress for 0.3s", "--stall-timeout")
    assert "fresh:latest" not in server.models


# -- the server or the gateway refuses (exit 4) ------------------------------------------------


def test_401_names_the_credential_source(server: OllamaTestServer) -> None:
    server.add_fault("/api/tags", status=401, body='{"error":"unauthorized"}')
    result = on(server, "list", env={"OLLAMA_API_KEY": "expired-token-1"})
    assert result.exit_code == 4
    only_error(
        result.stderr,
        "refused the request (HTTP 401): unauthorized",
        "sent the API key from OLLAMA_API_KEY; check that it is valid for this server",
    )


def test_403_from_a_gateway(server: OllamaTestServer) -> None:
    server.add_fault("/api/ps", status=403, body="<html><title>403 Forbidden</title></html>")
    result = run_cli("--host", server.url, "-H", "X-Api-Key: abc-key-1", "ps")
    assert result.exit_code == 4
    only_error(result.stderr, "refused the request (HTTP 403)", "sent the header X-Api-Key from -H")


def test_403_from_ollamas_host_check_suggests_the_host_header(server: OllamaTestServer) -> None:
    server.add_fault("/api/tags", status=403, body="", content_type="")
    result = on(server, "list")
    assert result.exit_code == 4
    only_error(result.stderr, "HTTP 403", "the proxy to send Host: localhost:11434")


# -- the server answers with an error ---------------------------------------------------------


def test_404_model_not_found(server: OllamaTestServer) -> None:
    result = on(server, "show", "no-such-model")
    assert result.exit_code == 5
    only_error(result.stderr, "model 'no-such-model' not found")


def test_500_with_a_json_error(server: OllamaTestServer) -> None:
    body = '{"error":"llama runner process has terminated: exit status 2"}'
    server.add_fault("/api/show", status=500, body=body)
    result = on(server, "show", "tiny")
    assert result.exit_code == 1
    only_error(result.stderr, "Error: llama runner process has terminated: exit status 2")


@pytest.mark.parametrize(
    ("which", "fragments"),
    [
        ("bad_gateway_url", ("HTTP 502 Bad Gateway", "the gateway cannot reach Ollama")),
        ("gateway_timeout_url", ("HTTP 504 Gateway Timeout", "a gateway timeout, not an Ollama")),
    ],
)
def test_502_and_504_html_pages(gateway: Gateway, which: str, fragments: tuple[str, ...]) -> None:
    result = run_cli(*gateway.args(url=getattr(gateway, which)), "--retries", "0", "list")
    assert result.exit_code == 1
    only_error(result.stderr, "with an HTML page", *fragments)


def test_an_html_page_where_json_was_expected(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(url=gateway.login_url), "list")
    assert result.exit_code == 1
    only_error(
        result.stderr, 'HTTP 200 with an HTML page ("Sign in") where JSON', "is the base URL right?"
    )


# -- streams ----------------------------------------------------------------------------------


@pytest.fixture
def pullable(server: OllamaTestServer) -> OllamaTestServer:
    server.add_registry_model("fresh:latest", [40_000, 1_200])
    return server


def test_connection_dropped_mid_pull_is_resumed_by_the_next_pull(
    pullable: OllamaTestServer,
) -> None:
    pullable.add_fault("/api/pull", drop_after_lines=4)
    result = on(pullable, "pull", "fresh", "--retries", "0", "--progress", "plain")
    assert result.exit_code == 3
    assert_one_clean_error(result.stderr, "broke in the middle of the response")
    assert "pulling" in result.stderr  # the progress received before the drop was shown
    weights = pullable.registry["fresh:latest"]["layers"][0]["digest"]
    kept = pullable.pull_progress[weights]
    assert 0 < kept < 40_000  # the server kept the partial download ...
    again = on(pullable, "pull", "fresh", "--progress", "json")
    assert again.exit_code == 0, again.stderr
    first = json.loads(again.stderr.splitlines()[1])
    assert first["completed"] == kept  # ... and the next pull resumed from it
    assert "fresh:latest" in pullable.models


def test_a_dropped_pull_is_reissued_and_completes(pullable: OllamaTestServer) -> None:
    pullable.add_fault("/api/pull", drop_after_lines=4)
    result = on(pullable, "pull", "fresh", "--progress", "plain")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr and "fresh:latest" in pullable.models


def test_an_in_band_error_line(pullable: OllamaTestServer) -> None:
    pullable.add_fault("/api/pull", error_line="max retries exceeded: unexpected EOF")
    result = on(pullable, "pull", "fresh", "--progress", "none", "--retries", "0")
    assert result.exit_code == 1
    only_error(result.stderr, "Error: max retries exceeded: unexpected EOF")


def test_a_malformed_ndjson_line(pullable: OllamaTestServer) -> None:
    pullable.add_fault("/api/pull", malformed_line=True)
    result = on(pullable, "pull", "fresh", "--progress", "none", "--retries", "0")
    assert result.exit_code == 1
    only_error(result.stderr, "sent a line that is not JSON")


def test_ctrl_c_mid_pull_exits_130_quietly(pullable: OllamaTestServer) -> None:
    pullable.pull_delay = 0.2
    with ollamactl("--host", pullable.url, "pull", "fresh", "--progress", "plain") as process:
        read_until(process.stderr, b"pulling")  # type: ignore[arg-type]
        process.send_signal(signal.SIGINT)
        code, _, err = finish(process)
    assert code == 130
    assert "Traceback" not in err and "Error:" not in err
    assert err.endswith(
        "interrupted: the server may keep the partial download of fresh;"
        " pulling it again resumes it\n"
    ), err
    assert "fresh:latest" not in pullable.models  # stopped, not silently finished


def test_ctrl_c_while_waiting_for_an_answer_exits_130(server: OllamaTestServer) -> None:
    server.add_fault("/api/tags", delay=10)
    with ollamactl("--host", server.url, "list") as process:
        wait_until(lambda: bool(server.requests))
        process.send_signal(signal.SIGINT)
        code, out, err = finish(process)
    assert code == 130
    assert out == "" and err == "interrupted\n"


GENERATION = pytest.mark.parametrize(
    ("command", "path"), [("run", "/api/generate"), ("chat", "/api/chat")], ids=["run", "chat"]
)


@GENERATION
def test_connection_dropped_mid_answer_keeps_what_arrived(
    server: OllamaTestServer, command: str, path: str
) -> None:
    server.add_fault(path, drop_after_lines=2)
    result = on(server, command, "tiny", "Say hello")
    assert result.exit_code == 3
    only_error(result.stderr, "broke in the middle of the response")
    assert result.stdout == "Hello,"  # the tokens that arrived stay on stdout
    if command == "chat":  # the question stays in the saved conversation, for --continue
        (saved,) = saved_chats()
        assert saved["messages"][0] == {"role": "user", "content": "Say hello"}


@pytest.mark.pty
@GENERATION
def test_on_a_terminal_an_error_mid_answer_starts_its_own_line(
    server: OllamaTestServer, command: str, path: str
) -> None:
    server.add_fault(path, drop_after_lines=2)
    argv = ["-m", "ollamactl", "--host", server.url, command, "tiny", "Say hello"]
    child = pexpect.spawn(sys.executable, argv, encoding="utf-8", timeout=10)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    assert "Hello,\r\nError: the connection to" in child.before


@GENERATION
def test_an_in_band_error_line_mid_answer(
    server: OllamaTestServer, command: str, path: str
) -> None:
    server.add_fault(path, error_line="llama runner process has terminated")
    result = on(server, command, "tiny", "Say hello")
    assert result.exit_code == 1
    only_error(result.stderr, "Error: llama runner process has terminated")
    assert result.stdout == "Hello"


@GENERATION
def test_a_malformed_line_mid_answer(server: OllamaTestServer, command: str, path: str) -> None:
    server.add_fault(path, malformed_line=True)
    result = on(server, command, "tiny", "Say hello")
    assert result.exit_code == 1
    only_error(result.stderr, f"the server at {server.url}{path} sent a line that is not JSON")
    assert result.stdout == "Hello"


@GENERATION
def test_a_model_that_goes_silent_mid_answer(
    server: OllamaTestServer, command: str, path: str
) -> None:
    server.add_fault(path, stall_after_lines=2, stall_seconds=5)
    result = on(server, "--timeout", "0.3", command, "tiny", "Say hello")
    assert result.exit_code == 3
    only_error(result.stderr, "sent nothing for 0.3s", "raise --read-timeout")
    assert result.stdout == "Hello,"


@GENERATION
def test_ctrl_c_mid_answer_exits_130_and_keeps_the_answer(
    server: OllamaTestServer, command: str, path: str
) -> None:
    server.generation.update(token_count=1000, token_delay=0.01)
    with ollamactl("--host", server.url, command, "tiny", "count") as process:
        first = read_until(process.stdout, b"tok2 ")  # type: ignore[arg-type]
        process.send_signal(signal.SIGINT)
        code, rest, err = finish(process)
    out = first.decode() + rest
    assert code == 130
    assert err == "interrupted\n"
    assert out.startswith("tok0 tok1 tok2 ") and "tok999" not in out
    if command == "chat":
        answer = saved_chats()[0]["messages"][-1]
        assert answer["interrupted"] is True and out.startswith(str(answer["content"]))


# -- local files ------------------------------------------------------------------------------


def test_a_corrupt_config_file_names_the_file_and_line() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('default_profile = "lab"\n\n[profiles.lab]\nhost = "http://lab:11434\n')
    result = run_cli("list")
    assert result.exit_code == 2
    only_error(result.stderr, str(path), "is not valid TOML", "line 4")


CONFIG = '[profiles.lab]\nhost = "http://lab.internal:11434"\n'


def restricted(*, file_size_limit: int | None = None, read_only: bool = False):
    """A preexec_fn: cap the size of written files (a full disk), or let root feel file modes."""

    def apply() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
        if read_only and os.geteuid() == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
                if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")

    return apply


def saved_config() -> Path:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text(CONFIG)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"file_size_limit": 8}, "File too large"),  # Python ignores SIGXFSZ: writes fail
        ({"read_only": True}, "Permission denied"),
    ],
    ids=["disk-full", "read-only-dir"],
)
def test_saving_the_config_fails_cleanly_and_keeps_the_old_file(
    fault: dict[str, object], reason: str
) -> None:
    path = saved_config()
    if fault.get("read_only"):
        path.parent.chmod(0o500)
    try:
        args = ("config", "set", "profiles.lab.host", "http://other:11434")
        with ollamactl(*args, preexec_fn=restricted(**fault)) as process:
            code, _, err = finish(process)
    finally:
        path.parent.chmod(0o700)
    assert code == 2
    only_error(err, f"cannot write the config file {path}", reason)
    assert path.read_text() == CONFIG  # the previous file stays intact ...
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml"]  # ... and alone


@pytest.mark.parametrize(
    ("fault", "reason"),
    [({"file_size_limit": 8}, "File too large"), ({"read_only": True}, "Permission denied")],
    ids=["disk-full", "read-only-dir"],
)
def test_saving_a_chat_fails_cleanly_and_keeps_the_old_conversation(
    server: OllamaTestServer, fault: dict[str, object], reason: str
) -> None:
    assert on(server, "chat", "tiny", "first question").exit_code == 0
    (before,) = saved_chats()
    folder = Path(os.environ["XDG_DATA_HOME"], "ollamactl", "chats")
    files = sorted(folder.iterdir())
    if fault.get("read_only"):
        folder.chmod(0o500)
    try:
        args = ("--host", server.url, "chat", "--continue", "second question")
        with ollamactl(*args, preexec_fn=restricted(**fault)) as process:
            code, out, err = finish(process)
    finally:
        folder.chmod(0o700)
    assert code == 2
    only_error(err, f"cannot save the conversation in {folder}", reason)
    assert out == ""
    assert saved_chats() == [before]  # the previous conversation is intact ...
    assert sorted(folder.iterdir()) == files  # ... and no temporary file is left behind
