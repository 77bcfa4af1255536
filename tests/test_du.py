"""``ollamactl du``: disk per model, largest first, memory of the loaded ones, totals."""

from __future__ import annotations

import json

from tests.fake_ollama import OllamaTestServer
from tests.helpers import on


def loaded(server: OllamaTestServer, name: str, *, on_gpu: bool = False) -> None:
    """Load a model through the API; ``on_gpu``: the fake reports all of it in GPU memory."""
    assert on(server, "run", name, "--keepalive", "5m", "hi").exit_code == 0
    if on_gpu:
        server.running[name]["size_vram"] = server.running[name]["size"]


def test_models_largest_first_with_a_total(server: OllamaTestServer) -> None:
    result = on(server, "du")
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["NAME", "ID", "SIZE", "MEMORY", "PROCESSOR"]
    assert [line[0] for line in lines[1:]] == [
        "gemma3:12b",
        "nomic-embed-text:latest",
        "tiny:latest",
        "TOTAL",
    ]
    assert lines[1][2:] == ["8.1", "GB", "-", "-"]  # the units of `list`
    assert lines[-1] == ["TOTAL", "8.4", "GB", "0", "B", "-"]
    assert "partial downloads and orphaned blobs" in result.stderr.lower()
    assert "ollamactl du --help" in result.stderr


def test_the_loaded_models_show_their_memory_and_where(server: OllamaTestServer) -> None:
    loaded(server, "tiny:latest")
    loaded(server, "gemma3:12b", on_gpu=True)
    memory = {name: model["size"] for name, model in server.running.items()}
    rows = {line.split()[0]: line for line in on(server, "du").stdout.splitlines()}
    assert rows["tiny:latest"].split()[-4:] == ["23", "MB", "100%", "CPU"]
    assert rows["gemma3:12b"].split()[-4:] == ["8.2", "GB", "100%", "GPU"]
    assert rows["nomic-embed-text:latest"].split()[-2:] == ["-", "-"]
    report = json.loads(on(server, "du", "--json").stdout)
    assert report["total"]["memory"] == sum(memory.values())
    assert report["total"]["size_vram"] == memory["gemma3:12b"]
    [tiny] = [m for m in report["models"] if m["name"] == "tiny:latest"]
    assert (tiny["memory"], tiny["size_vram"]) == (memory["tiny:latest"], 0)


def test_a_copy_counts_once_in_the_total(bare: OllamaTestServer) -> None:
    bare.add_model("tiny:latest", size=605_814)
    bare.add_model("other:latest", size=1_000)
    assert on(bare, "cp", "tiny", "tiny-copy").exit_code == 0
    report = json.loads(on(bare, "du", "--json").stdout)
    copies = {m["name"]: m["copy_of"] for m in report["models"]}
    assert copies == {"tiny:latest": None, "tiny-copy:latest": "tiny:latest", "other:latest": None}
    assert report["total"] == {"models": 3, "size": 606_814, "memory": 0, "size_vram": 0}
    assert on(bare, "du").stdout.splitlines()[-1].split() == ["TOTAL", "606", "KB", "0", "B", "-"]


def test_an_empty_server_totals_zero(bare: OllamaTestServer) -> None:
    result = on(bare, "du", "--json")
    assert json.loads(result.stdout) == {
        "models": [],
        "total": {"models": 0, "size": 0, "memory": 0, "size_vram": 0},
    }
    assert result.stderr == ""


def test_the_help_says_what_to_run_on_the_server(server: OllamaTestServer) -> None:
    text = on(server, "du", "--help").stdout
    assert "du -sh blobs" in text
    assert "OLLAMA_NOPRUNE" in text
    assert "comm -23 <(ls blobs" in text
