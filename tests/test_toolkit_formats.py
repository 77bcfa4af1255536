"""list and ps for scripts: --sort, --output-format json|tsv|csv, --no-headers, several prefixes."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from click.shell_completion import ShellComplete

from ollamactl.cli import cli
from tests.fake_ollama import OllamaTestServer
from tests.helpers import dead_url, on, run_cli

#: modified_at of the seeded models in these tests: tiny oldest, gemma newest.
MODIFIED = {
    "tiny:latest": "2026-01-02T03:04:05.123456789+01:00",
    "gemma3:12b": "2026-03-01T00:00:00Z",
    "nomic-embed-text:latest": "2026-02-01T00:00:00Z",
}


@pytest.fixture
def dated(server: OllamaTestServer) -> OllamaTestServer:
    """The seeded server with known modification times and a capitalised name."""
    server.add_model("Tiny-Upper:v1", size=1_000, modified_at="2025-12-01T00:00:00Z")
    for name, when in MODIFIED.items():
        server.models[name]["modified_at"] = when
    return server


def names(output: str) -> list[str]:
    """The first column of a table or of TSV without a header."""
    return [line.split()[0] for line in output.splitlines()]


def test_csv_carries_raw_bytes_iso_times_and_the_full_digest(dated: OllamaTestServer) -> None:
    result = on(dated, "list", "--output-format", "csv", "--sort", "name")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows] == [
        "gemma3:12b",
        "nomic-embed-text:latest",
        "Tiny-Upper:v1",  # case ignored: "-" sorts before ":"
        "tiny:latest",
    ]
    tiny = rows[3]
    assert tiny == {
        "name": "tiny:latest",
        "digest": dated.models["tiny:latest"]["digest"],
        "size": "605814",
        "modified_at": "2026-01-02T02:04:05Z",
    }
    assert list(rows[0]) == ["name", "digest", "size", "modified_at"]


def test_tsv_without_headers_is_one_line_per_model(dated: OllamaTestServer) -> None:
    result = on(dated, "list", "--output-format", "tsv", "--no-headers", "--sort", "size")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(r[0], r[2]) for r in rows] == [
        ("gemma3:12b", "8149190253"),
        ("nomic-embed-text:latest", "274302450"),
        ("tiny:latest", "605814"),
        ("Tiny-Upper:v1", "1000"),
    ]
    assert all(len(r) == 4 for r in rows)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["gemma3:12b", "nomic-embed-text:latest", "Tiny-Upper:v1", "tiny:latest"]),
        ("size", ["gemma3:12b", "tiny:latest", "nomic-embed-text:latest", "Tiny-Upper:v1"]),
        ("modified", ["gemma3:12b", "nomic-embed-text:latest", "tiny:latest", "Tiny-Upper:v1"]),
    ],
)
def test_sort_orders_the_table_names_and_json(
    dated: OllamaTestServer, sort: str, expected: list[str]
) -> None:
    dated.models["tiny:latest"]["size"] = 300_000_000  # the size order is neither of the others
    table = on(dated, "list", "--sort", sort)
    assert table.exit_code == 0, table.stderr
    assert names(table.stdout)[1:] == expected
    assert on(dated, "list", "--sort", sort, "-q").stdout.split() == expected
    data = json.loads(on(dated, "list", "--sort", sort, "--json").stdout)
    assert [m["name"] for m in data["models"]] == expected


def test_without_sort_the_server_order_is_kept(dated: OllamaTestServer) -> None:
    expected = [m["name"] for m in json.loads(on(dated, "list", "--json").stdout)["models"]]
    assert names(on(dated, "list", "--no-headers").stdout) == expected


def test_json_is_the_same_as_output_format_json(dated: OllamaTestServer) -> None:
    shorthand = on(dated, "list", "--json", "--sort", "name")
    spelled = on(dated, "list", "--output-format", "json", "--sort", "name")
    assert shorthand.exit_code == spelled.exit_code == 0
    assert shorthand.stdout == spelled.stdout
    both = on(dated, "list", "--json", "--output-format", "json", "--sort", "name")
    assert both.stdout == shorthand.stdout


def test_the_table_keeps_the_go_columns_and_drops_its_header_on_request(
    dated: OllamaTestServer,
) -> None:
    with_header = on(dated, "list").stdout.splitlines()
    without = on(dated, "list", "--no-headers").stdout.splitlines()
    assert with_header[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert without == with_header[1:]
    assert "8.1 GB" in on(dated, "list", "--output-format", "table").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--output-format", "csv"], "--json is short for --output-format json"),
        (["-q", "--output-format", "tsv"], "-q prints names only"),
        (["--json", "--no-headers"], "--no-headers applies to the table, tsv and csv"),
        (["--output-format", "yaml"], "'yaml' is not one of"),
        (["--sort", "until"], "'until' is not one of"),
    ],
)
def test_conflicting_or_unknown_formats_are_usage_errors(
    server: OllamaTestServer, args: list[str], message: str
) -> None:
    result = on(server, "list", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_several_prefixes_keep_names_that_start_with_any(dated: OllamaTestServer) -> None:
    result = on(dated, "ls", "T", "nomic", "--sort", "name", "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["nomic-embed-text:latest", "Tiny-Upper:v1", "tiny:latest"]
    assert on(dated, "ls", "TI", "-q", "--sort", "name").stdout.split() == [
        "Tiny-Upper:v1",
        "tiny:latest",
    ]  # one prefix: the Go CLI's case-insensitive prefix match
    assert on(dated, "ls", "iny", "-q").stdout == ""  # a prefix, not a substring


def load(server: OllamaTestServer, name: str, minutes: float, size: int, vram: int = 0) -> None:
    expires = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    server.running[name] = {
        **server.models[name],
        "size": size,
        "size_vram": vram,
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        "context_length": 4096,
    }


@pytest.fixture
def loaded(server: OllamaTestServer) -> OllamaTestServer:
    load(server, "tiny:latest", 30, 23_695_616)
    load(server, "gemma3:12b", 3, 9_000_000_000, vram=4_500_000_000)
    load(server, "nomic-embed-text:latest", 60 * 24 * 365 * 300, 300_000_000)  # kept forever
    return server


def test_ps_sorts_by_until_the_next_unloaded_first(loaded: OllamaTestServer) -> None:
    result = on(loaded, "ps", "--sort", "until", "-q")
    assert result.stdout.split() == ["gemma3:12b", "tiny:latest", "nomic-embed-text:latest"]
    by_size = on(loaded, "ps", "--sort", "size", "--no-headers").stdout
    assert names(by_size) == ["gemma3:12b", "nomic-embed-text:latest", "tiny:latest"]
    assert "Forever" in by_size and "50%/50% CPU/GPU" in by_size


def test_ps_tsv_has_memory_in_bytes_and_the_expiry_in_iso_8601(loaded: OllamaTestServer) -> None:
    result = on(loaded, "ps", "--output-format", "tsv", "--sort", "name")
    assert result.exit_code == 0, result.stderr
    header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert header == ["name", "digest", "size", "size_vram", "context_length", "expires_at"]
    gemma = dict(zip(header, rows[0]))
    assert gemma["size"] == "9000000000" and gemma["size_vram"] == "4500000000"
    assert gemma["context_length"] == "4096"
    expires = datetime.fromisoformat(gemma["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=2) < expires - datetime.now(timezone.utc) < timedelta(minutes=4)
    assert gemma["expires_at"].endswith("Z")


def test_ps_prefixes_stay_case_sensitive(loaded: OllamaTestServer) -> None:
    assert on(loaded, "ps", "Gem", "-q").stdout == ""
    assert on(loaded, "ps", "gem", "tiny", "-q", "--sort", "name").stdout.split() == [
        "gemma3:12b",
        "tiny:latest",
    ]


def test_all_profiles_csv_starts_with_profile_and_host(server: OllamaTestServer) -> None:
    for name, host in (("down", dead_url()), ("live", server.url)):
        assert run_cli("config", "profile", "add", name, "--host", host).exit_code == 0
    result = run_cli("list", "--all-profiles", "--output-format", "csv", "--sort", "size")
    assert result.exit_code == 3  # the dead host's exit code, as for the table
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["profile", "host", "name", "digest", "size", "modified_at"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [
        ("live", server.url, name)
        for name in ("gemma3:12b", "nomic-embed-text:latest", "tiny:latest")
    ]
    assert "Error: down (" in result.stderr
    table = run_cli("list", "--all-profiles", "--no-headers", "--sort", "name")
    assert table.stdout.splitlines()[0].split()[:2] == ["live", "gemma3:12b"]


def complete(args: list[str], incomplete: str) -> list[str]:
    completer = ShellComplete(cli, {}, "ollamactl", "_OLLAMACTL_COMPLETE")
    return [item.value for item in completer.get_completions(args, incomplete)]


def test_completion_offers_the_formats_and_sort_keys() -> None:
    assert complete(["list", "--output-format"], "") == ["table", "json", "tsv", "csv"]
    assert complete(["list", "--sort"], "") == ["name", "size", "modified"]
    assert complete(["ps", "--sort"], "u") == ["until"]
    assert {"--sort", "--output-format", "--no-headers"} <= set(complete(["ps"], "--"))
