"""pull, push and create: end to end against the local test server (off a terminal)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import on, run_cli

LAYERS = [2_019_393_189, 1_400, 7_700, 96]
PLAIN_BAR = re.compile(r"^pulling ([0-9a-f]{12}): +(\d+)% ")


@pytest.fixture
def registry(server: OllamaTestServer) -> Iterator[OllamaTestServer]:
    """The test server with a four-layer model ``big`` in its registry."""
    server.add_registry_model("big:latest", LAYERS)
    server.pull_steps = 10
    yield server


def posts(server: OllamaTestServer, path: str) -> list[Any]:
    return server.requests_to(path, method="POST")


def layer_digests(server: OllamaTestServer, name: str) -> list[str]:
    return [layer["digest"] for layer in server.registry[name]["layers"]]


# -- pull -----------------------------------------------------------------------------------


def test_pull_shows_each_layer_and_status_in_plain_lines(registry: OllamaTestServer) -> None:
    result = on(registry, "pull", "big")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "pulling manifest"
    assert lines[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    bars = [PLAIN_BAR.match(line) for line in lines[1:-3]]
    assert all(bars), lines
    shown = [m.group(1) for m in bars if m]
    assert list(dict.fromkeys(shown)) == [d[7:19] for d in layer_digests(registry, "big:latest")]
    assert "pulling " + shown[0] + ": 100% 2.0 GB" in lines
    assert len(shown) <= 11 * len(LAYERS), "plain mode prints a layer at most every 10 %"
    assert "big:latest" in registry.models


def test_pull_progress_json_repeats_the_server_events(registry: OllamaTestServer) -> None:
    result = on(registry, "pull", "big", "--progress", "json")
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stderr.splitlines()]
    digests = layer_digests(registry, "big:latest")
    assert events[0] == {"status": "pulling manifest"}
    assert events[-1] == {"status": "success"}
    assert [e for e in events if e.get("digest") == digests[0]][-1] == {
        "status": f"pulling {digests[0][7:19]}",
        "digest": digests[0],
        "total": LAYERS[0],
        "completed": LAYERS[0],
    }
    assert len(events) == 1 + len(LAYERS) * registry.pull_steps + 3


def test_pull_quiet_prints_nothing(registry: OllamaTestServer) -> None:
    result = on(registry, "pull", "-q", "big")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_pull_interrupted_twice_completes_by_resuming(registry: OllamaTestServer) -> None:
    registry.add_fault("/api/pull", drop_after_lines=6, times=2)
    result = on(registry, "pull", "big", "--progress", "json")
    assert result.exit_code == 0, result.stderr
    notices = [json.loads(line).get("notice") for line in result.stderr.splitlines()]
    notices = [n for n in notices if n]
    assert len(notices) == 2
    assert notices[0].startswith("retrying pull of big (attempt 2 of 4): the connection to")
    assert notices[1].startswith("retrying pull of big (attempt 3 of 4)")
    assert len(posts(registry, "/api/pull")) == 3
    first = layer_digests(registry, "big:latest")[0]
    resumed = [
        json.loads(line)
        for line in result.stderr.split(notices[0])[1].splitlines()[1:]
        if first in line
    ]
    assert resumed[0]["completed"] > 0, "the second attempt resumes, not restarts"
    assert "big:latest" in registry.models


def test_pull_gives_up_after_the_retries(registry: OllamaTestServer) -> None:
    registry.add_fault("/api/pull", drop_after_lines=3, times=-1)
    result = on(registry, "pull", "big", "--retries", "1")
    assert result.exit_code == 3
    assert "retrying pull of big (attempt 2 of 2)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: the connection to")
    assert len(posts(registry, "/api/pull")) == 2


def test_pull_of_a_stalled_stream_is_reissued(registry: OllamaTestServer) -> None:
    registry.add_fault("/api/pull", stall_after_lines=2, stall_seconds=5, times=1)
    result = on(registry, "pull", "big", "--stall-timeout", "0.2")
    assert result.exit_code == 0, result.stderr
    assert "retrying pull of big (attempt 2 of 4): no progress for 0.2s" in result.stderr
    assert result.stderr.endswith("success\n")


def test_pull_that_keeps_stalling_fails_with_a_hint(registry: OllamaTestServer) -> None:
    registry.add_fault("/api/pull", stall_after_lines=1, stall_seconds=5, times=1)
    result = on(registry, "pull", "big", "--stall-timeout", "0.2", "--retries", "0")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == (
        "Error: the pull of big stalled: no progress for 0.2s"
        " (raise --stall-timeout or --resume-retries)"
    )


def test_pull_of_a_missing_model_exits_5_with_the_server_message(
    server: OllamaTestServer,
) -> None:
    result = on(server, "pull", "nope")
    assert result.exit_code == 5
    assert result.stderr == ("pulling manifest\nError: pull model manifest: file does not exist\n")
    assert len(posts(server, "/api/pull")) == 1, "an in-band error is not retried"


def test_pull_with_another_in_band_error_exits_1(registry: OllamaTestServer) -> None:
    registry.add_fault("/api/pull", error_line="max retries exceeded: EOF")
    result = on(registry, "pull", "big")
    assert result.exit_code == 1
    assert result.stderr.endswith("Error: max retries exceeded: EOF\n")


def test_pull_if_missing_skips_a_present_model(server: OllamaTestServer) -> None:
    result = on(server, "pull", "--if-missing", "TINY")
    assert result.exit_code == 0
    assert result.stderr == "TINY is already on the server\n"
    assert posts(server, "/api/pull") == []


def test_pull_if_missing_pulls_an_absent_model(registry: OllamaTestServer) -> None:
    result = on(registry, "pull", "--if-missing", "big", "-q")
    assert result.exit_code == 0
    assert "big:latest" in registry.models
    assert len(posts(registry, "/api/pull")) == 1


def test_pull_several_models_ends_with_a_summary(registry: OllamaTestServer) -> None:
    registry.add_registry_model("small:latest", [100, 20])
    result = on(registry, "pull", "-q", "big", "small", "nope")
    assert result.exit_code == 5, "every failure was 'not found'"
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: pulling nope: pull model manifest: file does not exist",
        "summary: 2 updated (big, small), 0 unchanged, 1 failed (nope)",
        "Error: 1 of 3 pulls failed",
    ]
    assert {"big:latest", "small:latest"} <= set(registry.models)


def test_pull_several_in_json_mode_reports_in_json(registry: OllamaTestServer) -> None:
    result = on(registry, "pull", "--progress", "json", "big", "nope")
    assert result.exit_code == 5
    *lines, last = result.stderr.splitlines()
    assert last == "Error: 1 of 2 pulls failed"
    objects = [json.loads(line) for line in lines]
    assert objects[0] == {"model": "big", "number": 1}
    assert {"model": "nope", "error": "pull model manifest: file does not exist"} in objects
    assert objects[-1] == {"summary": {"updated": ["big"], "unchanged": [], "failed": ["nope"]}}


def test_pull_several_with_different_failures_exits_1(registry: OllamaTestServer) -> None:
    registry.add_fault("/api/pull", drop_after_lines=0, times=1)
    result = on(registry, "pull", "-q", "--retries", "0", "big", "nope")
    assert result.exit_code == 1
    assert "summary: 0 updated, 0 unchanged, 2 failed (big, nope)" in result.stderr


def test_pull_all_updates_every_model_and_says_what_changed(registry: OllamaTestServer) -> None:
    registry.add_registry_model("small:latest", [100, 20])
    assert run_cli("--host", registry.url, "pull", "-q", "small").exit_code == 0
    registry.add_registry_model("tiny:latest", [605_000, 60])  # a newer tiny
    result = on(registry, "pull", "--all", "--progress", "plain")
    assert result.exit_code == 5, "gemma3 and nomic-embed-text are not in the registry"
    lines = result.stderr.splitlines()
    assert "[1/4] small:latest" in lines
    summary, failed = lines[-2].split(", 2 failed ")
    assert summary == "summary: 1 updated (tiny:latest), 1 unchanged"
    assert sorted(failed.strip("()").split(", ")) == ["gemma3:12b", "nomic-embed-text:latest"]
    assert registry.models["tiny:latest"]["digest"] == registry.registry["tiny:latest"]["digest"]


def test_pull_needs_models_or_all(server: OllamaTestServer) -> None:
    assert on(server, "pull").exit_code == 2
    result = on(server, "pull", "--all", "tiny")
    assert result.exit_code == 2
    assert result.stderr == "Error: give MODEL names, --all or --outdated\n"


# -- push -----------------------------------------------------------------------------------


def test_push_shows_progress_and_prints_where_the_model_is(server: OllamaTestServer) -> None:
    result = on(server, "push", "tiny")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "https://ollama.com/tiny\n"
    lines = result.stderr.splitlines()
    assert lines[0] == "retrieving manifest"
    assert re.fullmatch(r"pushing [0-9a-f]{12}\.\.\. +\d+% .*/605 KB", lines[1])
    assert any(re.fullmatch(r"pushing [0-9a-f]{12}\.\.\. 100% 605 KB", line) for line in lines)
    assert lines[-3:] == ["pushing manifest", "success", "You can find your model at:"]
    assert "tiny:latest" in server.registry


def test_push_to_another_registry_prints_the_full_name(server: OllamaTestServer) -> None:
    run_cli("--host", server.url, "cp", "tiny", "127.0.0.1:5000/me/tiny")
    result = on(server, "push", "--insecure", "-q", "127.0.0.1:5000/me/tiny")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "127.0.0.1:5000/me/tiny:latest\n"
    assert posts(server, "/api/push")[0].json == {
        "model": "127.0.0.1:5000/me/tiny",
        "insecure": True,
    }


def test_push_refused_by_the_registry_uses_the_go_wording(server: OllamaTestServer) -> None:
    server.add_fault("/api/push", error_line="unauthorized: authentication required")
    result = on(server, "push", "tiny")
    assert result.exit_code == 4
    assert result.stderr.endswith(
        "Error: you are not authorized to push to this namespace,"
        " create the model under a namespace you own\n"
    )
    assert result.stdout == ""


def test_push_of_a_missing_model_exits_5(server: OllamaTestServer) -> None:
    result = on(server, "push", "nope")
    assert result.exit_code == 5
    assert "couldn't retrieve manifest" in result.stderr


# -- create ---------------------------------------------------------------------------------


@pytest.fixture
def gguf(tmp_path: Path) -> tuple[Path, str]:
    """A fake weights file next to a Modelfile; returns the Modelfile and the blob digest."""
    data = b"GGUF" + bytes(range(256)) * 40
    folder = tmp_path / "build"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(data)
    modelfile = folder / "Modelfile"
    modelfile.write_text(
        "# a test model\nFROM ./model.gguf\nPARAMETER temperature 0.7\nPARAMETER stop <|end|>\n"
        'SYSTEM """You are\nterse."""\n'
    )
    return modelfile, "sha256:" + hashlib.sha256(data).hexdigest()


def blob_requests(server: OllamaTestServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests_to("/api/blobs/*")]


def test_create_uploads_a_missing_blob_once(server: OllamaTestServer, gguf: tuple) -> None:
    modelfile, digest = gguf
    modelfile.write_text(modelfile.read_text() + "ADAPTER ./model.gguf\n")
    result = on(server, "create", "mine", "-f", str(modelfile))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert blob_requests(server) == [f"HEAD /api/blobs/{digest}", f"POST /api/blobs/{digest}"]
    assert digest in server.blobs
    body = posts(server, "/api/create")[0].json
    assert body == {
        "model": "mine",
        "files": {"model.gguf": digest},
        "adapters": {"model.gguf": digest},
        "system": "You are\nterse.",
        "parameters": {"temperature": 0.7, "stop": ["<|end|>"]},
    }
    lines = result.stderr.splitlines()
    assert lines[0] == "gathering model components"
    assert "hashing model.gguf 100%  10 KB" in lines
    assert "copying file model.gguf 100%  10 KB" in lines
    assert lines.index("parsing GGUF") < lines.index("writing manifest") < lines.index("success")
    assert server.models["mine:latest"]["system"] == "You are\nterse."


def test_create_does_not_upload_a_blob_the_server_has(
    server: OllamaTestServer, gguf: tuple
) -> None:
    modelfile, digest = gguf
    server.blobs[digest] = (modelfile.parent / "model.gguf").read_bytes()
    result = on(server, "create", "mine", "-f", str(modelfile), "--progress", "none")
    assert (result.exit_code, result.stderr) == (0, "")
    assert blob_requests(server) == [f"HEAD /api/blobs/{digest}"]
    assert "mine:latest" in server.models


def test_create_dry_run_prints_the_request_and_sends_nothing(
    server: OllamaTestServer, gguf: tuple
) -> None:
    modelfile, digest = gguf
    result = on(server, "create", "mine", "-f", str(modelfile), "--dry-run", "-q", "q4_K_M")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "model": "mine",
        "quantize": "q4_K_M",
        "files": {"model.gguf": digest},
        "system": "You are\nterse.",
        "parameters": {"temperature": 0.7, "stop": ["<|end|>"]},
    }
    assert server.requests == []


def test_create_from_a_model_name(server: OllamaTestServer, tmp_path: Path) -> None:
    (tmp_path / "Modelfile").write_text("FROM tiny\nPARAMETER num_ctx 4096\nLICENSE MIT\n")
    result = on(server, "create", "tiny-4k", "-f", str(tmp_path / "Modelfile"))
    assert result.exit_code == 0, result.stderr
    assert posts(server, "/api/create")[0].json == {
        "model": "tiny-4k",
        "from": "tiny",
        "license": ["MIT"],
        "parameters": {"num_ctx": 4096},
    }
    assert result.stderr.endswith("writing manifest\nsuccess\n")
    assert blob_requests(server) == []


def test_create_reads_modelfile_in_the_current_folder(
    server: OllamaTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Modelfile").write_text("FROM tiny\n")
    monkeypatch.chdir(tmp_path)
    assert on(server, "create", "copy", "--quiet").exit_code == 0
    assert "copy:latest" in server.models


def test_create_with_a_missing_modelfile_is_a_usage_error(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    missing = tmp_path / "nope" / "Modelfile"
    result = on(server, "create", "mine", "-f", str(missing))
    assert result.exit_code == 2
    assert result.stderr == f"Error: Modelfile not found: {missing}\n"
    assert server.requests == []


def test_create_reports_a_modelfile_error_with_its_position(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    path = tmp_path / "Modelfile"
    path.write_text("FROM tiny\nPARAMETER num_ctx lots\n")
    result = on(server, "create", "mine", "-f", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}:2:19: invalid int value 'lots' for num_ctx\n"


def test_create_against_an_old_server_says_to_update_it(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    (tmp_path / "Modelfile").write_text("FROM tiny\n")
    server.add_fault("/api/create", status=400, body='{"error":"path or Modelfile are required"}')
    result = on(server, "create", "mine", "-f", str(tmp_path / "Modelfile"))
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error: the ollama server must be updated to use `ollama create` with this client\n"
    )


def test_create_from_a_missing_base_model_exits_5(server: OllamaTestServer, tmp_path: Path) -> None:
    (tmp_path / "Modelfile").write_text("FROM nope\n")
    result = on(server, "create", "mine", "-f", str(tmp_path / "Modelfile"))
    assert result.exit_code == 5
    assert result.stderr.endswith("Error: pull model manifest: file does not exist\n")
    assert "mine:latest" not in server.models


def test_create_upload_refused_as_too_large_says_why(server: OllamaTestServer, gguf: tuple) -> None:
    modelfile, _ = gguf
    server.add_fault(
        "/api/blobs/*", method="POST", status=413, body="<html>413 Request Entity Too Large</html>"
    )
    result = on(server, "create", "mine", "-f", str(modelfile), "--quiet")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the server refused the upload of model.gguf as too large (HTTP 413)"
        " (a proxy in front of the server limits the request body size)\n"
    )
    assert posts(server, "/api/create") == []
