"""``pull --outdated``: the models ``outdated`` finds outdated are pulled, and only those."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.fake_ollama import OllamaTestServer
from tests.fake_registry import FakeRegistry, manifest, sha256
from tests.helpers import free_port, on


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as fake:
        yield fake


def on_server(server: OllamaTestServer, name: str, manifest_bytes: bytes) -> str:
    """A model on the server whose manifest file has these bytes; pullable again; its name."""
    server.add_model(name)["digest"] = sha256(manifest_bytes)
    server.add_registry_model(name, [4_000, 120])
    return name


@pytest.fixture
def three(bare: OllamaTestServer, registry: FakeRegistry) -> dict[str, str]:
    """An outdated, a current and a local-only model from one registry; their names."""
    names = {}
    for repository, stale in (("stale", True), ("fresh", False)):
        body = json.dumps(manifest(605_216, seed=repository)).encode()
        registry.put(f"library/{repository}:latest", body)
        local = b"an older manifest" if stale else body
        names[repository] = on_server(bare, f"{registry.host}/library/{repository}:latest", local)
    names["mine"] = on_server(bare, f"{registry.host}/library/mine:latest", b"never pushed")
    return names


def pulled(server: OllamaTestServer) -> list[str]:
    return [body["model"] for body in server.json_bodies("/api/pull")]


def test_only_the_outdated_model_is_pulled(bare: OllamaTestServer, three: dict[str, str]) -> None:
    result = on(bare, "pull", "--outdated", "--insecure", "--progress", "plain")
    assert result.exit_code == 0, result.stderr
    assert pulled(bare) == [three["stale"]]
    assert (
        result.stderr.splitlines()[-1]
        == f"summary: 1 updated ({three['stale']}), 0 unchanged, 0 failed"
    )
    assert result.stdout == ""


def test_named_models_are_checked_alone(bare: OllamaTestServer, three: dict[str, str]) -> None:
    result = on(bare, "pull", "--outdated", "--insecure", three["fresh"], three["mine"])
    assert result.exit_code == 0, result.stderr
    assert pulled(bare) == []
    assert result.stderr.splitlines()[-1] == "summary: 0 updated, 0 unchanged, 0 failed"


def test_a_registry_that_cannot_be_asked_is_exit_3_after_the_pulls(
    bare: OllamaTestServer, three: dict[str, str]
) -> None:
    lost = on_server(bare, f"127.0.0.1:{free_port()}/library/lost:latest", b"x")
    result = on(bare, "pull", "--outdated", "--insecure", "--progress", "json")
    assert result.exit_code == 3
    assert pulled(bare) == [three["stale"]]
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any("127.0.0.1" in line.get("warning", "") for line in lines)
    assert lines[-1]["summary"]["updated"] == [three["stale"]]
    assert f"Error: could not ask the registry of {lost}" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["--outdated", "--all"], ["--all", "tiny"], []],
    ids=["outdated+all", "all+name", "none"],
)
def test_what_to_pull_is_said_once(bare: OllamaTestServer, args: list[str]) -> None:
    result = on(bare, "pull", *args)
    assert result.exit_code == 2
    assert result.stderr == "Error: give MODEL names, --all or --outdated\n"
    assert bare.requests == []
