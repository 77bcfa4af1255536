"""The client-side Modelfile parser: syntax, typed parameters, local files, error positions."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ollamactl.client import create_request
from ollamactl.errors import UsageError
from ollamactl.modelfile import parse, plan_create, read_modelfile
from tests.helpers import FUZZ


def fields(text: str, base_dir: Path = Path("/nonexistent")) -> dict:
    return plan_create(parse(text), base_dir).fields


def error(text: str) -> str:
    with pytest.raises(UsageError) as caught:
        plan_create(parse(text), Path("/nonexistent"))
    return str(caught.value)


# -- syntax ---------------------------------------------------------------------------------


def test_commands_are_case_insensitive_and_comments_are_skipped() -> None:
    text = "# comment\n  from llama3.2\n\nSystem be brief  \n\tpArAmEtEr top_k 40 # not a comment\n"
    commands = parse(text)
    assert [(c.name, c.key, c.value, c.line) for c in commands] == [
        ("from", "", "llama3.2", 2),
        ("system", "", "be brief", 4),
        ("parameter", "top_k", "40 # not a comment", 5),
    ]


def test_quoted_values_keep_spaces_and_span_lines() -> None:
    text = (
        'FROM x\nSYSTEM "  padded  "\nTEMPLATE """{{ .System }}\n  {{ .Prompt }}\n"""\n'
        'LICENSE "two\nlines"\nLICENSE ""\n'
    )
    assert fields(text) == {
        "from": "x",
        "system": "  padded  ",
        "template": "{{ .System }}\n  {{ .Prompt }}\n",
        "license": ["two\nlines", ""],
    }


def test_a_triple_quoted_value_may_contain_quotes() -> None:
    assert fields('FROM x\nSYSTEM """say "hi" and ""bye"" """')["system"] == (
        'say "hi" and ""bye"" '
    )


def test_crlf_line_ends_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "Modelfile"
    path.write_bytes(b'\xef\xbb\xbfFROM x\r\nSYSTEM """a\r\nb"""\r\nPARAMETER seed 1\r\n')
    plan = read_modelfile(path)  # a value over several lines keeps its CRLF, as with the Go CLI
    assert plan.fields == {"from": "x", "system": "a\r\nb", "parameters": {"seed": 1}}


def test_utf16_modelfile_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "Modelfile"
    path.write_bytes("FROM x\nSYSTEM héllo\n".encode("utf-16"))
    assert read_modelfile(path).fields == {"from": "x", "system": "héllo"}


def test_messages_keep_their_roles_in_order() -> None:
    text = "FROM x\nMESSAGE user Is Toronto in Canada?\nMESSAGE assistant yes\n"
    assert fields(text)["messages"] == [
        {"role": "user", "content": "Is Toronto in Canada?"},
        {"role": "assistant", "content": "yes"},
    ]


def test_renderer_parser_and_requires() -> None:
    text = "FROM x\nRENDERER qwen3\nPARSER qwen3\nREQUIRES v0.14.0\n"
    assert fields(text) == {
        "from": "x",
        "renderer": "qwen3",
        "parser": "qwen3",
        "requires": "0.14.0",
    }


# -- parameters -----------------------------------------------------------------------------


def test_parameters_are_typed_and_stop_accumulates() -> None:
    text = (
        "FROM x\nPARAMETER num_ctx 4096\nPARAMETER temperature .5\nPARAMETER top_p 1e-1\n"
        'PARAMETER use_mmap F\nPARAMETER stop <|a|>\nPARAMETER stop "<|b|> "\n'
        "PARAMETER seed -1\nPARAMETER num_ctx 8192\n"
    )
    assert fields(text)["parameters"] == {
        "num_ctx": 8192,
        "temperature": 0.5,
        "top_p": 0.1,
        "use_mmap": False,
        "stop": ["<|a|>", "<|b|> "],
        "seed": -1,
    }


def test_deprecated_parameters_become_warnings() -> None:
    plan = plan_create(parse("FROM x\nPARAMETER mirostat 2\n"), Path("."))
    assert plan.fields == {"from": "x"}
    assert plan.warnings == ["parameter mirostat is deprecated"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PARAMETER num_ctx 4k", "Modelfile:2:19: invalid int value '4k' for num_ctx"),
        ("PARAMETER temperature hot", "Modelfile:2:23: invalid float value 'hot' for temperature"),
        ("PARAMETER temperature inf", "Modelfile:2:23: invalid float value 'inf' for temperature"),
        ("PARAMETER use_mmap yes", "Modelfile:2:20: invalid bool value 'yes' for use_mmap"),
        ("PARAMETER colour red", "Modelfile:2:18: unknown parameter 'colour'"),
        ("REQUIRES latest", "Modelfile:2:10: requires must be a valid semver (e.g. 0.14.0)"),
    ],
)
def test_bad_values_name_line_and_column(text: str, message: str) -> None:
    assert error("FROM x\n" + text).startswith(message)


# -- syntax errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FORM llama", "Modelfile:1:1: unknown command 'FORM' (one of FROM, LICENSE,"),
        ("FROM x\n   PARAM x 1", "Modelfile:2:4: unknown command 'PARAM'"),
        ("FROM:x", "Modelfile:1:1: unknown command 'FROM:x'"),
        ("FROM x\nSYSTEM", "Modelfile:2:7: SYSTEM needs a value"),
        ("FROM x\nPARAMETER", "Modelfile:2:10: PARAMETER needs a parameter name and a value"),
        ("FROM x\nPARAMETER top-k 4", "Modelfile:2:14: unexpected '-' after a parameter name"),
        ("FROM x\nMESSAGE User hi", "Modelfile:2:9: message role must be one of 'system',"),
        ("FROM x\nMESSAGE user: hi", "Modelfile:2:13: unexpected ':' after a role"),
        ('FROM x\nSYSTEM """open\nstill open', 'Modelfile:2:8: unterminated """ value'),
        ('FROM x\n\nSYSTEM "open', 'Modelfile:3:8: unterminated " value'),
        ("SYSTEM x\n# no FROM", "Modelfile: no FROM line"),
        ("", "Modelfile: no FROM line"),
    ],
)
def test_syntax_errors_name_line_and_column(text: str, message: str) -> None:
    assert error(text).startswith(message)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "Modelfile.bad"
    path.write_text("FROM x\nTEMPLATE\n")
    with pytest.raises(UsageError, match=rf"^{path}:2:9: TEMPLATE needs a value$"):
        read_modelfile(path)


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^Modelfile not found: .*/nope$"):
        read_modelfile(tmp_path / "nope")


# -- local files ----------------------------------------------------------------------------


def test_from_a_gguf_file_next_to_the_modelfile(tmp_path: Path) -> None:
    (tmp_path / "weights.gguf").write_bytes(b"GGUF")
    (tmp_path / "lora.gguf").write_bytes(b"GGUF lora")
    plan = plan_create(parse("FROM ./weights.gguf\nADAPTER lora.gguf"), tmp_path)
    assert plan.fields == {}
    assert [(f.field, f.name, f.path) for f in plan.files] == [
        ("files", "weights.gguf", tmp_path / "weights.gguf"),
        ("adapters", "lora.gguf", tmp_path / "lora.gguf"),
    ]
    body = create_request(
        "m",
        **plan.arguments(
            {tmp_path / "weights.gguf": "sha256:a", tmp_path / "lora.gguf": "sha256:b"}
        ),
    )
    assert body == {
        "model": "m",
        "files": {"weights.gguf": "sha256:a"},
        "adapters": {"lora.gguf": "sha256:b"},
    }


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    plan = plan_create(parse("FROM ~/m.gguf"), Path("/elsewhere"))
    assert [f.path for f in plan.files] == [tmp_path / "m.gguf"]


def test_a_safetensors_folder_picks_weights_by_priority_plus_configs(tmp_path: Path) -> None:
    model = tmp_path / "hf"
    (model / "sub").mkdir(parents=True)
    for name in (
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "consolidated.safetensors",
        "pytorch_model.bin",
        "config.json",
        "tokenizer.json",
        "tokenizer.model",
        "chat_template.jinja",
        "README.md",
        "sub/config.json",
    ):
        (model / name).write_text(name)
    plan = plan_create(parse("FROM hf"), tmp_path)
    assert sorted(f.name for f in plan.files) == [
        "chat_template.jinja",
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "sub/config.json",
        "tokenizer.json",
        "tokenizer.model",
    ]
    assert {f.field for f in plan.files} == {"files"}


def test_a_folder_of_gguf_files_only(tmp_path: Path) -> None:
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    (tmp_path / "notes.txt").write_text("x")
    plan = plan_create(parse("FROM ."), tmp_path)
    assert [f.name for f in plan.files] == ["a.gguf"]


def test_a_folder_without_weights_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        UsageError, match=r"^Modelfile:1:6: no Modelfile or safetensors files found"
    ):
        plan_create(parse("FROM empty"), tmp_path)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "abc").write_text("weights")
    (tmp_path / "snap").mkdir()
    os.symlink(tmp_path / "blobs" / "abc", tmp_path / "snap" / "model.safetensors")
    with pytest.raises(UsageError, match=r"insecure path: \.\./blobs/abc"):
        plan_create(parse("FROM snap"), tmp_path)


def test_a_missing_path_is_an_error_but_a_name_is_a_model(tmp_path: Path) -> None:
    assert plan_create(parse("FROM llama3.2:1b"), tmp_path).fields == {"from": "llama3.2:1b"}
    with pytest.raises(UsageError, match=r"^Modelfile:1:6: no such file: .*/missing\.gguf$"):
        plan_create(parse("FROM ./missing.gguf"), tmp_path)
    with pytest.raises(UsageError, match=r"^Modelfile:2:9: cannot read .*/lora\.gguf"):
        plan_create(parse("FROM x\nADAPTER lora.gguf"), tmp_path)


def test_draft_must_differ_from_from(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(UsageError, match=r"^Modelfile:2:7: DRAFT must not reference the same"):
        plan_create(parse("FROM m.gguf\nDRAFT m.gguf"), tmp_path)


# -- robustness -----------------------------------------------------------------------------

_COMMAND_LINES = st.tuples(
    st.sampled_from(
        [
            "FROM",
            "ADAPTER",
            "DRAFT",
            "SYSTEM",
            "LICENSE",
            "REQUIRES",
            "MESSAGE user",
            "MESSAGE tool",
            "PARAMETER num_ctx",
            "PARAMETER top_p",
            "PARAMETER use_mmap",
            "PARAMETER stop",
            "PARAMETER mirostat",
            "PARAMETER nope",
        ]
    ),
    st.text(),
).map(" ".join)


@settings(FUZZ, max_examples=300)
@given(st.lists(_COMMAND_LINES, max_size=6).map(lambda lines: "\n".join(["FROM base", *lines])))
def test_any_command_value_is_accepted_or_a_usage_error(text: str) -> None:
    with contextlib.suppress(UsageError):
        assert plan_create(parse(text), Path("/nonexistent-base")).fields.get("from")
