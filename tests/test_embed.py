"""embed: inputs from arguments, files and stdin, batching, JSON lines or the full response."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fake_ollama import OllamaTestServer
from tests.helpers import on

MODEL = "nomic-embed-text"


def embed_requests(server: OllamaTestServer) -> list[dict]:
    return server.json_bodies("/api/embed")


def vectors(stdout: str) -> list[list[float]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_one_compact_array_per_input_in_order(server: OllamaTestServer) -> None:
    result = on(server, "embed", MODEL, "The sky is blue", "Grass is green")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(" " not in line for line in lines)
    first, second = vectors(result.stdout)
    assert len(first) == len(second) == server.embedding_length and first != second
    assert embed_requests(server) == [
        {"model": MODEL, "input": ["The sky is blue", "Grass is green"]}
    ]
    alone = on(server, "embed", MODEL, "Grass is green")
    assert vectors(alone.stdout) == [second], "the same text gives the same vector"


def test_file_inputs_go_in_batches_and_skip_blank_lines(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_text("one\n\ntwo\nthree\r\n   \nfour\nfive\n")
    result = on(server, "embed", MODEL, "-f", str(tmp_path / "in.txt"), "--batch-size", "2")
    assert result.exit_code == 0, result.stderr
    assert [r["input"] for r in embed_requests(server)] == [
        ["one", "two"],
        ["three", "four"],
        ["five"],
    ]
    assert len(vectors(result.stdout)) == 5


def test_stdin_lines_are_the_inputs(server: OllamaTestServer) -> None:
    result = on(server, "embed", MODEL, input="alpha\nbeta\n")
    assert result.exit_code == 0, result.stderr
    assert embed_requests(server)[0]["input"] == ["alpha", "beta"]
    assert len(vectors(result.stdout)) == 2


def test_dimensions_truncate_keepalive_and_options_are_sent(server: OllamaTestServer) -> None:
    result = on(
        server,
        "embed",
        MODEL,
        "hello",
        "--dimensions",
        "4",
        "--no-truncate",
        "--keepalive",
        "10m",
        "-p",
        "num_ctx=512",
    )
    assert result.exit_code == 0, result.stderr
    assert embed_requests(server)[0] == {
        "model": MODEL,
        "input": ["hello"],
        "truncate": False,
        "dimensions": 4,
        "keep_alive": "10m",
        "options": {"num_ctx": 512},
    }
    assert [len(v) for v in vectors(result.stdout)] == [4]


def test_json_merges_the_batches_into_one_response(server: OllamaTestServer) -> None:
    result = on(server, "embed", MODEL, "a b", "c", "d", "--batch-size", "2", "--json")
    assert result.exit_code == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["model"] == MODEL
    assert len(response["embeddings"]) == 3
    assert response["prompt_eval_count"] == (2 + 2) + (1 + 2) + (1 + 2)
    assert len(embed_requests(server)) == 2


def test_no_input_is_a_usage_error(server: OllamaTestServer) -> None:
    result = on(server, "embed", MODEL, input="")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no input")
    assert server.requests == []


def test_arguments_and_a_file_together_are_refused(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_text("x\n")
    result = on(server, "embed", MODEL, "text", "-f", str(tmp_path / "in.txt"))
    assert result.exit_code == 2
    assert "not both" in result.stderr


def test_missing_model_exits_5(server: OllamaTestServer) -> None:
    result = on(server, "embed", "nowhere", "hi")
    assert result.exit_code == 5
    assert result.stderr == 'Error: model "nowhere" not found, try pulling it first\n'


def test_bad_option_exits_2(server: OllamaTestServer) -> None:
    result = on(server, "embed", MODEL, "hi", "-p", "num_ctx=lots")
    assert result.exit_code == 2
    assert server.requests == []
