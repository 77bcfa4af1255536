"""Issue 13, the other members of its local classes: the flags, profile keys, file inputs and
writers that the harness's cases stand for (tests/test_hostile_*.py), held to the same rules.

Each case: a documented exit code with one clean ``Error:`` line and no traceback, no secret in
any output (as is, JSON-escaped, URL-encoded or base64), and an end within the bound.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ollamactl.answer import DisplayOptions, Reply, StreamPrinter
from ollamactl.conversations import ConversationStore
from ollamactl.errors import UsageError
from ollamactl.paths import private_folder, write_private_file
from ollamactl.render import table
from ollamactl.terminal import Terminal
from tests.fake_ollama import OllamaTestServer
from tests.fault_proxy import (
    FaultProxy,
    assert_clean_error,
    proxy_fixture,  # noqa: F401  (the `proxy` fixture)
    run_ollamactl,
)

SECRET = "canary-pw-m13@x/y"


def leaked_forms(secret: str) -> set[str]:
    """A secret as a leak may show it: as is, JSON-escaped, URL-encoded or in basic auth."""
    basic = base64.b64encode(f"user:{secret}".encode()).decode()
    return {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), basic}


def assert_no_leak(text: str) -> None:
    for form in leaked_forms(SECRET):
        assert form not in text, f"{form!r} leaked: {text[-1500:]}"


def write_config(text: str) -> None:
    path = Path(os.environ["OLLAMACTL_CONFIG_DIR"], "config.toml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- 3: secrets -------------------------------------------------------------------------------


def test_a_bad_ollama_host_never_shows_its_password() -> None:
    env = {**os.environ, "OLLAMA_HOST": f"https://user:{quote(SECRET, safe='')}@h:99999/x"}
    outcome = run_ollamactl("list", env=env)
    assert_clean_error(outcome, {2}, "OLLAMA_HOST", "user:***@h:99999")
    assert_no_leak(outcome.stdout + outcome.stderr)


def test_config_show_hides_the_arguments_of_api_key_cmd() -> None:
    write_config(f'[profiles.lab]\nhost = "lab"\napi_key_cmd = "echo {SECRET}"\n')
    outcome = run_ollamactl("config", "show")
    assert outcome.code == 0, str(outcome)
    assert 'api_key_cmd = "echo ***"' in outcome.stdout
    assert_no_leak(outcome.stdout + outcome.stderr)


def test_a_401_echoing_a_url_encoded_password_shows_it_in_no_form(proxy: FaultProxy) -> None:
    proxy.add_fault(echo_request=True)
    host = proxy.url.replace("://", f"://user:{quote(SECRET, safe='')}@")
    outcome = run_ollamactl("--host", host, "list")
    assert_clean_error(outcome, {4}, "HTTP 401")
    assert_no_leak(outcome.stdout + outcome.stderr)


# -- 4: values checked once, wherever they come from -----------------------------------------

BAD_FLAGS = {
    "wait --interval nan": ("wait", "--interval", "nan"),
    "wait --timeout inf": ("wait", "--timeout", "inf"),
    "pull --stall-timeout nan": ("pull", "fresh", "--stall-timeout", "nan"),
    "--retries 1e3": ("--retries", "1e3", "list"),
    "--connect-timeout 1e309": ("--connect-timeout", "1e309", "list"),
}


@pytest.mark.parametrize("args", BAD_FLAGS.values(), ids=list(BAD_FLAGS))
def test_a_flag_of_a_command_that_makes_no_sense_is_a_usage_error(
    server: OllamaTestServer, args: tuple[str, ...]
) -> None:
    assert_clean_error(run_ollamactl("--host", server.url, *args), {2})


BAD_PROFILE_LINES = {
    "keep_alive-a-boolean": "keep_alive = true",
    "options-not-typed": 'options = { num_ctx = "lots" }',
    "headers-not-a-table": "headers = 5",
    "model-a-number": "model = 7",
    "api_key_cmd-endless-output": 'api_key_cmd = "cat /dev/zero"',
    "api_key_cmd-not-utf8": "api_key_cmd = \"printf '\\\\377'\"",
    "api_key_cmd-fails": 'api_key_cmd = "false"',
}


@pytest.mark.parametrize("line", BAD_PROFILE_LINES.values(), ids=list(BAD_PROFILE_LINES))
def test_every_profile_key_is_checked_before_any_request(
    server: OllamaTestServer, line: str
) -> None:
    write_config(f'[profiles.lab]\nhost = "{server.url}"\n{line}\n')
    assert_clean_error(run_ollamactl("--profile", "lab", "list"), {2}, "profiles.lab.")
    assert server.requests == []


# -- 5: files that are not files --------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A FIFO nobody writes to."""
    path = tmp_path / "nobody-writes.json"
    os.mkfifo(path)
    return path


DEVICE_INPUTS = {
    "-i": ("run", "tiny", "hi", "-i", "/dev/zero"),
    "--messages": ("chat", "tiny", "--messages", "/dev/zero"),
    "--tools": ("chat", "tiny", "hi", "--tools", "/dev/zero"),
    "embed -f": ("embed", "nomic-embed-text", "-f", "/dev/zero"),
    "batch FILE": ("batch", "tiny", "/dev/zero"),
    "ADAPTER": ("create", "made", "--dry-run", "-f", "{adapter_modelfile}"),
    "--format @FIFO": ("run", "tiny", "hi", "--format", "@{fifo}"),
    "create -f FIFO": ("create", "made", "-f", "{fifo}"),
    "--format @folder": ("run", "tiny", "hi", "--format", "@{folder}"),
}


@pytest.mark.parametrize("args", DEVICE_INPUTS.values(), ids=list(DEVICE_INPUTS))
def test_a_device_a_fifo_or_a_folder_given_as_a_file_is_a_usage_error(
    server: OllamaTestServer, tmp_path: Path, fifo: Path, args: tuple[str, ...]
) -> None:
    """Refused at once, or (a FIFO nobody writes to) read as empty: never a wait for ever."""
    adapter = tmp_path / "adapter.Modelfile"
    adapter.write_text("FROM tiny\nADAPTER /dev/zero\n")
    values = {"adapter_modelfile": adapter, "fifo": fifo, "folder": tmp_path}
    filled = [arg.format(**values) for arg in args]
    assert_clean_error(run_ollamactl("--host", server.url, *filled), {2})


def test_a_batch_line_nested_too_deep_is_that_line_s_error(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    """It killed the reader thread: nothing answered, nothing failed, exit 0."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text('{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}\nhello\n")
    outcome = run_ollamactl("--host", server.url, "batch", "tiny", str(prompts))
    assert outcome.code == 1 and "Traceback" not in outcome.stderr, str(outcome)
    assert "Error: line 1: not a valid JSON object: nested too deeply" in outcome.stderr
    assert "1 answered" in outcome.stderr


def test_a_config_file_that_is_a_folder_is_a_usage_error() -> None:
    Path(os.environ["OLLAMACTL_CONFIG_DIR"], "config.toml").mkdir(parents=True)
    assert_clean_error(run_ollamactl("list"), {2}, "config file")


# -- 6: two writers of one conversation -------------------------------------------------------


def turn(n: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    yield ConversationStore(tmp_path / "chats")


def test_two_writers_of_a_conversation_each_add_their_turn(store: ConversationStore) -> None:
    """Questions saved before the answers, interleaved: both turns stay whole, in order."""
    first = store.new("tiny")
    first.messages += turn(0)
    store.save(first)
    a, b = store.load(first.id), store.load(first.id)
    for writer, n in ((a, 1), (b, 2)):
        writer.messages.append(turn(n)[0])
        store.save(writer)
    for writer, n in ((a, 1), (b, 2)):
        writer.messages.append(turn(n)[1])
        store.save(writer)
    assert store.load(first.id).messages == turn(0) + turn(1) + turn(2)
    assert b.messages == turn(0) + turn(2), "what b sends to the model stays its own view"


def test_rewriting_a_history_another_writer_added_to_is_refused(store: ConversationStore) -> None:
    first = store.new("tiny")
    first.messages += turn(0)
    store.save(first)
    a, b = store.load(first.id), store.load(first.id)
    a.messages += turn(1)
    store.save(a)
    b.messages.pop()  # /retry of the last answer
    with pytest.raises(UsageError, match="was changed by another ollamactl"):
        store.save(b)
    assert store.load(first.id).messages == turn(0) + turn(1)


# -- 8: untrusted text ------------------------------------------------------------------------

ESCAPES = "x\x1b]52;c;Y2E=\x07\x1b[2J\x9b31m"


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "pipe"])
def test_the_answer_is_sanitised_on_a_terminal_and_exact_in_a_pipe(tty: bool) -> None:
    out, err = io.StringIO(), io.StringIO()
    terminal = Terminal(io.StringIO(), out, err, stdout_is_tty=tty, stderr_is_tty=tty)
    printer = StreamPrinter(DisplayOptions(word_wrap=False), terminal)
    events = iter([{"thinking": ESCAPES}, {"response": ESCAPES}, {"done": True}])
    printer.stream(events, Reply(), chat=False)
    assert out.getvalue() == ("x^[]52;c;Y2E=^G^[[2J^[[31m" if tty else ESCAPES)
    assert ("\x1b]52" in err.getvalue()) is not tty  # thinking too (its colour is ours)


def test_escapes_in_a_progress_status_are_not_written(proxy: FaultProxy) -> None:
    events = [{"status": f"pulling manifest {ESCAPES}"}, {"status": "success"}]
    body = "".join(json.dumps(event) + "\n" for event in events)
    proxy.add_fault("/api/pull", status=200, body=body, content_type="application/x-ndjson")
    outcome = run_ollamactl("--host", proxy.url, "pull", "fresh", "--progress", "plain")
    assert outcome.code == 0, str(outcome)
    assert "pulling manifest x^[]52" in outcome.stderr and "\x1b" not in outcome.stderr


def test_a_table_shows_control_characters_of_a_server_name() -> None:
    assert "\x1b" not in table([[ESCAPES, "1 GB"]], header=["NAME", "SIZE"])


# -- 9, 10: folders and stray files -----------------------------------------------------------


def test_every_missing_folder_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        private_folder(tmp_path / "a" / "b")
    finally:
        os.umask(old)
    for folder in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_only_the_temporary_files_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "chats"
    folder.mkdir()
    kept = [".notes.tmp", "draft.tmp", ".c.json.short.tmp"]
    for name in [".abc123.json.k3j4h5g6.tmp", *kept]:
        (folder / name).write_text("x")
    write_private_file(folder / "abc123.json", b"{}", locked=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*kept, "abc123.json"])
