"""list, ps, show, cp, rm, stop, version, wait, exists: end to end against the test server."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from ollamactl import __version__
from tests.fake_ollama import OllamaTestServer
from tests.helpers import ANSI, dead_url, on, run_cli


def test_list_prints_the_go_table(server: OllamaTestServer) -> None:
    result = on(server, "list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert lines[0].startswith("NAME" + " " * (len("nomic-embed-text:latest") - 4 + 4) + "ID")
    row = next(line for line in lines if line.startswith("gemma3:12b "))
    assert "8.1 GB" in row
    assert re.search(r"\b(\d+ \w+|About an? \w+|Less than a second) ago\b", row)
    assert {line.split()[0] for line in lines[1:]} == {
        "tiny:latest",
        "gemma3:12b",
        "nomic-embed-text:latest",
    }
    assert result.stderr == "" and not ANSI.search(result.stdout)


def test_ls_prefix_filter_is_case_insensitive_and_q_prints_names(server: OllamaTestServer) -> None:
    result = on(server, "ls", "GEM", "-q")
    assert result.exit_code == 0
    assert result.stdout == "gemma3:12b\n"


def test_list_json_is_the_api_object(server: OllamaTestServer) -> None:
    result = on(server, "list", "--json")
    data = json.loads(result.stdout)
    assert {m["name"] for m in data["models"]} == set(server.models)
    assert all("digest" in m and "details" in m for m in data["models"])


def test_list_through_prefix_and_token(gateway_server: OllamaTestServer) -> None:
    result = run_cli("--host", gateway_server.url, "--api-key", "canary-token-123", "list", "-q")
    assert result.exit_code == 0, result.stderr
    assert "tiny:latest" in result.stdout.split()
    assert gateway_server.requests[-1].headers.get("Authorization") == "Bearer canary-token-123"


def test_pasted_api_suffix_is_tolerated(gateway_server: OllamaTestServer) -> None:
    result = run_cli(
        "--host",
        gateway_server.url + "/api/chat",
        "list",
        "-q",
        env={"OLLAMA_API_KEY": "canary-token-123"},
    )
    assert result.exit_code == 0, result.stderr


def test_wrong_token_is_exit_4_with_a_hint_and_no_secret(gateway_server: OllamaTestServer) -> None:
    result = run_cli("--host", gateway_server.url, "--api-key", "wrong-token-xyz", "list")
    assert result.exit_code == 4
    assert "HTTP 401" in result.stderr and "the API key from --api-key" in result.stderr
    assert "wrong-token-xyz" not in result.stderr + result.stdout


def test_missing_token_says_none_was_sent(gateway_server: OllamaTestServer) -> None:
    result = run_cli("--host", gateway_server.url, "ps")
    assert result.exit_code == 4
    assert "no credentials were sent" in result.stderr


def test_ps_columns_and_until(server: OllamaTestServer) -> None:
    expires = datetime.now(timezone.utc) + timedelta(minutes=4, seconds=30)
    server.running["tiny:latest"] = {
        **server.models["tiny:latest"],
        "size": 23_695_616,
        "size_vram": 0,
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        "context_length": 4096,
    }
    result = on(server, "ps")
    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    assert re.match(r"tiny:latest\s+\w{12}\s+23 MB\s+100% CPU\s+4096\s+4 minutes from now\s*$", row)
    assert on(server, "ps", "-q").stdout == "tiny:latest\n"
    assert json.loads(on(server, "ps", "--json").stdout)["models"][0]["size_vram"] == 0


def test_show_plain_layout(server: OllamaTestServer) -> None:
    result = on(server, "show", "gemma3:12b")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("  Model\n    architecture    ")
    assert "  Capabilities\n    completion    \n    vision        \n" in result.stdout
    assert re.search(r"\n    quantization    +Q4_K_M    \n", result.stdout)


SEEDED_VIEWS = {
    "system": "You are terse.",
    "template": "{{ .System }} {{ .Prompt }}",
    "license": "MIT License\nCopyright the ollamactl tests",
}


@pytest.mark.parametrize("view", ["modelfile", "parameters", "template", "system", "license"])
def test_show_views_print_the_raw_field(server: OllamaTestServer, view: str) -> None:
    record = server.add_model(
        "documented:latest", parameters="temperature 0.5\nstop <END>", **SEEDED_VIEWS
    )
    stored = server._show_body(record, verbose=False)  # what the server holds, not the CLI
    expected = SEEDED_VIEWS.get(view, stored[view])
    assert expected and expected == stored[view]
    result = on(server, "show", "documented", f"--{view}")
    assert result.exit_code == 0, result.stderr
    newline = "" if view in ("system", "template") else "\n"
    assert result.stdout == expected + newline


def test_show_rejects_two_views(server: OllamaTestServer) -> None:
    result = on(server, "show", "tiny", "--license", "--system")
    assert result.exit_code == 2
    assert "only one of '--license'" in result.stderr


def test_show_verbose_adds_metadata(server: OllamaTestServer) -> None:
    result = on(server, "show", "-v", "tiny")
    assert "  Metadata\n" in result.stdout
    assert server.requests[-1].json == {"model": "tiny", "verbose": True}


def test_unknown_model_is_exit_5_with_the_server_wording(server: OllamaTestServer) -> None:
    result = on(server, "show", "nope")
    assert result.exit_code == 5
    assert result.stderr == "Error: model 'nope' not found\n"
    assert result.stdout == ""


def test_cp_then_rm(server: OllamaTestServer) -> None:
    result = on(server, "cp", "tiny", "tiny-copy:v1")
    assert result.stdout == "copied 'tiny' to 'tiny-copy:v1'\n"
    assert "tiny-copy:v1" in server.models
    result = on(server, "rm", "tiny-copy:v1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "deleted 'tiny-copy:v1'\n"
    assert "tiny-copy:v1" not in server.models
    paths = [(r.method, r.path) for r in server.requests[-2:]]
    assert paths == [("POST", "/api/generate"), ("DELETE", "/api/delete")]


def test_rm_glob_dry_run_and_real(server: OllamaTestServer) -> None:
    dry = on(server, "rm", "*:latest", "--dry-run")
    assert sorted(dry.stdout.splitlines()) == [
        "would delete 'nomic-embed-text:latest'",
        "would delete 'tiny:latest'",
    ]
    assert len(server.models) == 3
    result = on(server, "rm", "*:latest")
    assert result.exit_code == 0
    assert set(server.models) == {"gemma3:12b"}


def test_rm_unmatched_glob_and_unknown_model_are_exit_5(server: OllamaTestServer) -> None:
    assert on(server, "rm", "zzz*").exit_code == 5
    result = on(server, "rm", "nope")
    assert result.exit_code == 5
    assert result.stderr == "Error: model 'nope' not found\n"


def test_stop_one_and_all(server: OllamaTestServer) -> None:
    for name in ("tiny:latest", "gemma3:12b"):
        server.running[name] = {
            **server.models[name],
            "expires_at": "2030-01-01T00:00:00Z",
            "size_vram": 0,
        }
    assert on(server, "stop", "tiny").exit_code == 0
    assert set(server.running) == {"gemma3:12b"}
    result = on(server, "stop", "--all")
    assert result.exit_code == 0 and "stopped 'gemma3:12b'" in result.stderr
    assert server.running == {}


def test_stop_all_goes_on_after_a_failure_and_exits_non_zero(server: OllamaTestServer) -> None:
    for name in ("tiny:latest", "gemma3:12b"):
        server.running[name] = {
            **server.models[name],
            "expires_at": "2030-01-01T00:00:00Z",
            "size_vram": 0,
        }
    server.add_fault("/api/generate", status=500, body='{"error":"unload failed"}', times=1)
    result = on(server, "stop", "--all")
    assert result.exit_code == 1
    assert "Warning: unable to stop model" in result.stderr and "unload failed" in result.stderr
    assert len(server.running) == 1 and "stopped '" in result.stderr


def test_stop_unknown_model(server: OllamaTestServer) -> None:
    result = on(server, "stop", "nope")
    assert result.exit_code == 5
    assert result.stderr == 'Error: couldn\'t find model "nope" to stop\n'


def test_version_plain_and_json(server: OllamaTestServer) -> None:
    result = on(server, "version")
    assert result.stdout == f"ollama version is 0.9.3\nollamactl version is {__version__}\n"
    data = json.loads(on(server, "version", "--json").stdout)
    assert data == {"client": __version__, "server": "0.9.3", "host": server.url}


def test_exists(server: OllamaTestServer) -> None:
    assert on(server, "exists", "tiny").exit_code == 0
    missing = on(server, "exists", "nope")
    assert (missing.exit_code, missing.stdout, missing.stderr) == (5, "", "")


def test_wait_succeeds_at_once_and_times_out_on_a_dead_port(server: OllamaTestServer) -> None:
    ok = on(server, "wait", "--timeout", "5")
    assert ok.exit_code == 0 and "server ready: ollama 0.9.3" in ok.stderr
    dead = run_cli(
        "--host", dead_url(), "--retries", "0", "wait", "--timeout", "0.3", "--interval", "0.1"
    )
    assert dead.exit_code == 3
    assert "was not ready after 0.3s" in dead.stderr


def test_debug_logs_requests_without_secrets(gateway_server: OllamaTestServer) -> None:
    result = run_cli(
        "--host", gateway_server.url, "--api-key", "canary-token-123", "--debug", "list", "-q"
    )
    assert "debug: GET " + gateway_server.url + "/api/tags" in result.stderr
    assert "canary-token-123" not in result.stderr
