"""``ollamactl batch`` end to end: the real CLI against local test servers (and a real Ollama).

Several servers are profiles of a config file pointing at test servers of their own. Retries
wait no backoff here (conftest's no_backoff, in-process runs); nothing asserts on time.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

import pexpect
import pytest
from click.testing import Result

from ollamactl import batch as engine
from tests.backends import Backend
from tests.fake_ollama import OllamaTestServer
from tests.helpers import PNG, dead_url, on, run_cli, seed, spawn, wait_until

Row = Union[str, dict[str, Any]]


@pytest.fixture
def other_server() -> Iterator[OllamaTestServer]:
    """A second test server, for the profiles that spread the prompts."""
    with seed(OllamaTestServer()) as srv:
        yield srv


def prompts(path: Path, *rows: Row) -> str:
    """Write an input file, one row per line (dicts as JSON); returns its path."""
    path.write_text("".join((json.dumps(r) if isinstance(r, dict) else r) + "\n" for r in rows))
    return str(path)


def records(text: str) -> list[dict[str, Any]]:
    """The output's JSON lines."""
    return [json.loads(line) for line in text.splitlines()]


def profiles(tmp_path: Path, **hosts: dict[str, Any]) -> None:
    """Write a config file with a profile per keyword: name = {host = ..., ...}."""
    lines = []
    for name, table in hosts.items():
        lines.append(f"[profiles.{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.toml").write_text("\n".join(lines) + "\n")


def failed_with(result: Result, code: int, text: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert text in result.stderr


# -- input and output -----------------------------------------------------------------------


def test_plain_and_json_lines_are_answered_one_output_line_each(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(PNG)
    source = prompts(
        tmp_path / "in.txt",
        "Why is the sky blue?",
        {
            "id": "q2",
            "prompt": "Two",
            "system": "Be brief.",
            "options": {"num_predict": 2},
            "format": "json",
            "think": False,
            "keep_alive": "1m",
        },
        {"prompt": "What is in the picture?", "images": [str(image)]},
    )
    result = on(server, "batch", "gemma3:12b", source, "-p", "temperature=0", "--system", "Sys.")
    assert result.exit_code == 0, result.stderr
    answers = {r["id"]: r for r in records(result.stdout)}
    assert set(answers) == {1, "q2", 3}
    for answer in answers.values():
        assert answer["model"] == "gemma3:12b"
        assert answer["server"] == server.url
        assert answer["response"]
        assert answer["done_reason"] in ("stop", "length")
        assert isinstance(answer["eval_count"], int)
        assert isinstance(answer["total_duration"], int)
    assert answers["q2"]["done_reason"] == "length"
    bodies = {b["prompt"]: b for b in server.json_bodies("/api/generate")}
    assert bodies["Why is the sky blue?"] == {
        "model": "gemma3:12b",
        "prompt": "Why is the sky blue?",
        "system": "Sys.",
        "options": {"temperature": 0.0},
        "stream": False,
    }
    assert bodies["Two"]["system"] == "Be brief."
    assert bodies["Two"]["options"] == {"temperature": 0.0, "num_predict": 2}
    assert (bodies["Two"]["format"], bodies["Two"]["think"]) == ("json", False)
    assert bodies["Two"]["keep_alive"] == "1m"
    assert bodies["What is in the picture?"]["images"] == [base64.b64encode(PNG).decode()]
    assert len(server.requests_to("/api/show")) == 1  # the model is checked once
    assert "3 answered, 0 failed" in result.stderr
    assert result.stderr.count("batch: ") >= 2  # off a terminal: a line per tenth, a summary


def test_chat_lines_from_stdin_go_to_the_chat_endpoint(server: OllamaTestServer) -> None:
    line = {"id": "c1", "messages": [{"role": "user", "content": "hi"}]}
    result = on(server, "batch", "tiny", "--system", "Be kind.", input=json.dumps(line) + "\n")
    assert result.exit_code == 0, result.stderr
    (answer,) = records(result.stdout)
    assert answer["id"] == "c1"
    assert answer["message"] == {"role": "assistant", "content": "Hello, world!"}
    assert server.last_request("/api/chat").json["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi"},
    ]


def test_bad_lines_are_reported_by_number_and_the_others_answered(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(
        b"first\n"
        b"\n"
        b"{not json\n"
        b'{"prompt": "x", "colour": 1}\n'
        b'{"messages": "hi"}\n'
        b'{"prompt": "p", "images": ["/no/such.png"]}\n'
        b"caf\xe9\n"
        b"last\n"
    )
    result = on(server, "batch", "tiny", str(source))
    failed_with(result, 1, "Error: 5 input lines were bad")
    for expected in (
        "Error: line 3: not a valid JSON object",
        "Error: line 4: unknown field 'colour'",
        "Error: line 5: 'messages' must be a list",
        "Error: line 6: cannot read image '/no/such.png'",
        "Error: line 7: not UTF-8 text",
    ):
        assert expected in result.stderr
    assert sorted(r["id"] for r in records(result.stdout)) == [1, 8]


def test_ordered_output_keeps_the_input_order(server: OllamaTestServer, tmp_path: Path) -> None:
    server.add_fault("/api/generate", delay=0.3)  # the first prompt finishes last
    source = prompts(tmp_path / "in.txt", *(f"prompt {i}" for i in range(1, 9)))
    result = on(server, "batch", "tiny", source, "-j", "4", "--ordered")
    assert result.exit_code == 0, result.stderr
    assert [r["id"] for r in records(result.stdout)] == list(range(1, 9))


def test_resume_sends_only_the_missing_ids_after_a_partial_last_line(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    source = prompts(tmp_path / "in.txt", "one", "two", "three", "four")
    output = tmp_path / "out.jsonl"
    output.write_bytes(
        b'{"id":1,"model":"tiny","response":"done before"}\n'
        b'{"id":2,"model":"tiny","error":"failed before"}\n'
        b'{"id":3,"model":"ti'
    )
    result = on(server, "batch", "tiny", source, "-o", str(output), "--resume")
    assert result.exit_code == 0, result.stderr
    assert "removed an incomplete last line (19 bytes)" in result.stderr
    assert "1 already answered" in result.stderr
    assert sorted(b["prompt"] for b in server.json_bodies("/api/generate")) == [
        "four",
        "three",
        "two",
    ]
    written = records(output.read_text())  # every line whole
    assert [r["id"] for r in written[:2]] == [1, 2]
    assert sorted(r["id"] for r in written[2:]) == [2, 3, 4]
    # without --resume the file starts again
    assert on(server, "batch", "tiny", source, "-o", str(output)).exit_code == 0
    assert sorted(r["id"] for r in records(output.read_text())) == [1, 2, 3, 4]


# -- several servers ------------------------------------------------------------------------


def test_two_profiles_share_the_prompts_each_with_its_own_credentials(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    with seed(OllamaTestServer(token="token-of-b")) as b:
        for srv in (server, b):
            srv.generation["token_delay"] = 0.01  # both busy: neither takes everything
        profiles(tmp_path, a={"host": server.url}, b={"host": b.url, "api_key": "token-of-b"})
        source = prompts(tmp_path / "in.txt", *(f"prompt {i}" for i in range(40)))
        result = run_cli("batch", "tiny", source, "--profiles", "a,b", "-j", "2")
        assert result.exit_code == 0, result.stderr
        answers = records(result.stdout)
        assert sorted(r["id"] for r in answers) == list(range(1, 41))
        served = {name: sum(r["server"] == name for r in answers) for name in ("a", "b")}
        assert served["a"] and served["b"]
        assert len(server.requests_to("/api/generate")) == served["a"]
        assert len(b.requests_to("/api/generate")) == served["b"]
        assert not any("Authorization" in r.headers for r in server.requests)
        assert {r.headers["Authorization"] for r in b.requests} == {"Bearer token-of-b"}
        for name in ("a", "b"):
            assert f"\n{name} " in result.stderr  # a summary row per server


def test_the_share_of_a_dead_server_goes_to_the_others(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    profiles(tmp_path, live={"host": server.url}, dead={"host": dead_url(), "retries": 0})
    source = prompts(tmp_path / "in.txt", *(f"prompt {i}" for i in range(10)))
    result = run_cli("batch", "tiny", source, "--all-profiles", "-j", "2")
    assert result.exit_code == 0, result.stderr
    assert {r["server"] for r in records(result.stdout)} == {"live"}
    assert "Warning: dead (http://127.0.0.1:" in result.stderr
    assert "connection refused" in result.stderr
    assert "the other servers take its prompts" in result.stderr
    assert "dead (dropped)" in result.stderr


def test_a_server_that_keeps_failing_hands_its_prompts_to_the_other(
    server: OllamaTestServer, other_server: OllamaTestServer, tmp_path: Path
) -> None:
    crash = '{"error":"llama runner process has terminated"}'
    other_server.add_fault("/api/generate", status=500, body=crash, times=-1)
    profiles(tmp_path, good={"host": server.url}, bad={"host": other_server.url})
    source = prompts(tmp_path / "in.txt", *(f"prompt {i}" for i in range(12)))
    result = run_cli("batch", "tiny", source, "--profiles", "bad,good")
    assert result.exit_code == 0, result.stderr
    answers = records(result.stdout)
    assert sorted(r["id"] for r in answers) == list(range(1, 13))
    assert {r["server"] for r in answers} == {"good"}
    assert len(other_server.requests_to("/api/generate")) <= engine.SERVER_FAILURE_LIMIT
    assert "Warning: bad (" in result.stderr
    assert "llama runner process has terminated; the other servers take" in result.stderr


def test_no_server_left_stops_with_the_servers_error(
    other_server: OllamaTestServer, tmp_path: Path
) -> None:
    profiles(tmp_path, a={"host": other_server.url}, gone={"host": dead_url(), "retries": 0})
    result = run_cli("batch", "nope", prompts(tmp_path / "in.txt", "hi"), "--all-profiles")
    failed_with(result, 5, "Error: no server is left: ")
    assert "model 'nope' not found" in result.stderr
    assert "(add --pull to pull the model where it is missing)" in result.stderr
    assert result.stdout == ""


# -- failures and retries ---------------------------------------------------------------------


def test_transient_errors_are_retried_and_permanent_ones_recorded_once(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    server.add_fault(
        "/api/generate", status=503, body="<html>busy</html>", content_type="text/html"
    )
    server.add_fault("/api/generate", status=200, body='{"model":"tiny","response":"cut"}')
    server.add_fault("/api/generate", drop_after_lines=0)
    image = tmp_path / "cat.png"
    image.write_bytes(PNG)
    source = prompts(
        tmp_path / "in.txt", "one", "two", {"prompt": "see", "images": [str(image)]}, "four"
    )
    result = on(server, "batch", "tiny", source, "--retries", "3", "--ordered")
    failed_with(result, 1, "Error: 1 of 4 prompts failed")
    answers = records(result.stdout)
    assert [r["id"] for r in answers] == [1, 2, 3, 4]
    assert [r.get("response") for r in answers] == ["Hello, world!"] * 2 + [None, "Hello, world!"]
    assert "does not support vision" in answers[2]["error"]
    assert "retry 3 of 3" in result.stderr
    bodies = server.json_bodies("/api/generate")
    assert len(bodies) == 3 + 4  # three faults, then each prompt once
    assert sum("images" in body for body in bodies) == 1  # a permanent error is not retried


def test_a_prompt_that_keeps_failing_is_recorded_after_its_retries(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    server.add_fault("/api/generate", status=500, body='{"error":"out of memory"}', times=-1)
    result = on(server, "batch", "tiny", prompts(tmp_path / "in.txt", "one"), "--retries", "1")
    failed_with(result, 1, "Error: 1 of 1 prompts failed")
    assert records(result.stdout) == [
        {"id": 1, "model": "tiny", "server": server.url, "error": "out of memory"}
    ]
    assert len(server.requests_to("/api/generate")) == 2


def test_a_missing_model_exits_5_and_pull_fetches_it_once_per_server(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    source = prompts(tmp_path / "in.txt", *(f"prompt {i}" for i in range(5)))
    failed_with(on(server, "batch", "nope", source), 5, "Error: model 'nope' not found")
    assert not server.requests_to("/api/generate")
    fresh = "registry.test/library/fresh:latest"
    server.add_registry_model(fresh, layers=[1000, 10])
    result = on(server, "batch", fresh, source, "--pull", "-j", "3")
    assert result.exit_code == 0, result.stderr
    assert len(records(result.stdout)) == 5
    assert len(server.requests_to("/api/pull")) == 1
    assert f"pulling {fresh}" in result.stderr


def test_usage_and_connection_errors_have_their_exit_codes(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    source = prompts(tmp_path / "in.txt", "hi")
    for args, code, text in (
        (["--resume"], 2, "--resume needs -o FILE"),
        (["-p", "temperature=hot"], 2, "invalid float value"),
        (["--think=lots"], 2, "invalid value for --think"),
        (["--profiles", "a", "--all-profiles"], 2, "not both"),
        (["--profiles", "nosuch"], 2, "combined with --host"),
    ):
        failed_with(on(server, "batch", "tiny", source, *args), code, text)
    failed_with(on(server, "batch", "tiny", str(tmp_path / "none.txt")), 2, "cannot read")
    failed_with(run_cli("batch", "tiny", source, "--profiles", "nosuch"), 2, "unknown profile")
    failed_with(
        run_cli("--host", dead_url(), "--retries", "0", "batch", "tiny", source),
        3,
        "could not connect",
    )
    assert not server.requests_to("/api/generate")
    quiet = on(server, "batch", "tiny", source, "-q")
    assert (quiet.exit_code, quiet.stderr) == (0, "")


# -- Ctrl-C and the terminal ----------------------------------------------------------------


def test_ctrl_c_keeps_whole_lines_and_resume_sends_the_rest(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    server.generation["token_delay"] = 0.05  # 0.2 s an answer
    source = prompts(tmp_path / "in.txt", *(f"prompt {i}" for i in range(30)))
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "ollamactl", "--host", server.url, "batch", "tiny"]
    process = subprocess.Popen(
        [*command, source, "-o", str(output), "-j", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: output.exists() and output.read_bytes().count(b"\n") >= 2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: " in stderr
    assert "--resume" in stderr
    first = records(output.read_text())  # whole lines only
    assert 2 <= len(first) < 30
    sent = len(server.requests_to("/api/generate"))
    result = on(server, "batch", "tiny", source, "-o", str(output), "-j", "4", "--resume")
    assert result.exit_code == 0, result.stderr
    assert len(server.requests_to("/api/generate")) - sent == 30 - len(first)
    ids = [r["id"] for r in records(output.read_text())]
    assert sorted(ids) == list(range(1, 31))


@pytest.mark.pty
def test_a_terminal_shows_a_progress_bar(server: OllamaTestServer, tmp_path: Path) -> None:
    source = prompts(tmp_path / "in.txt", *(f"prompt {i}" for i in range(20)))
    child = spawn(server, "batch", "tiny", source, "-o", str(tmp_path / "out.jsonl"), "-j", "2")
    child.expect(r"batch: 100%.*20/20")
    child.expect("20 answered, 0 failed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


# -- a real Ollama --------------------------------------------------------------------------


@pytest.mark.real
def test_a_real_server_answers_a_few_prompts(real_backend: Backend, tmp_path: Path) -> None:
    source = prompts(
        tmp_path / "in.txt",
        "Say hello.",
        {"id": "json", "prompt": "Name a colour.", "format": "json"},
        {"id": "chat", "messages": [{"role": "user", "content": "Hi!"}]},
    )
    bounded = ("--option", "num_predict=8", "--option", "seed=1", "--option", "temperature=0")
    result = run_cli("--host", real_backend.url, "batch", real_backend.model, source, *bounded)
    assert result.exit_code == 0, result.stderr
    answers = {r["id"]: r for r in records(result.stdout)}
    assert set(answers) == {1, "json", "chat"}
    for answer in answers.values():
        assert answer["done_reason"] in ("stop", "length")
        assert answer["eval_count"] >= 1
        assert answer["server"] == real_backend.url
    assert isinstance(answers[1]["response"], str)
    assert answers["chat"]["message"]["role"] == "assistant"
