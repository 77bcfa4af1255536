"""Sanity checks for the fake Ollama in tests/fake_ollama/ (plain requests against a live one)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fake_ollama import JSON_TYPE, OllamaTestServer
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def srv() -> Iterator[OllamaTestServer]:
    """A fresh server with one local model (conftest's richer `server` is not needed here)."""
    with OllamaTestServer(lifetime=60) as live:
        live.add_model("tiny")
        yield live


def lines(response: requests.Response) -> list[dict]:
    return [json.loads(line) for line in response.iter_lines() if line]


def test_root_version_and_routing(srv: OllamaTestServer) -> None:
    root = requests.get(srv.url)
    assert (root.text, root.headers["Content-Type"]) == (
        "Ollama is running",
        "text/plain; charset=utf-8",
    )
    head = requests.head(srv.url)
    assert head.headers["Content-Length"] == "17" and head.content == b""
    assert requests.get(srv.url + "/api/version").json() == {"version": "0.9.3"}
    missing = requests.get(srv.url + "/api/nonexistent")
    assert (missing.status_code, missing.text, missing.headers["Content-Type"]) == (
        404,
        "404 page not found",
        "text/plain",
    )
    assert requests.post(srv.url + "/api/tags").text == "405 method not allowed"


def test_what_the_server_received(srv: OllamaTestServer) -> None:
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    requests.post(srv.url + "/api/chat", json=chat, headers={"X-Trace": "1"})
    requests.get(srv.url + "/api/tags")
    requests.head(srv.url + "/api/blobs/sha256:" + "0" * 64)
    assert [(r.method, r.path) for r in srv.requests] == [
        ("POST", "/api/chat"),
        ("GET", "/api/tags"),
        ("HEAD", "/api/blobs/sha256:" + "0" * 64),
    ]
    assert srv.last_request().method == "HEAD"
    assert srv.last_request("/api/chat").headers["X-Trace"] == "1"
    assert srv.json_bodies("/api/chat") == [chat]
    assert srv.json_bodies("/api/tags") == [None]  # no body
    assert [r.method for r in srv.requests_to("/api/*", method="GET")] == ["GET"]
    assert srv.requests_to("/api/blobs/*")[0].body == b""
    with pytest.raises(AssertionError, match="no request to /api/pull"):
        srv.last_request("/api/pull")


def test_tags_shape_and_order(srv: OllamaTestServer) -> None:
    srv.add_model("old/model:v1", modified_at="2020-01-01T00:00:00Z", size=1234)
    models = requests.get(srv.url + "/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["tiny:latest", "old/model:v1"]
    assert set(models[1]) == {"name", "model", "modified_at", "size", "digest", "details"}
    assert models[1]["size"] == 1234 and len(models[1]["digest"]) == 64


def test_generate_stream_is_chunked_ndjson_with_stats(srv: OllamaTestServer) -> None:
    with requests.post(
        srv.url + "/api/generate", json={"model": "tiny", "prompt": "hi"}, stream=True
    ) as response:
        assert response.headers["Content-Type"] == "application/x-ndjson"
        assert response.headers["Transfer-Encoding"] == "chunked"
        chunks = lines(response)
    assert "".join(c["response"] for c in chunks) == "Hello, world!"
    final = chunks[-1]
    assert final["done"] and final["done_reason"] == "stop" and final["eval_count"] == 4
    stats = {"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration"}
    assert stats | {"eval_duration", "context"} <= final.keys()


def test_generate_nonstream_load_unload_and_ps(srv: OllamaTestServer) -> None:
    url = srv.url + "/api/generate"
    reply = requests.post(
        url, json={"model": "tiny", "prompt": "hi", "stream": False, "options": {"num_predict": 2}}
    )
    assert reply.headers["Content-Type"] == JSON_TYPE
    assert (reply.json()["response"], reply.json()["done_reason"]) == ("Hello,", "length")
    assert [m["name"] for m in requests.get(srv.url + "/api/ps").json()["models"]] == [
        "tiny:latest"
    ]
    unload = requests.post(url, json={"model": "tiny", "keep_alive": 0}).json()
    assert unload["done_reason"] == "unload" and srv.running == {}
    assert requests.post(url, json={"model": "tiny"}).json()["done_reason"] == "load"


def test_tokens_are_flushed_one_by_one(srv: OllamaTestServer) -> None:
    srv.add_fault("/api/chat", stall_after_lines=2, stall_seconds=60)
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    with requests.post(srv.url + "/api/chat", json=chat, stream=True, timeout=(5, 30)) as response:
        received = response.iter_lines()
        assert json.loads(next(received))["message"] == {"role": "assistant", "content": "Hello"}
        assert json.loads(next(received))["message"]["content"] == ","
    # both lines arrived while the server still held the stream open (until we hung up)
    assert srv.stall_released.wait(30)


def test_recorded_error_strings(srv: OllamaTestServer) -> None:
    def error(method: str, path: str, **kwargs: object) -> tuple[int, str]:
        response = requests.request(method, srv.url + path, **kwargs)  # type: ignore[arg-type]
        return response.status_code, response.json()["error"]

    chat = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
    assert error("POST", "/api/generate", json={"model": "nope"}) == (404, "model 'nope' not found")
    assert error("POST", "/api/chat", json=chat) == (
        404,
        'model "nope" not found, try pulling it first',
    )
    assert error("DELETE", "/api/delete", json={"model": "nope"}) == (404, "model 'nope' not found")
    assert error("POST", "/api/copy", json={"source": "nope", "destination": "x"}) == (
        404,
        'model "nope" not found',
    )
    assert error("POST", "/api/show", data="") == (400, "missing request body")
    assert error("POST", "/api/chat", data="{not json") == (
        400,
        "invalid character 'n' looking for beginning of object key string",
    )
    assert error("POST", "/api/generate", data='{"model":"tiny", "prompt":') == (
        400,
        "unexpected EOF",
    )
    assert error("POST", "/api/chat", json={**chat, "model": "tiny", "tools": [{}]}) == (
        400,
        "registry.ollama.ai/library/tiny:latest does not support tools",
    )


def test_chat_tool_call(srv: OllamaTestServer) -> None:
    srv.add_model("tooly", capabilities=["completion", "tools"])
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    body = {
        "model": "tooly",
        "stream": False,
        "tools": [tool],
        "messages": [{"role": "user", "content": "weather?"}],
    }
    message = requests.post(srv.url + "/api/chat", json=body).json()["message"]
    assert message["tool_calls"][0]["function"]["name"] == "get_weather"
    body["messages"] += [message, {"role": "tool", "content": "sunny", "tool_name": "get_weather"}]
    assert requests.post(srv.url + "/api/chat", json=body).json()["message"]["content"]


@pytest.mark.parametrize("auth", ["token", "basic"])
def test_prefix_and_auth(auth: str) -> None:
    kwargs = {"token": "s3cret"} if auth == "token" else {"basic_auth": ("me", "pw")}
    with OllamaTestServer(prefix="/ollama-api", lifetime=30, **kwargs) as srv:
        good = (
            {"headers": {"Authorization": "Bearer s3cret"}}
            if auth == "token"
            else {"auth": ("me", "pw")}
        )
        assert srv.url.endswith("/ollama-api")
        denied = requests.get(srv.url + "/api/tags")
        assert (denied.status_code, denied.json()) == (401, {"error": "unauthorized"})
        assert requests.get(srv.url + "/api/tags", **good).json() == {"models": []}
        assert (
            requests.get(srv.url.replace("/ollama-api", "") + "/api/tags", **good).status_code
            == 404
        )
        assert srv.requests[-2].path == "/api/tags"


def test_pull_progress_errors_and_resume(srv: OllamaTestServer) -> None:
    srv.add_registry_model("big:latest", [1000, 10])
    url = srv.url + "/api/pull"
    srv.add_fault("/api/pull", drop_after_lines=3)
    seen = []
    with (
        pytest.raises(requests.exceptions.ChunkedEncodingError),
        requests.post(url, json={"model": "big"}, stream=True) as response,
    ):
        seen.extend(json.loads(line) for line in response.iter_lines())
    assert len(seen) == 3 and seen[-1]["completed"] == 400
    events = lines(requests.post(url, json={"model": "big"}))
    assert events[1]["completed"] == 400 and events[1]["status"].startswith("pulling ")
    assert [e["status"] for e in events[-3:]] == [
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ]
    assert "big:latest" in srv.models
    assert lines(requests.post(url, json={"model": "missing"})) == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    failed = requests.post(url, json={"model": "missing", "stream": False})
    assert (failed.status_code, failed.headers["Content-Type"]) == (500, "application/json")
    assert requests.post(url, json={"model": "bad name!!"}).json() == {
        "error": "invalid model name"
    }


def test_faults_replace_or_break_responses(srv: OllamaTestServer) -> None:
    srv.add_fault(
        "/api/tags", status=502, body="<html>502 Bad Gateway</html>", content_type="text/html"
    )
    assert requests.get(srv.url + "/api/tags").status_code == 502
    assert requests.get(srv.url + "/api/tags").status_code == 200  # times=1
    body = {"model": "tiny", "prompt": "hi"}
    srv.add_fault("/api/generate", error_line="boom")
    assert lines(requests.post(srv.url + "/api/generate", json=body))[1] == {"error": "boom"}
    srv.add_fault("/api/generate", malformed_line=True)
    raw = requests.post(srv.url + "/api/generate", json=body).text.splitlines()
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw[1])


def test_stall_hits_client_timeout_and_stop_is_prompt(srv: OllamaTestServer) -> None:
    srv.add_fault("/api/generate", stall_after_lines=1, stall_seconds=30, times=2)
    body = {"model": "tiny", "prompt": "hi"}
    with (
        pytest.raises(requests.exceptions.ConnectionError),
        requests.post(
            srv.url + "/api/generate", json=body, stream=True, timeout=(5, 0.3)
        ) as response,
    ):
        list(response.iter_lines())
    broken = []

    def stalled_client() -> None:
        try:
            requests.post(srv.url + "/api/generate", json=body)
        except requests.exceptions.RequestException as exc:
            broken.append(exc)

    stalled = threading.Thread(target=stalled_client, daemon=True)
    stalled.start()
    wait_until(lambda: len(srv.requests) == 2)  # the second request is in its 30 s stall
    srv.stop()
    srv.stop()
    stalled.join(timeout=20)
    assert not stalled.is_alive() and broken, "the stalled stream was cut by stop()"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(srv.url)
    with OllamaTestServer(lifetime=0.2) as short:
        wait_until(lambda: not serving(short.url))  # it stops itself at the end of its lifetime


def serving(url: str) -> bool:
    try:
        requests.get(url, timeout=5)
    except requests.exceptions.ConnectionError:
        return False
    return True


def test_blobs_and_create(srv: OllamaTestServer) -> None:
    data = b"GGUF fake weights"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blob = srv.url + "/api/blobs/" + digest
    assert requests.head(blob).status_code == 404
    assert requests.head(srv.url + "/api/blobs/sha256:xyz").status_code == 400
    mismatch = requests.post(blob, data=b"other")
    assert mismatch.json()["error"].startswith(f'digest mismatch, expected "{digest}", got "')
    assert [requests.post(blob, data=data).status_code for _ in "ab"] == [201, 200]
    create = {
        "model": "mine",
        "files": {"m.gguf": digest},
        "system": "be brief",
        "parameters": {"temperature": 0.5},
    }
    statuses = [e["status"] for e in lines(requests.post(srv.url + "/api/create", json=create))]
    assert statuses[:2] == ["parsing GGUF", f"using existing layer {digest}"]
    assert statuses[-2:] == ["writing manifest", "success"]
    assert requests.post(srv.url + "/api/show", json={"name": "mine"}).json()["system"] == (
        "be brief"
    )
    neither = lines(requests.post(srv.url + "/api/create", json={"model": "x"}))
    assert neither == [{"error": "neither 'from' or 'files' was specified", "status": 400}]


def test_embed_is_deterministic(srv: OllamaTestServer) -> None:
    url = srv.url + "/api/embed"
    first = requests.post(url, json={"model": "tiny", "input": ["a", "b"]}).json()["embeddings"]
    again = requests.post(url, json={"model": "tiny", "input": ["a", "b"]}).json()["embeddings"]
    assert first == again and len(first) == 2 and len(first[0]) == 8
    short = requests.post(url, json={"model": "tiny", "input": "a", "dimensions": 3}).json()
    assert len(short["embeddings"][0]) == 3
    assert requests.post(url, json={"model": "tiny"}).json() == {"model": "tiny", "embeddings": []}


def test_script_prints_ready_url() -> None:
    command = [
        sys.executable,
        "-m",
        "tests.fake_ollama",
        "--port",
        "0",
        "--models",
        "tiny:latest",
        "--token-count",
        "1000",
        "--lifetime",
        "20",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as process:
        try:
            ready = process.stdout.readline().split()  # type: ignore[union-attr]
            assert ready[0] == "READY"
            reply = requests.post(
                ready[1] + "/api/generate", json={"model": "tiny", "prompt": "x", "stream": False}
            ).json()
            assert reply["eval_count"] == 1000
        finally:
            process.terminate()
            process.wait(timeout=10)
