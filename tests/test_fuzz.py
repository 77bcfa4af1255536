"""Property-based tests: random input through every parser and renderer.

The only outcomes allowed are a result or one of ollamactl's own errors: no traceback, no
undocumented exit code, whatever the user types or the server sends.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

from ollamactl.cli import cli
from ollamactl.client import create_request
from ollamactl.config import HostURL, parse_header, parse_host
from ollamactl.errors import UsageError
from ollamactl.modelfile import parse, plan_create
from ollamactl.params import parse_format, parse_keep_alive, parse_options, parse_think
from tests.helpers import DOCUMENTED_EXIT_CODES, FUZZ, cli_runner

# Hypothesis's failure report (its patch writer) trips this warning, an error in this suite.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)
BASE = "https://gw.example.com/ollama-api"
SERVER_FUZZ = settings(FUZZ, max_examples=100)

# -- what a user types ------------------------------------------------------------------------

host_like = st.one_of(
    st.text(max_size=40),
    st.builds(
        "{}{}{}{}{}".format,
        st.sampled_from(["", "http://", "https://", "ftp://", "HTTP://", " '"]),
        st.sampled_from(["", "user:p%40ss@", "@", "a:b:c@"]),
        st.sampled_from(["", "host", "127.0.0.1", "[::1]", "::1", "[", "]", "ollama.com", "h st"]),
        st.sampled_from(["", ":", ":11434", ":0", ":65536", ":-1", ":x", ":99999999999"]),
        st.sampled_from(["", "/", "/ollama-api", "/api", "/api/chat/", "//", "/a b", "?q=1"]),
    ),
)


@FUZZ
@given(host_like)
def test_a_host_parses_or_is_a_usage_error(text: str) -> None:
    try:
        host = parse_host(text)
    except UsageError:
        return
    assert isinstance(host, HostURL)
    assert host.scheme in ("http", "https")
    assert host.port is None or 0 <= host.port <= 65535
    assert "@" not in host.base_url.split("//", 1)[1].split("/", 1)[0]  # no userinfo left
    assert parse_host(host.base_url).base_url == host.base_url  # stable when given again


@FUZZ
@given(st.text(max_size=60))
def test_a_header_parses_or_is_a_usage_error(text: str) -> None:
    try:
        name, value = parse_header(text)
    except UsageError:
        return
    assert name and not any(c.isspace() for c in name)
    assert "\n" not in value and "\r" not in value


option_text = st.one_of(
    st.text(max_size=30),
    st.builds(
        "{}={}".format,
        st.sampled_from(["temperature", "num_ctx", "seed", "stop", "top_k", "mirostat", "x", ""]),
        st.one_of(st.text(max_size=12), st.integers().map(str), st.floats().map(str)),
    ),
)


@FUZZ
@given(st.lists(option_text, max_size=4))
def test_options_parse_or_are_a_usage_error(pairs: list[str]) -> None:
    try:
        options = parse_options(pairs)
    except UsageError:
        return
    assert isinstance(options, dict)
    json.dumps(options)  # they go into a JSON request body


@FUZZ
@given(st.text(max_size=20).filter(lambda text: not text.lstrip().startswith("@")))
def test_keepalive_format_and_think_values_parse_or_are_usage_errors(text: str) -> None:
    for parser in (parse_keep_alive, parse_format, parse_think):
        with contextlib.suppress(UsageError):
            json.dumps(parser(text))


MODELFILE_COMMANDS = (
    *("FROM", "from", "PARAMETER", "TEMPLATE", "SYSTEM", "ADAPTER", "LICENSE", "MESSAGE"),
    *("REQUIRES", "# comment", "", "  FROM", "BOGUS"),
)
MODELFILE_VALUES = (
    *("tiny", "./model.gguf", "temperature 0.5", "stop <END>", "num_ctx x", '"""a'),
    *('"quoted"', '"""multi\nline"""', "user hi", "bogus hi", "/", "~/x", "."),
)
modelfile_line = st.one_of(
    st.text(max_size=40),
    st.builds(
        "{}{}{}".format,
        st.sampled_from(MODELFILE_COMMANDS),
        st.sampled_from([" ", "  ", "\t", ""]),
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(MODELFILE_VALUES),
        ),
    ),
)


MODELFILE_PIECES = st.sampled_from(
    [
        "FROM",
        "from",
        "PARAMETER",
        "MESSAGE",
        "SYSTEM",
        "TEMPLATE",
        "LICENSE",
        "ADAPTER",
        "DRAFT",
        "REQUIRES",
        "user",
        "stop",
        "num_ctx",
        "temperature",
        "use_mmap",
        "mirostat",
        " ",
        "\t",
        "\n",
        "\r\n",
        '"',
        '"""',
        "#",
        "x",
        "1",
        "-2.5e3",
        "~",
        "./",
        "..",
        "/",
        ":",
        "é",
        "\ufeff",
        "\x00",
    ]
)
modelfile_text = st.one_of(
    st.lists(modelfile_line, max_size=6).map("\n".join),
    st.lists(st.one_of(MODELFILE_PIECES, st.text(max_size=5)), max_size=30).map("".join),
)


@settings(FUZZ, max_examples=300)
@given(modelfile_text)
def test_a_modelfile_plans_or_is_a_usage_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        try:
            plan = plan_create(parse(text), Path(folder))
        except UsageError:
            return
        assert all(local.path.is_file() for local in plan.files)  # only files that exist
    body = create_request(
        "made", **plan.arguments({local.path: "sha256:" + "0" * 64 for local in plan.files})
    )
    assert body["model"] == "made"
    assert "from" in body or "files" in body, "a plan always has a base (no FROM is an error)"
    json.dumps(body)  # it goes into a JSON request body


# -- what a server sends ----------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["2026-11-24T21:28:34.382694951Z", "0001-01-01T00:00:00Z", "0.9.3", ""]),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1, 2**63, 0]),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def objects_with(*keys: str, values: st.SearchStrategy[Any] = json_values) -> Any:
    """Dicts with any subset of ``keys``, each holding any JSON value (wrong types included)."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, values))


model_keys = ("name", "model", "size", "digest", "modified_at", "details", "remote_model")
running_keys = (*model_keys, "size_vram", "expires_at", "context_length")
detail_values = st.one_of(
    json_values, objects_with("family", "parameter_size", "quantization_level", "format")
)
info_keys = ("general.architecture", "general.parameter_count", "llama.context_length")
show_body = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "details": detail_values,
            "model_info": st.one_of(json_values, objects_with(*info_keys)),
            "projector_info": st.one_of(json_values, objects_with(*info_keys)),
            "tensors": st.one_of(json_values, st.lists(objects_with("name", "type", "shape"))),
            **dict.fromkeys(
                ("capabilities", "parameters", "license", "system", "template", "modelfile"),
                json_values,
            ),
            **dict.fromkeys(("remote_host", "remote_model", "requires", "modified_at"), scalars),
        },
    ),
)


def list_body(keys: tuple[str, ...]) -> Any:
    return st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"models": st.one_of(json_values, st.lists(objects_with(*keys), max_size=3))}
        ),
    )


event_keys = (
    "response",
    "thinking",
    "done",
    "done_reason",
    "message",
    "status",
    "digest",
    "total",
    "completed",
    "error",
    "eval_count",
    "eval_duration",
    "prompt_eval_count",
    "total_duration",
    "context",
)
message_values = st.one_of(json_values, objects_with("role", "content", "thinking", "tool_calls"))
events = st.lists(
    st.one_of(
        json_values,
        objects_with(*event_keys),
        st.fixed_dictionaries({"message": message_values}, optional={"done": st.booleans()}),
    ),
    max_size=4,
)


@st.composite
def ndjson_bodies(draw: st.DrawFn) -> bytes:
    """Random events, one per line; sometimes cut off in the middle (a truncated stream)."""
    body = "".join(json.dumps(event) + "\n" for event in draw(events)).encode()
    if body and draw(st.booleans()):
        body = body[: draw(st.integers(min_value=0, max_value=len(body) - 1))]
    return body


def run_against(body: bytes | str, method: str, path: str, *args: str) -> Result:
    """Run the CLI with ``path`` answering ``body`` (every other endpoint answers sanely).

    Fails unless the CLI actually requested ``path``: a fuzzed answer nobody reads tests nothing.
    """
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        content = body.encode() if isinstance(body, str) else body
        mock.add(method, BASE + path, body=content, content_type="application/x-ndjson")
        mock.get(f"{BASE}/api/version", json={"version": "0.9.3"})
        kind = "embedding" if args[0] == "embed" else "completion"
        show = {"capabilities": [kind], "details": {}, "model_info": {}}
        mock.post(f"{BASE}/api/show", json=show)
        result = cli_runner().invoke(
            cli, ["--host", BASE, "--retries", "0", *args], catch_exceptions=True
        )
        called = [(call.request.method, call.request.url) for call in mock.calls]
    assert (method, BASE + path) in called, (called, result.output)
    return result


def assert_clean(result: Result) -> None:
    """A result, or one of ollamactl's errors turned into a documented exit code."""
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        raise error  # an exception escaped: let pytest show its traceback
    assert result.exit_code in DOCUMENTED_EXIT_CODES, result.output
    assert "Traceback" not in result.stderr


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


@SERVER_FUZZ
@given(list_body(model_keys), st.sampled_from([(), ("-q",), ("--json",), ("tiny",)]))
def test_list_renders_any_tags_answer(body: Any, flags: tuple[str, ...]) -> None:
    assert_clean(run_against(dumps(body), "GET", "/api/tags", "list", *flags))


@SERVER_FUZZ
@given(list_body(running_keys), st.sampled_from([(), ("-q",), ("--json",)]))
def test_ps_renders_any_ps_answer(body: Any, flags: tuple[str, ...]) -> None:
    assert_clean(run_against(dumps(body), "GET", "/api/ps", "ps", *flags))


@SERVER_FUZZ
@given(show_body, st.sampled_from([(), ("-v",), ("--modelfile",), ("--license",), ("--json",)]))
def test_show_renders_any_show_answer(body: Any, flags: tuple[str, ...]) -> None:
    assert_clean(run_against(dumps(body), "POST", "/api/show", "show", "tiny", *flags))


STREAM_COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "run": ("POST", "/api/generate", ("run", "tiny", "hi")),
    "run --json": ("POST", "/api/generate", ("run", "tiny", "hi", "--json", "--verbose")),
    "chat": ("POST", "/api/chat", ("chat", "tiny", "hi", "--verbose")),
    "pull": ("POST", "/api/pull", ("pull", "tiny", "--retries", "0", "--progress", "plain")),
    "pull json": ("POST", "/api/pull", ("pull", "tiny", "--retries", "0", "--progress", "json")),
    "push": ("POST", "/api/push", ("push", "tiny", "--retries", "0", "--progress", "plain")),
}


@SERVER_FUZZ
@given(ndjson_bodies(), st.sampled_from(sorted(STREAM_COMMANDS)))
def test_stream_consumers_handle_any_ndjson(body: bytes, command: str) -> None:
    method, path, args = STREAM_COMMANDS[command]
    assert_clean(run_against(body, method, path, *args))


@SERVER_FUZZ
@given(st.one_of(json_values, objects_with("embeddings", "model")))
def test_embed_renders_any_embed_answer(body: Any) -> None:
    result = run_against(dumps(body), "POST", "/api/embed", "embed", "tiny", "hello")
    assert_clean(result)


@SERVER_FUZZ
@given(st.one_of(json_values, objects_with("version")))
def test_version_renders_any_version_answer(body: Any) -> None:
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/api/version", body=dumps(body))
        result = cli_runner().invoke(cli, ["--host", BASE, "version"], catch_exceptions=True)
    assert_clean(result)
