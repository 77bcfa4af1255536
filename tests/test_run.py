"""run: one-shot generation end to end against the test server (stdout is not a terminal)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest

from ollamactl.answer import WordWrapper
from tests.fake_ollama import OllamaTestServer
from tests.helpers import ANSI, PNG, on, run_cli


def sent(server: OllamaTestServer, path: str = "/api/generate") -> dict:
    return server.last_request(path).json


def test_answer_streams_to_stdout_as_the_go_cli_prints_it(server: OllamaTestServer) -> None:
    result = on(server, "run", "tiny", "Why", "is", "the", "sky", "blue?")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello, world!\n\n"
    assert result.stderr == ""
    assert [r.path for r in server.requests] == ["/api/show", "/api/generate"]
    assert sent(server) == {"model": "tiny", "prompt": "Why is the sky blue?"}


def test_piped_stdin_is_put_in_front_of_the_prompt(server: OllamaTestServer) -> None:
    result = on(server, "run", "tiny", "Summarise this.", input="a long text\n")
    assert result.exit_code == 0, result.stderr
    assert sent(server)["prompt"] == "a long text\n Summarise this."


def test_empty_prompt_only_loads_the_model(server: OllamaTestServer) -> None:
    result = on(server, "run", "tiny", "", "--keepalive", "-1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert sent(server) == {"model": "tiny", "prompt": "", "keep_alive": -1}
    assert "tiny:latest" in server.running


def test_request_controls_reach_the_request(server: OllamaTestServer, tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    result = on(
        server,
        "run",
        "tiny",
        "hi",
        "--system",
        "Be brief.",
        "-p",
        "temperature=0",
        "-p",
        "seed=42",
        "-p",
        "stop=###",
        "-p",
        "stop=END",
        "--format",
        f"@{tmp_path / 'schema.json'}",
        "--keepalive",
        "1h30m",
        "--think=false",
    )
    assert result.exit_code == 0, result.stderr
    assert sent(server) == {
        "model": "tiny",
        "prompt": "hi",
        "system": "Be brief.",
        "format": schema,
        "options": {"temperature": 0.0, "seed": 42, "stop": ["###", "END"]},
        "keep_alive": "1h30m",
        "think": False,
    }
    assert json.loads(result.stdout) == {"response": "Hello, world!"}


def test_format_json_and_seconds_keepalive(server: OllamaTestServer) -> None:
    result = on(server, "run", "tiny", "hi", "--format", "json", "--keepalive", "300")
    assert result.exit_code == 0, result.stderr
    assert sent(server)["format"] == "json" and sent(server)["keep_alive"] == 300


def test_no_stream_asks_for_one_object_and_prints_it(server: OllamaTestServer) -> None:
    result = on(server, "run", "tiny", "hi", "--no-stream")
    assert result.exit_code == 0, result.stderr
    assert sent(server)["stream"] is False
    assert result.stdout == "Hello, world!\n\n"


def test_json_prints_the_final_object_with_the_whole_answer(server: OllamaTestServer) -> None:
    result = on(server, "run", "tiny", "hi", "--json")
    assert result.exit_code == 0, result.stderr
    final = json.loads(result.stdout)
    assert final["response"] == "Hello, world!"
    assert final["done"] is True and final["eval_count"] == 4
    assert "stream" not in sent(server)


def test_verbose_prints_the_go_stats_block_on_stderr(server: OllamaTestServer) -> None:
    result = on(server, "run", "tiny", "hi", "--verbose")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello, world!\n\n"
    lines = result.stderr.splitlines()
    labels = [line.split(":")[0] for line in lines]
    assert labels == [
        "total duration",
        "load duration",
        "prompt eval count",
        "prompt eval duration",
        "prompt eval rate",
        "eval count",
        "eval duration",
        "eval rate",
    ]
    assert lines[1] == "load duration:        262ms"  # a cold load on the test server
    assert lines[2:5] == [
        "prompt eval count:    11 token(s)",
        "prompt eval duration: 940µs",
        "prompt eval rate:     11702.13 tokens/s",
    ]
    assert re.fullmatch(r"eval duration:        \d+(\.\d+)?(µs|ms|ns)", lines[6])
    assert re.fullmatch(r"eval rate:            \d+\.\d\d tokens/s", lines[7])


def test_thinking_goes_to_stderr_plain_off_a_terminal(server: OllamaTestServer) -> None:
    server.add_model("qwen3", capabilities=["completion", "thinking"])
    server.generation["thinking"] = ["Let me see", "..."]
    result = on(server, "run", "qwen3", "hi")
    assert result.exit_code == 0, result.stderr
    assert sent(server)["think"] is True, "inferred from the capability, as Go"
    assert result.stdout == "Hello, world!\n\n"
    assert result.stderr == "Thinking...\nLet me see...\n...done thinking.\n\n"
    assert not ANSI.search(result.stderr)


def test_hidethinking_still_thinks_but_shows_nothing(server: OllamaTestServer) -> None:
    server.add_model("qwen3", capabilities=["completion", "thinking"])
    server.version = "0.11.0"  # the first to take levels
    server.generation["thinking"] = ["hmm"]
    result = on(server, "run", "qwen3", "hi", "--think=high", "--hidethinking", "--json")
    assert result.exit_code == 0, result.stderr
    assert sent(server)["think"] == "high"
    assert result.stderr == ""
    assert json.loads(result.stdout)["thinking"] == "hmm"


def test_images_from_flags_and_from_the_prompt(server: OllamaTestServer, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.png").write_bytes(PNG)
    encoded = base64.b64encode(PNG).decode()
    result = on(
        server,
        "run",
        "gemma3:12b",
        f"what differs in {tmp_path / 'b.png'}?",
        "-i",
        str(tmp_path / "a.png"),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"Added image '{tmp_path / 'b.png'}'\n"
    assert sent(server)["images"] == [encoded, encoded]
    assert sent(server)["prompt"] == "what differs in ?"


def test_prompt_paths_stay_text_for_a_model_without_vision(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    (tmp_path / "b.png").write_bytes(PNG)
    result = on(server, "run", "tiny", f"describe {tmp_path / 'b.png'}")
    assert result.exit_code == 0, result.stderr
    assert "images" not in sent(server) and sent(server)["prompt"].endswith("b.png")


def test_unreadable_image_exits_2_before_any_request(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    result = on(server, "run", "gemma3:12b", "hi", "-i", str(tmp_path / "missing.jpg"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: cannot read image '{tmp_path / 'missing.jpg'}': No such file or directory\n"
    )
    assert server.requests == []


def test_invalid_schema_file_exits_2(server: OllamaTestServer, tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text("{not json")
    result = on(server, "run", "tiny", "hi", "--format", f"@{tmp_path / 'schema.json'}")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: the JSON schema file '{tmp_path / 'schema.json'}'")
    assert "is not valid JSON" in result.stderr


def test_unknown_parameter_exits_2(server: OllamaTestServer) -> None:
    result = on(server, "run", "tiny", "hi", "-p", "temprature=1")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown parameter 'temprature' (known: ")


@pytest.mark.parametrize("command", ["run", "chat"])
def test_o_is_refused_with_a_hint_naming_p(server: OllamaTestServer, command: str) -> None:
    result = on(server, command, "tiny", "hi", "-o", "temperature=0")
    assert result.exit_code == 2
    assert (
        result.stderr == "Error: -o is not a model parameter: use -p KEY=VALUE (or --parameter)\n"
    )
    assert server.requests == []


def test_option_is_a_hidden_alias_of_parameter(server: OllamaTestServer) -> None:
    result = on(server, "run", "tiny", "hi", "--option", "temprature=1")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown parameter 'temprature'")
    assert "--option" not in on(server, "run", "--help").stdout


def test_missing_model_is_pulled_then_run(server: OllamaTestServer) -> None:
    server.add_registry_model("fresh:latest", [2000, 100])
    result = on(server, "run", "fresh", "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello, world!\n\n"
    assert [r.path for r in server.requests] == [
        "/api/show",
        "/api/pull",
        "/api/show",
        "/api/generate",
    ]
    assert "pulling manifest" in result.stderr and "success" in result.stderr
    assert "fresh:latest" in server.models


def test_model_in_neither_place_exits_5(server: OllamaTestServer) -> None:
    result = on(server, "run", "nowhere", "hi")
    assert result.exit_code == 5
    assert result.stderr.endswith("Error: pull model manifest: file does not exist\n")
    assert "/api/generate" not in [r.path for r in server.requests]


def test_error_in_the_stream_exits_1_after_the_partial_answer(server: OllamaTestServer) -> None:
    server.add_fault("/api/generate", error_line="an error was encountered while running the model")
    result = on(server, "run", "tiny", "hi")
    assert result.exit_code == 1
    assert result.stdout == "Hello"
    assert result.stderr == "Error: an error was encountered while running the model\n"


def test_a_long_answer_off_a_terminal_has_no_escape_codes(server: OllamaTestServer) -> None:
    server.generation["token_count"] = 500
    result = on(server, "run", "tiny", "hi")
    assert result.exit_code == 0
    assert result.stdout == "".join(f"tok{i} " for i in range(500)) + "\n\n"
    assert not ANSI.search(result.stdout + result.stderr)


def screen(written: str) -> list[str]:
    """What a terminal shows for text with cursor-left and clear-to-end-of-line escapes."""
    lines: list[list[str]] = [[]]
    column = 0
    for match in re.finditer(r"\x1b\[(\d+)D|\x1b\[K|(.)", written, re.S):
        char, line = match.group(2), lines[-1]
        if match.group(1):
            column -= int(match.group(1))
        elif char is None:
            del line[column:]
        elif char == "\n":
            lines.append([])
            column = 0
        else:
            line[column : column + 1] = [char]
            column += 1
    return ["".join(line) for line in lines]


def test_word_wrap_moves_a_word_that_crosses_the_margin() -> None:
    written = io.StringIO()
    wrapper = WordWrapper(written, width=lambda: 20)  # text stops at column 15
    for token in ["aaa bbbbbb cc", "cccc dd", "dd eeeeeeeeeee", "eeeeeeeeeeeee"]:
        wrapper.write(token)
    assert "\x1b[4D\x1b[K\ncccc" in written.getvalue(), "the word was erased and moved down"
    assert screen(written.getvalue()) == [
        "aaa bbbbbb ",
        "cccccc dddd ",
        "eeeeeeeeeeeeeee",
        "eeeeeeeee",
    ], "a word longer than the line is broken, not moved"


def test_embedding_model_prints_the_first_embedding_compactly(server: OllamaTestServer) -> None:
    result = on(server, "run", "nomic-embed-text", "hello", "world")
    assert result.exit_code == 0, result.stderr
    vector = json.loads(result.stdout)
    assert len(vector) == 8 and " " not in result.stdout.strip()
    assert sent(server, "/api/embed") == {"model": "nomic-embed-text", "input": "hello world"}


def test_embedding_model_without_text_is_a_usage_error(server: OllamaTestServer) -> None:
    result = on(server, "run", "nomic-embed-text")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: embedding models require input text. Usage: ollamactl run nomic-embed-text"
        ' "your text here"\n'
    )


def test_a_profile_gives_the_model_options_and_keepalive(
    server: OllamaTestServer, isolated_env: Path
) -> None:
    (isolated_env / "config").mkdir()
    (isolated_env / "config" / "config.toml").write_text(
        f'[profiles.lab]\nhost = "{server.url}"\nmodel = "tiny"\nkeep_alive = "1h"\n'
        "[profiles.lab.options]\nnum_ctx = 16384\ntemperature = 0.2\n"
    )
    result = run_cli("--profile", "lab", "run", "-p", "temperature=0", input="piped prompt")
    assert result.exit_code == 0, result.stderr
    assert sent(server) == {
        "model": "tiny",
        "prompt": "piped prompt",
        "options": {"num_ctx": 16384, "temperature": 0.0},
        "keep_alive": "1h",
    }
    assert run_cli("run", input="hi").stderr == (
        "Error: missing MODEL (give one, or set `model` in the profile)\n"
    )


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_has_examples(flag: str) -> None:
    result = run_cli("run", flag)
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and "--keepalive DURATION" in result.stdout
