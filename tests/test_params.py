"""Request controls: -p typing, --keepalive, --format, --think and images, as run/chat see them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ollamactl.errors import UsageError
from ollamactl.params import (
    MAX_MEDIA_BYTES,
    extract_media,
    format_param,
    media_kind,
    parse_format,
    parse_keep_alive,
    parse_options,
    parse_think,
    read_media,
)
from tests.fake_ollama import OllamaTestServer
from tests.helpers import PNG, run_cli

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 40
WAV = b"RIFF\x10\x00\x00\x00WAVEfmt " + b"\x00" * 40


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("num_ctx", "8192", 8192),
        ("seed", "-1", -1),
        ("main_gpu", "+1", 1),
        ("draft_num_predict", "4", 4),
        ("temperature", "0", 0.0),
        ("top_p", ".9", 0.9),
        ("repeat_penalty", "1.1e0", 1.1),
        ("use_mmap", "false", False),
        ("use_mmap", "T", True),
    ],
)
def test_parameters_are_typed_as_go_formatparams(key: str, text: str, value: object) -> None:
    typed = format_param(key, [text])
    assert typed == value and type(typed) is type(value)


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("seed", "1.5", "invalid int value [1.5]"),
        ("num_ctx", "8k", "invalid int value [8k]"),
        ("temperature", "hot", "invalid float value [hot]"),
        ("temperature", "inf", "invalid float value [inf]"),
        ("use_mmap", "yes", "invalid bool value [yes]"),
    ],
)
def test_bad_values_use_the_go_wording(key: str, text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        format_param(key, [text])
    assert caught.value.message == message


def test_stop_collects_every_value_and_later_scalars_win() -> None:
    options = parse_options(["stop=</s>", "seed=1", "stop=User:", "seed=7", "temperature=0.2"])
    assert options == {"stop": ["</s>", "User:"], "seed": 7, "temperature": 0.2}
    assert format_param("stop", ["a", "b"]) == ["a", "b"]


def test_unknown_parameter_names_it_and_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        parse_options(["temprature=0.5"])
    assert caught.value.message == "unknown parameter 'temprature'"
    assert "temperature" in str(caught.value) and "num_ctx" in str(caught.value)


def test_an_option_without_equals_is_refused() -> None:
    with pytest.raises(UsageError, match="expected key=value"):
        parse_options(["temperature"])


@pytest.mark.parametrize(
    ("text", "value"),
    [("5m", "5m"), ("1h30m", "1h30m"), ("300", 300), ("-1", -1), ("0", 0), ("-1m", "-1m")],
)
def test_keepalive_takes_durations_and_seconds(text: str, value: object) -> None:
    assert parse_keep_alive(text) == value


@pytest.mark.parametrize("text", ["5x", "m5", "", "forever", "1h 30m"])
def test_keepalive_rejects_anything_else(text: str) -> None:
    with pytest.raises(UsageError, match="invalid keep-alive"):
        parse_keep_alive(text)


def test_format_reads_json_a_schema_file_or_an_inline_schema(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    assert parse_format("json") == "json"
    assert parse_format(f"@{path}") == schema
    assert parse_format(json.dumps(schema)) == schema


def test_format_errors_are_clear(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "object",}')
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(UsageError, match=r"cannot read the JSON schema file '.*nope\.json'"):
        parse_format(f"@{tmp_path / 'nope.json'}")
    with pytest.raises(UsageError, match=r"broken\.json' is not valid JSON: .+: line 1 column \d+"):
        parse_format(f"@{broken}")
    with pytest.raises(UsageError, match="must be a JSON object"):
        parse_format(f"@{listing}")
    with pytest.raises(UsageError, match="invalid format 'xml'"):
        parse_format("xml")


def test_think_values_follow_the_go_cli() -> None:
    assert [parse_think(v) for v in (None, "", "true", "false", "low", "max")] == [
        None,
        True,
        True,
        False,
        "low",
        "max",
    ]
    with pytest.raises(UsageError) as caught:
        parse_think("deep")
    assert str(caught.value) == (
        'invalid value for --think: "deep" (must be true, false, high, medium, low, or max)'
    )


def test_media_types_are_sniffed_from_their_first_bytes() -> None:
    assert [media_kind(b) for b in (PNG, JPEG, WEBP, WAV)] == ["image"] * 3 + ["audio"]
    assert media_kind(b"GIF89a....") is None
    assert media_kind(b"%PDF-1.7") is None


def test_read_media_returns_base64_and_refuses_bad_files(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(PNG)
    assert read_media(str(image)) == ("image", base64.b64encode(PNG).decode())
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(UsageError, match=r"invalid file type for '.*notes\.png'"):
        read_media(str(text))
    with pytest.raises(UsageError, match=r"cannot read image '.*missing\.png': No such file"):
        read_media(str(tmp_path / "missing.png"))
    huge = tmp_path / "huge.png"
    with huge.open("wb") as f:
        f.write(PNG)
        f.truncate(MAX_MEDIA_BYTES + 1)
    with pytest.raises(UsageError, match=r"file size exceeds maximum limit \(100MB\)"):
        read_media(str(huge))


def test_paths_in_a_prompt_are_found_unescaped_and_removed(tmp_path: Path) -> None:
    folder = tmp_path / "my pics"
    folder.mkdir()
    (folder / "cat (1).png").write_bytes(PNG)
    (folder / "b.wav").write_bytes(WAV)
    escaped = (
        str(folder / "cat (1).png").replace(" ", "\\ ").replace("(", "\\(").replace(")", "\\)")
    )
    prompt = f"compare {escaped} with '{folder / 'b.wav'}' and /no/such/file.jpg"
    text, found = extract_media(prompt)
    assert text == "compare  with  and /no/such/file.jpg"
    assert [(Path(p).name, kind) for p, kind, _ in found] == [
        ("cat (1).png", "image"),
        ("b.wav", "audio"),
    ]


def test_bad_option_value_exits_2_before_any_request(server: OllamaTestServer) -> None:
    result = run_cli("--host", server.url, "run", "tiny", "hi", "-p", "num_ctx=big")
    assert result.exit_code == 2
    assert result.stderr == "Error: -p num_ctx=big: invalid int value [big]\n"
    assert server.requests == []


def test_think_flag_without_value_does_not_swallow_the_prompt(server: OllamaTestServer) -> None:
    server.add_model("qwen3", capabilities=["completion", "thinking"])
    server.version = "0.11.0"  # the first to take levels
    result = run_cli("--host", server.url, "run", "qwen3", "--think", "why?")
    assert result.exit_code == 0, result.stderr
    sent = server.requests[-1].json
    assert sent["think"] is True and sent["prompt"] == "why?"
    result = run_cli("--host", server.url, "run", "qwen3", "--think", "low", "why?")
    assert server.requests[-1].json["think"] == "low"
