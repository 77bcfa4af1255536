"""Issue 13, hostile input: values that do not parse, values that parse but make no sense, and
random command lines and config files (Hypothesis).

Every case expects one of ollamactl's own outcomes: a documented exit code (2 for a bad value),
one clean ``Error:`` line, no traceback, and never a canary secret in any output (not even
JSON-escaped or base64-encoded).
"""

from __future__ import annotations

import base64
import json
import os
import traceback
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import Result
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ollamactl.cli import cli
from tests.fake_ollama import OllamaTestServer
from tests.fault_proxy import (
    Certificates,
    FaultProxy,
    Outcome,
    assert_clean_error,
    certs_fixture,  # noqa: F401  (the `certs` fixture)
    run_ollamactl,
    tls_proxy_fixture,  # noqa: F401  (the `tls_proxy` fixture)
)
from tests.helpers import DOCUMENTED_EXIT_CODES, FUZZ, cli_runner

# Hypothesis's failure report (its patch writer) trips this warning, an error in this suite.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)
PASSWORD = "canary-pw-in13"
HEADER_SECRET = "canary-hdr-in13"
KEY = "canary-key-in13"
#: A depth no recursive parser survives (Python's limit is 1000 frames).
DEEP = 100_000


def leaked_forms(secret: str) -> set[str]:
    """A secret as a leak may show it: as is, JSON-escaped, or inside a basic-auth header."""
    basic = base64.b64encode(f"user:{secret}".encode()).decode()
    return {secret, json.dumps(secret)[1:-1], basic}


LEAKS = leaked_forms(PASSWORD) | leaked_forms(HEADER_SECRET) | leaked_forms(KEY)


def assert_no_leak(text: str) -> None:
    for form in LEAKS:
        assert form not in text, f"{form!r} leaked: {text[-2000:]}"


def write_config(text: str) -> Path:
    """A hand-edited config.toml with ``text`` (in $OLLAMACTL_CONFIG_DIR, the test's own)."""
    path = Path(os.environ["OLLAMACTL_CONFIG_DIR"], "config.toml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def assert_usage_error(outcome: Outcome) -> None:
    """A bad value is a usage error: exit 2, one clean line, no secret."""
    assert_clean_error(outcome, {2})
    assert_no_leak(outcome.stdout + outcome.stderr)


# -- 3: a secret in a value that does not parse ------------------------------------------------

BAD_HOSTS = {
    "invalid-port": f"https://user:{PASSWORD}@host:99999/x",
    "unsupported-scheme": f"ftp://user:{PASSWORD}@host/x",
    "space-in-host": f"https://user:{PASSWORD}@ho st/x",
    "empty-label": f"https://user:{PASSWORD}@a..b:9/x",
    "two-ports": f"http://user:{PASSWORD}@127.0.0.1:80:90",
}
#: How the host is given: on the command line or in a hand-edited default profile.
HOST_USES = {
    "--host list": ("--host", "{host}", "list"),
    "--host doctor": ("--host", "{host}", "doctor", "--json"),
    "profile list": ("list",),
    "profile config show": ("config", "show"),
}


def host_cases() -> list[Any]:
    """Every (host, use) pair as a pytest param."""
    return [pytest.param(host, use, id=f"{host}-{use}") for host in BAD_HOSTS for use in HOST_USES]


@pytest.mark.parametrize(("host", "use"), host_cases())
def test_a_host_that_does_not_parse_never_shows_its_password(host: str, use: str) -> None:
    write_config(f'default_profile = "lab"\n[profiles.lab]\nhost = {json.dumps(BAD_HOSTS[host])}\n')
    args = [arg.format(host=BAD_HOSTS[host]) for arg in HOST_USES[use]]
    outcome = run_ollamactl(*args)
    if use == "profile config show":  # showing a broken profile is fine, its secret is not
        assert outcome.code in {0, 2} and "Traceback" not in outcome.stderr, str(outcome)
        assert_no_leak(outcome.stdout + outcome.stderr)
    else:
        assert_usage_error(outcome)


@pytest.mark.parametrize(
    "args",
    [
        ("--host", "http://127.0.0.1:9", "-H", f"X-Api-Token {HEADER_SECRET}", "list"),
        ("config", "profile", "add", "lab", "--host", "lab", "-H", f"X-Api-Token {HEADER_SECRET}"),
    ],
    ids=["global", "profile-add"],
)
def test_a_header_without_a_colon_never_shows_its_value(args: tuple[str, ...]) -> None:
    assert_usage_error(run_ollamactl(*args))


# -- 4: values that parse but make no sense -----------------------------------------------------

BAD_FLAGS = {
    "read-timeout-0": ("--read-timeout", "0"),
    "read-timeout-negative": ("--read-timeout", "-5"),
    "read-timeout-nan": ("--read-timeout", "nan"),
    "read-timeout-inf": ("--read-timeout", "inf"),
    "connect-timeout-negative": ("--connect-timeout", "-1"),
    "non-ascii-header-name": ("-H", "X-Tök: v"),
}


@pytest.mark.parametrize("flag", BAD_FLAGS.values(), ids=list(BAD_FLAGS))
def test_a_flag_value_that_makes_no_sense_is_a_usage_error(
    server: OllamaTestServer, flag: tuple[str, str]
) -> None:
    assert_usage_error(run_ollamactl("--host", server.url, *flag, "list"))


BAD_PROFILE_VALUES = {
    "read_timeout-negative": "read_timeout = -3",
    "read_timeout-nan": "read_timeout = nan",
    "connect_timeout-inf": "connect_timeout = inf",
    "retries-a-million": "retries = 1000000",
    "ca_cert-a-number": "ca_cert = 5",
    "api_key_cmd-empty": 'api_key_cmd = ""',
    "api_key_cmd-unclosed-quote": 'api_key_cmd = "echo \'abc"',
}


@pytest.mark.parametrize("line", BAD_PROFILE_VALUES.values(), ids=list(BAD_PROFILE_VALUES))
def test_a_profile_value_that_makes_no_sense_is_a_usage_error(
    server: OllamaTestServer, line: str
) -> None:
    write_config(f'[profiles.lab]\nhost = "{server.url}"\n{line}\n')
    assert_usage_error(run_ollamactl("--profile", "lab", "list"))


def test_insecure_tls_written_as_the_string_false_does_not_turn_verification_off(
    tls_proxy: FaultProxy,
) -> None:
    write_config(f'[profiles.lab]\nhost = "{tls_proxy.url}"\ninsecure_tls = "false"\n')
    outcome = run_ollamactl("--profile", "lab", "list")
    assert_clean_error(outcome, {2, 3})  # refused as a bad value, or verified (unknown CA)
    assert "verification is disabled" not in outcome.stderr


def test_insecure_tls_false_verifies(tls_proxy: FaultProxy, certs: Certificates) -> None:
    """The control of the test above: a real ``false`` verifies (and the CA is unknown)."""
    write_config(f'[profiles.lab]\nhost = "{tls_proxy.url}"\ninsecure_tls = false\n')
    assert_clean_error(run_ollamactl("--profile", "lab", "list"), {3}, "certificate verify")


@pytest.mark.parametrize(
    "args",
    [
        ("config", "profile", "add", "gpu", "--host", "https://gw.example.com", "--api-key-stdin"),
        ("config", "set", "profiles.gpu.api_key", "-"),
    ],
    ids=["profile-add", "config-set"],
)
def test_a_secret_on_stdin_that_is_not_utf8_is_a_usage_error(args: tuple[str, ...]) -> None:
    outcome = run_ollamactl(*args, data=b"\xff\xfe" + KEY.encode() + b"\n")
    assert_usage_error(outcome)


@pytest.fixture
def deep_json(tmp_path: Path) -> Path:
    path = tmp_path / "deep.json"
    path.write_text("[" * DEEP + "]" * DEEP)
    return path


@pytest.mark.parametrize(
    "args",
    [("run", "tiny", "hi", "--format", "@{deep}"), ("chat", "tiny", "--messages", "{deep}")],
    ids=["run --format", "chat --messages"],
)
def test_deeply_nested_json_is_a_usage_error(
    server: OllamaTestServer, deep_json: Path, args: tuple[str, ...]
) -> None:
    filled = [arg.format(deep=deep_json) for arg in args]
    assert_usage_error(run_ollamactl("--host", server.url, *filled))


def test_a_deeply_nested_config_file_is_a_usage_error(server: OllamaTestServer) -> None:
    write_config("a = " + "[" * DEEP + "]" * DEEP + "\n")
    assert_usage_error(run_ollamactl("--host", server.url, "list"))


# -- random command lines and config files ------------------------------------------------------

#: Host names that never reach DNS: loopback, or refused before any lookup.
UNICODE = st.characters(exclude_categories=("Cs",))
HOST_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1", "a..b", "ho st", "", "[", "-")
PORTS = ("", ":{port}", ":{port}", ":0", ":99999", ":x", ":80:90", ":-1", ":{port}:1")
hosts = st.builds(
    "{}{}{}{}{}".format,
    st.sampled_from(["", "http://", "https://", "ftp://", "HTTP://", "//", " "]),
    st.sampled_from(["", f"user:{PASSWORD}@", f":{PASSWORD}@", f"user:{PASSWORD}:x@", "@"]),
    st.sampled_from(HOST_NAMES),
    st.sampled_from(PORTS),
    st.one_of(
        st.sampled_from(["", "/", "/ollama-api", "/api/", "/\udcff", "?q=1#f"]),
        st.text(UNICODE, max_size=8),
    ),
)
seconds = st.one_of(
    st.sampled_from(["0", "-5", "nan", "inf", "-inf", "1e-300", "1e308", "x", "", "0.5", "30"]),
    st.floats().map(str),
)
secret_header_names = st.builds(
    "{}{}{}".format,
    st.sampled_from(["X-", "", "é-", " "]),
    st.sampled_from(["Api-Token", "Auth-Key", "Secret", "Authorization"]),
    st.sampled_from(["", "ö", " x", ":"]),
)
headers = st.builds(
    "{}{}{}".format,
    secret_header_names,
    st.sampled_from([": ", ":", " ", "=", ""]),
    st.sampled_from(
        [HEADER_SECRET, f" {HEADER_SECRET}", f"{HEADER_SECRET}\r\nX: y", "é" + HEADER_SECRET]
    ),
)
api_keys = st.sampled_from([KEY, f"{KEY}\n", f"{KEY}é", f" {KEY}", f'{KEY}"\\', f"{KEY}\udcff"])
global_option = st.one_of(
    st.tuples(st.just("--host"), hosts),
    st.tuples(st.sampled_from(["--read-timeout", "--timeout", "--connect-timeout"]), seconds),
    st.tuples(st.just("--retries"), st.sampled_from(["0", "1", "-1", "11", "x", "1e3"])),
    st.tuples(st.just("-H"), headers),
    st.tuples(st.just("--api-key"), api_keys),
    st.tuples(st.just("--ca-cert"), st.sampled_from(["", "/nonexistent-13.pem", "/dev/null"])),
    st.tuples(st.just("--insecure-tls")),
)
COMMAND_LINES = (
    ("list",),
    ("ps", "--json"),
    ("show", "tiny"),
    ("version",),
    ("doctor", "--json"),
    ("config", "show"),
    ("run", "tiny", "hi"),
)
#: No shrinking: a failing example is reported as found, at once.
HOSTILE = settings(FUZZ, phases=(Phase.explicit, Phase.generate))


def assert_survives(result: Result) -> None:
    """One of ollamactl's own outcomes, and no secret in any output."""
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        pytest.fail(f"an exception escaped (a traceback in the real CLI):\n{shown}")
    output = result.stdout + result.stderr
    assert result.exit_code in DOCUMENTED_EXIT_CODES, output
    assert "Traceback" not in output, output
    assert_no_leak(output)


def invoke(server: OllamaTestServer, argv: list[str]) -> Result:
    """Run the CLI in-process (the real CLI's code path; fast enough for hundreds of cases)."""
    filled = [arg.replace("{port}", str(server.port)) for arg in argv]
    return cli_runner().invoke(cli, filled, prog_name="ollamactl", catch_exceptions=True)


@HOSTILE
@given(st.lists(global_option, max_size=4), st.sampled_from(COMMAND_LINES))
def test_any_command_line_ends_cleanly(
    server: OllamaTestServer, options: list[tuple[str, ...]], command: tuple[str, ...]
) -> None:
    argv = ["--host", "127.0.0.1:{port}", "--retries", "0"]
    argv += [part for option in options for part in option]
    assert_survives(invoke(server, [*argv, *command]))


anything = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(UNICODE, max_size=10),
    st.sampled_from(["false", "true", "no", "0", "", "nan", "1e9"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4).filter(str.isidentifier), st.integers(), max_size=2),
)
#: api_key_cmd runs a program: only these, never a random text.
KEY_COMMANDS = ("", "'unclosed", f"echo {KEY}", "false", "/nonexistent/cmd-13", "printf '\\377'")
profiles = st.fixed_dictionaries(
    {"host": hosts},
    optional={
        **dict.fromkeys(("read_timeout", "connect_timeout", "retries", "insecure_tls"), anything),
        "ca_cert": st.sampled_from([5, "", "/nonexistent-13.pem", True, ["x"], "/dev/null"]),
        "api_key_cmd": st.one_of(st.sampled_from(KEY_COMMANDS), st.integers(), st.booleans()),
        "api_key": st.one_of(api_keys.filter(lambda key: "\udcff" not in key), anything),
        "headers": st.one_of(
            st.dictionaries(secret_header_names, st.just(HEADER_SECRET)), anything
        ),
        **dict.fromkeys(("model", "keep_alive"), anything),
        "options": st.one_of(
            st.dictionaries(st.sampled_from(["num_ctx", "temperature", "stop", "x"]), anything),
            anything,
        ),
    },
)
PROFILE_COMMAND_LINES = (
    ("list",),
    ("--profile", "lab", "ps"),
    ("--profile", "lab", "doctor", "--json"),
    ("config", "show"),
    ("config", "profile", "list"),
    ("config", "get", "profiles.lab.read_timeout"),
)


@HOSTILE
@given(profiles, st.sampled_from(PROFILE_COMMAND_LINES))
def test_any_profile_ends_cleanly(
    server: OllamaTestServer, profile: dict[str, Any], command: tuple[str, ...]
) -> None:
    profile["host"] = str(profile["host"]).replace("\udcff", "")  # TOML holds Unicode only
    config = {"default_profile": "lab", "profiles": {"lab": profile}}
    write_config(tomli_w.dumps(config).replace("{port}", str(server.port)))
    assert_survives(invoke(server, list(command)))
