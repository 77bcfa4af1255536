"""Transport failures become one-line errors; credentials go only to the host they belong to."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from click.shell_completion import ShellComplete

from ollamactl.cli import cli
from ollamactl.client import Client
from ollamactl.config import (
    Flags,
    Settings,
    _describe_source,
    config_path,
    load_config,
    parse_host,
    save_config,
)
from ollamactl.errors import BadResponse, UsageError
from tests.fake_ollama import OllamaTestServer
from tests.helpers import run_cli

SECRET = "s3cret-canary-value"


def profiles(**tables: dict[str, object]) -> None:
    """Write a config file with these profiles."""
    save_config({"profiles": tables})


# -- 1: secrets that HTTP cannot carry are refused without showing them -----------------------


@pytest.mark.parametrize(
    ("args", "env", "source"),
    [
        ((), {"OLLAMA_API_KEY": f"part1-{SECRET}\npart2"}, "OLLAMA_API_KEY"),
        (("--api-key", f"tok\u20ac-{SECRET}"), {}, "--api-key"),
    ],
)
def test_an_api_key_with_a_line_break_or_non_latin1_is_a_usage_error(
    server: OllamaTestServer, args: tuple[str, ...], env: dict[str, str], source: str
) -> None:
    result = run_cli("--host", server.url, *args, "list", env=env)
    assert result.exit_code == 2
    assert f"the API key from {source}" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not server.requests


def test_a_profile_header_with_a_line_break_is_a_usage_error(server: OllamaTestServer) -> None:
    profiles(lab={"host": server.url, "headers": {"X-Token": f"a\r\n{SECRET}"}})
    result = run_cli("--profile", "lab", "list")
    assert result.exit_code == 2
    assert "the header 'X-Token' from profile 'lab'" in result.stderr
    assert SECRET not in result.stderr


def test_a_header_requests_refuses_is_a_usage_error_without_its_value() -> None:
    settings = Settings(host=parse_host("http://127.0.0.1:9"), headers={"X-Key": f" {SECRET}"})
    with pytest.raises(UsageError) as caught:
        Client(settings).tags()
    assert SECRET not in str(caught.value)


# -- 2: every transport failure is an ollamactl error -----------------------------------------


@responses.activate
def test_a_redirect_loop_is_a_bad_response() -> None:
    url = "http://127.0.0.1:9/api/tags"
    responses.add(responses.GET, url, status=302, headers={"Location": url})
    client = Client(Settings(host=parse_host("http://127.0.0.1:9"), retries=0))
    with pytest.raises(BadResponse, match="redirects in a loop"):
        client.tags()


@pytest.fixture
def one_answer() -> Iterator[tuple[socket.socket, str]]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    yield listener, f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def answer_once(listener: socket.socket, answer: bytes) -> threading.Thread:
    """Answer the next connection with ``answer``, then close it."""

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(answer)
            conn.shutdown(socket.SHUT_RDWR)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_body_cut_off_midway_is_a_broken_stream(one_answer: tuple[socket.socket, str]) -> None:
    listener, url = one_answer
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    thread = answer_once(listener, head + b'{"models": [')
    result = run_cli("--host", url, "--retries", "0", "list")
    thread.join(5)
    assert result.exit_code == 3
    assert "broke in the middle of the response" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_body_that_does_not_decode_is_a_bad_response(
    one_answer: tuple[socket.socket, str],
) -> None:
    listener, url = one_answer
    body = b"this is not gzip at all"
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    thread = answer_once(listener, head + body)
    result = run_cli("--host", url, "--retries", "0", "list")
    thread.join(5)
    assert result.exit_code == 1
    assert "does not decode" in result.stderr


# -- 5: wait --timeout N ends after about N seconds ------------------------------------------


def test_wait_gives_up_in_time_when_the_server_never_answers(server: OllamaTestServer) -> None:
    server.add_fault("/api/version", delay=30, times=-1)
    done = subprocess.run(
        [sys.executable, "-m", "ollamactl", "--host", server.url, "wait", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=20,  # finishing at all proves the 300 s read timeout and the retries are gone
        env={**os.environ},
    )
    assert done.returncode == 3
    assert "was not ready after 1s" in done.stderr
    assert "wait --timeout SECONDS" in done.stderr
    assert "raise --read-timeout" not in done.stderr


# -- 6: a profile's key source runs only when that profile's host is used --------------------


def test_an_overridden_default_profile_does_not_need_its_key(server: OllamaTestServer) -> None:
    save_config(
        {"default_profile": "gpu", "profiles": {"gpu": {"host": "gpu:1", "api_key_env": "NOPE"}}}
    )
    result = run_cli("--host", server.url, "list", "-q")
    assert result.exit_code == 0, result.stderr
    assert "tiny:latest" in result.stdout.split()
    assert "Authorization" not in server.requests[-1].headers


def test_a_cached_completion_does_not_run_the_key_command(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    command = f"{sys.executable} -c \"open({str(marker)!r}, 'a').write('x'); print('tok')\""
    save_config({"default_profile": "lab", "profiles": {"lab": {"host": server.url}}})
    config = load_config()
    config["profiles"]["lab"]["api_key_cmd"] = command
    save_config(config)
    completer = ShellComplete(cli, {}, "ollamactl", "_OLLAMACTL_COMPLETE")

    def names() -> list[str]:
        return [str(item.value) for item in completer.get_completions(["rm"], "ti")]

    assert names() == ["tiny:latest"]
    assert marker.read_text() == "x"  # a cache miss: the key was needed for the server
    assert server.requests[-1].headers.get("Authorization") == "Bearer tok"
    assert names() == ["tiny:latest"]
    assert marker.read_text() == "x"  # a cache hit: no secret resolved


# -- 9: OLLAMA_API_KEY goes with OLLAMA_HOST --------------------------------------------------


def test_the_env_key_is_not_sent_to_a_chosen_profiles_host(server: OllamaTestServer) -> None:
    profiles(lab={"host": server.url})
    env = {"OLLAMA_HOST": "http://other.invalid", "OLLAMA_API_KEY": SECRET}
    result = run_cli("--profile", "lab", "list", "-q", env=env)
    assert result.exit_code == 0, result.stderr
    assert "Authorization" not in server.requests[-1].headers
    result = run_cli("--profile", "lab", "list", "-q", env={"OLLAMA_API_KEY": SECRET})
    assert result.exit_code == 0, result.stderr
    assert "Authorization" not in server.requests[-1].headers


def test_the_env_key_is_not_sent_to_every_profile(server: OllamaTestServer) -> None:
    profiles(a={"host": server.url}, b={"host": server.url, "api_key": "b-token"})
    result = run_cli("list", "--all-profiles", "-q", env={"OLLAMA_API_KEY": SECRET})
    assert result.exit_code == 0, result.stderr
    sent = sorted(str(r.headers.get("Authorization")) for r in server.requests)
    assert sent == ["Bearer b-token", "None"]


def test_the_env_key_still_goes_to_the_env_host(server: OllamaTestServer) -> None:
    profiles(lab={"host": "lab.invalid:1"})
    env = {"OLLAMA_HOST": server.url, "OLLAMA_API_KEY": SECRET}
    result = run_cli("list", "-q", env=env)
    assert result.exit_code == 0, result.stderr
    assert server.requests[-1].headers.get("Authorization") == f"Bearer {SECRET}"


# -- 10: the plain-http warning is about secrets only -----------------------------------------


@pytest.mark.parametrize(
    ("credential", "warned"),
    [
        (("-H", "X-Team: ml"), False),
        (("-H", f"X-Auth-Token: {SECRET}"), True),
        (("--api-key", SECRET), True),
    ],
)
def test_plain_http_warns_only_about_secrets(credential: tuple[str, str], warned: bool) -> None:
    host = "http://ollama.invalid:1"
    result = run_cli("--host", host, "--retries", "0", *credential, "list")
    assert result.exit_code == 3
    assert ("credentials are sent over plain http://" in result.stderr) is warned


# -- 11: config set checks keep_alive and options ----------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("profiles.gpu.keep_alive", "banana", "invalid keep-alive 'banana'"),
        ("profiles.gpu.options.colour", "red", "unknown parameter 'colour'"),
        ("profiles.gpu.options.num_ctx", "lots", "invalid int value [lots]"),
        ("profiles.gpu.options.use_mmap", "maybe", "invalid bool value [maybe]"),
    ],
)
def test_config_set_refuses_bad_run_defaults(key: str, value: str, message: str) -> None:
    result = run_cli("config", "set", key, value)
    assert result.exit_code == 2
    assert message in result.stderr and key in result.stderr
    assert not config_path().exists()


def test_config_set_types_run_defaults_as_the_flags_do() -> None:
    for key, value in [
        ("profiles.gpu.keep_alive", "1h30m"),
        ("profiles.gpu.options.use_mmap", "false"),
        ("profiles.gpu.options.stop", "###"),
    ]:
        assert run_cli("config", "set", key, value).exit_code == 0
    gpu = load_config()["profiles"]["gpu"]
    assert gpu["keep_alive"] == "1h30m"
    assert gpu["options"] == {"use_mmap": False, "stop": ["###"]}


# -- 12: doctor names the real flags ----------------------------------------------------------


def test_doctor_names_the_flags_settings_came_from(server: OllamaTestServer) -> None:
    result = run_cli(
        "--host", server.url, "--timeout", "42", "--connect-timeout", "3", "doctor", "--json"
    )
    assert result.exit_code == 0, result.stderr
    sources = {row["setting"]: row["source"] for row in json.loads(result.stdout)["settings"]}
    assert sources["read_timeout"] == "--read-timeout"
    assert sources["connect_timeout"] == "--connect-timeout"
    assert sources["host"] == "--host"


def test_every_source_a_flag_gives_is_a_real_option() -> None:
    options = {opt for param in cli.params for opt in getattr(param, "opts", [])}
    settings = [field.name for field in dataclasses.fields(Flags) if field.name != "profile"]
    assert {_describe_source("flag", key) for key in settings} <= options
