"""Secrets stay secret: never printed, never sent to another host, stored with mode 0600."""

from __future__ import annotations

import base64
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ollamactl.config import config_path
from tests.fake_ollama import OllamaTestServer, RecordedRequest, Reply
from tests.gateway import EVERY_COMMAND, TOKEN, Gateway, assert_one_clean_error, fill, prepare
from tests.helpers import DOCUMENTED_EXIT_CODES, NGINX_502, run_cli, seed

CANARY_TOKEN = "canary-token-c4f1e2"
CANARY_PASSWORD = "canary-pass-9b7d3a"
CANARY_HEADER = "canary-header-5e6f70"
CANARIES = (CANARY_TOKEN, CANARY_PASSWORD, CANARY_HEADER, TOKEN)  # TOKEN: the gateway's own

#: Server misbehaviours applied to every path, by name.
FAULTS: dict[str, Callable[[OllamaTestServer], None]] = {
    "healthy": lambda s: None,
    "401": lambda s: s.add_fault("*", status=401, body='{"error":"unauthorized"}', times=-1),
    "403-empty": lambda s: s.add_fault("*", status=403, body="", content_type="", times=-1),
    "500-json": lambda s: s.add_fault("*", status=500, body='{"error":"boom"}', times=-1),
    "502-html": lambda s: s.add_fault(
        "*", status=502, body=NGINX_502, content_type="text/html", times=-1
    ),
    "in-band-error": lambda s: s.add_fault("*", error_line="upstream boom", times=-1),
    "malformed-line": lambda s: s.add_fault("*", malformed_line=True, times=-1),
    "dropped": lambda s: s.add_fault("*", drop_after_lines=1, times=-1),
    "refused": lambda s: s.stop(),
}


def credentials(server: OllamaTestServer, kind: str) -> list[str]:
    """Global options that send a canary secret to ``server``."""
    if kind == "token":
        return [
            "--host",
            server.url,
            "--api-key",
            CANARY_TOKEN,
            "-H",
            f"X-Auth-Token: {CANARY_HEADER}",
        ]
    userinfo = f"http://admin:{CANARY_PASSWORD}@"
    return ["--host", server.url.replace("http://", userinfo)]


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text, f"{canary} leaked: {text[:2000]}"


#: What a successful run of EVERY_COMMAND leaves in the user's folders: the saved chat.
SAVED_CHATS = "home/.local/share/ollamactl/chats/*.json"


def assert_no_canary_in_files(root: Path, *, healthy: bool) -> None:
    """No file the commands wrote (saved chats, config, caches, logs) holds a secret.

    Only the user's folders are scanned (the test's own files, such as the Modelfile or the
    gateway's nginx.conf, are not the CLI's); after a healthy run they hold the saved chat.
    """
    if healthy:
        assert list(root.glob(SAVED_CHATS)), "no chat was saved: the scan would prove little"
    for folder in (root / "home", root / "config"):
        for path in (p for p in folder.rglob("*") if p.is_file()):
            assert_no_canary(path.read_bytes().decode("utf-8", "replace"))


@pytest.mark.parametrize("kind", ["token", "basic-auth"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_no_secret_in_any_output_or_debug_trace(
    server: OllamaTestServer, tmp_path: Path, fault: str, kind: str
) -> None:
    values = prepare(server, tmp_path)
    options = credentials(server, kind)
    FAULTS[fault](server)
    for args in (*EVERY_COMMAND, ("doctor",)):
        result = run_cli(*options, "--debug", "--retries", "0", *fill(args, values))
        assert_no_canary(result.stdout, result.stderr)
        assert result.exit_code in DOCUMENTED_EXIT_CODES, (args, result.stderr)
        if fault == "healthy":
            assert result.exit_code == 0, (args, result.stderr)
            assert "debug: " in result.stderr  # the trace was on
            basic = base64.b64encode(f"admin:{CANARY_PASSWORD}".encode()).decode()
            expected = f"Bearer {CANARY_TOKEN}" if kind == "token" else f"Basic {basic}"
            assert server.requests[-1].headers.get("Authorization") == expected, args
    assert_no_canary_in_files(tmp_path, healthy=fault == "healthy")


@pytest.mark.parametrize(
    "where", ["url", "mismatch_url", "bad_gateway_url", "login_url", "no-ca-cert", "wrong-token"]
)
def test_no_secret_through_the_gateway_and_its_failures(
    gateway: Gateway, tmp_path: Path, where: str
) -> None:
    values = prepare(gateway.upstream, tmp_path)
    url = gateway.url if "-" in where else getattr(gateway, where)
    token = CANARY_TOKEN if where == "wrong-token" else gateway.token
    options = ["--host", url, "--api-key", token]
    if where != "no-ca-cert":
        options += ["--ca-cert", gateway.ca_cert]
    secrets = [*options, "-H", f"X-Auth-Token: {CANARY_HEADER}", "--debug", "--retries", "0"]
    for args in (*EVERY_COMMAND, ("doctor",)):
        result = run_cli(*secrets, *fill(args, values))
        assert_no_canary(result.stdout, result.stderr)
        assert result.exit_code in DOCUMENTED_EXIT_CODES, (args, result.stderr)
        if where == "url":  # the healthy path: every command succeeds through the gateway
            assert result.exit_code == 0, (args, result.stderr, gateway.log_tail())
        elif where == "wrong-token" and args != ("doctor",):
            assert result.exit_code == 4, (args, result.stderr)
    assert_no_canary_in_files(tmp_path, healthy=where == "url")


def test_debug_shows_the_traceback_with_every_secret_redacted(server: OllamaTestServer) -> None:
    echoed = f"token {CANARY_TOKEN}, header {CANARY_HEADER}, password {CANARY_PASSWORD}"
    server.add_fault("/api/tags", status=500, body=f'{{"error": "rejected: {echoed}"}}', times=-1)
    options = [*credentials(server, "basic-auth"), "--api-key", CANARY_TOKEN]
    options += ["-H", f"X-Auth-Token: {CANARY_HEADER}", "--debug", "--retries", "0"]
    result = run_cli(*options, "list")
    assert result.exit_code == 1
    assert_no_canary(result.stdout, result.stderr)
    assert "Traceback (most recent call last):" in result.stderr
    redacted = "rejected: token ***, header ***, password ***"
    assert result.stderr.count(redacted) == 2, result.stderr  # the traceback and the Error line
    assert result.stderr.endswith(f"Error: {redacted}\n")


# -- credentials stay with their origin -------------------------------------------------------


MOVED = "/moved"


class Redirector(OllamaTestServer):
    """Redirects (307) every request to ``target`` + /moved + its path; serves what was moved."""

    def __init__(self, target: str | None = None) -> None:
        super().__init__()
        self.target = target

    def _dispatch(self, request: RecordedRequest) -> object:
        if request.path.startswith(MOVED):
            return super()._dispatch(replace(request, path=request.path[len(MOVED) :]))
        location = (self.target or self.url) + MOVED + request.path
        return Reply(307, b"", None, (("Location", location),))


def carries_credentials(request: RecordedRequest) -> bool:
    names = {name.lower() for name in request.headers}
    return bool(names & {"authorization", "x-auth-token"})


@pytest.fixture
def other_origin() -> Iterator[OllamaTestServer]:
    with seed(OllamaTestServer()) as other:
        yield other


@pytest.mark.parametrize("kind", ["token", "basic-auth"])
@pytest.mark.parametrize("command", [("list",), ("show", "tiny")])
def test_a_redirect_to_another_port_drops_every_credential(
    kind: str, command: tuple[str, ...]
) -> None:
    with (
        seed(OllamaTestServer(prefix=MOVED)) as other,
        Redirector(f"http://127.0.0.1:{other.port}") as first,
    ):
        result = run_cli(*credentials(first, kind), *command)
    assert result.exit_code == 0, result.stderr
    assert [r.path for r in other.requests] == [r.path for r in first.requests]
    assert carries_credentials(first.requests[0])  # sent to the configured origin ...
    assert not carries_credentials(other.requests[0])  # ... and not beyond it


def test_a_redirect_to_another_host_name_drops_the_token() -> None:
    with seed(Redirector()) as server:
        server.target = f"http://localhost:{server.port}"
        result = run_cli(*credentials(server, "token"), "list", "-q")
    assert result.exit_code == 0, result.stderr
    first, second = server.requests
    assert second.headers["Host"].startswith("localhost:")
    assert carries_credentials(first) and not carries_credentials(second)


def test_a_redirect_within_the_origin_keeps_the_token() -> None:
    with seed(Redirector()) as server:
        result = run_cli(*credentials(server, "token"), "list", "-q")
    assert result.exit_code == 0, result.stderr
    first, second = server.requests
    assert second.path == MOVED + first.path
    assert second.headers["Authorization"] == f"Bearer {CANARY_TOKEN}"
    assert second.headers["X-Auth-Token"] == CANARY_HEADER


def write_profiles(a: OllamaTestServer, b: OllamaTestServer) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text(
        'default_profile = "a"\n'
        f'[profiles.a]\nhost = "{a.url}"\napi_key = "{CANARY_TOKEN}"\n'
        f'headers = {{ "X-Auth-Token" = "{CANARY_HEADER}", "X-Team" = "ml" }}\n'
        f'[profiles.b]\nhost = "{b.url}"\n'
    )


@pytest.mark.parametrize(
    ("how", "env"),
    [
        (["--profile", "b"], {}),
        ([], {"OLLAMACTL_PROFILE": "b"}),
        (["--host", "{b}"], {}),
        ([], {"OLLAMA_HOST": "{b}"}),
    ],
    ids=["--profile", "OLLAMACTL_PROFILE", "--host", "OLLAMA_HOST"],
)
def test_a_profiles_token_is_never_sent_to_another_host(
    server: OllamaTestServer, other_origin: OllamaTestServer, how: list[str], env: dict[str, str]
) -> None:
    write_profiles(server, other_origin)
    fill_b = {"b": other_origin.url}
    result = run_cli(
        *fill(tuple(how), fill_b), "list", env={k: v.format(**fill_b) for k, v in env.items()}
    )
    assert result.exit_code == 0, result.stderr
    (request,) = other_origin.requests
    assert not carries_credentials(request)
    assert server.requests == []
    if "{b}" in str(how) + str(env):  # the profile's other headers still apply
        assert request.headers.get("X-Team") == "ml"


def test_all_profiles_sends_each_token_only_to_its_own_host(
    server: OllamaTestServer, other_origin: OllamaTestServer
) -> None:
    write_profiles(server, other_origin)
    with seed(OllamaTestServer()) as third:
        path = config_path()
        path.write_text(
            path.read_text() + f'[profiles.c]\nhost = "{third.url}"\napi_key = "token-of-c"\n'
        )
        result = run_cli("list", "--all-profiles", "-q")
        assert result.exit_code == 0, result.stderr
        (to_c,) = third.requests
    (to_a,), (to_b,) = server.requests, other_origin.requests
    assert to_a.headers["Authorization"] == f"Bearer {CANARY_TOKEN}"
    assert to_a.headers["X-Auth-Token"] == CANARY_HEADER
    assert not carries_credentials(to_b)
    assert (
        to_c.headers["Authorization"] == "Bearer token-of-c" and "X-Auth-Token" not in to_c.headers
    )
    assert_no_canary(result.stdout, result.stderr)


def test_the_default_profile_sends_its_token_to_its_own_host(
    server: OllamaTestServer, other_origin: OllamaTestServer
) -> None:
    write_profiles(server, other_origin)
    result = run_cli("list", "-q")
    assert result.exit_code == 0, result.stderr
    assert server.requests[0].headers["Authorization"] == f"Bearer {CANARY_TOKEN}"
    assert server.requests[0].headers["X-Auth-Token"] == CANARY_HEADER


# -- transport warnings and files -------------------------------------------------------------


def test_credentials_over_plain_http_to_another_machine_are_warned_about() -> None:
    host = "http://ollama.no-such-lab.invalid:11434"
    result = run_cli("--host", host, "--api-key", CANARY_TOKEN, "--retries", "0", "list")
    warning = (
        "Warning: credentials are sent over plain http:// to ollama.no-such-lab.invalid;"
        " use https:// to keep them private"
    )
    assert result.stderr.splitlines()[0] == warning
    assert result.exit_code == 3
    assert_one_clean_error(result.stderr, "does not resolve")
    assert_no_canary(result.stdout, result.stderr)


@pytest.mark.parametrize("kind", ["token", "basic-auth"])
def test_no_warning_for_loopback_or_without_credentials(
    server: OllamaTestServer, kind: str
) -> None:
    result = run_cli(*credentials(server, kind), "list", "-q")
    assert result.exit_code == 0 and result.stderr == ""
    plain = run_cli("--host", "http://ollama.no-such-lab.invalid:11434", "--retries", "0", "list")
    assert "Warning" not in plain.stderr


def test_a_profile_holding_a_secret_is_written_with_mode_0600() -> None:
    result = run_cli(
        "config",
        "profile",
        "add",
        "gpu",
        "--host",
        "https://gw.example.com/ollama-api",
        "--api-key-stdin",
        "-H",
        f"X-Auth-Token: {CANARY_HEADER}",
        input=CANARY_TOKEN + "\n",
    )
    assert result.exit_code == 0, result.stderr
    path = config_path()
    assert CANARY_TOKEN in path.read_text()  # stored, as asked ...
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # ... readable by the owner only
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert_no_canary(result.stdout, result.stderr)
    shown = run_cli("config", "show")
    assert shown.exit_code == 0, shown.stderr
    assert "gw.example.com" in shown.stdout
    assert_no_canary(shown.stdout, shown.stderr)


def test_changing_a_config_keeps_it_private() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text(f'[profiles.gpu]\nhost = "https://gw"\napi_key = "{CANARY_TOKEN}"\n')
    path.chmod(0o644)
    result = run_cli("config", "set", "profiles.gpu.read_timeout", "900")
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert_no_canary(result.stdout, result.stderr)
