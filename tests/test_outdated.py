"""``ollamactl outdated``: the fake Ollama with a fake registry, and a tag moved in a real one."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from click.shell_completion import ShellComplete

from ollamactl.cli import cli
from ollamactl.registry import LOCAL_ONLY, OUTDATED, Answer, compare
from tests.backends import Backend
from tests.fake_ollama import OllamaTestServer
from tests.fake_registry import MANIFEST_TYPE, FakeRegistry, manifest, sha256
from tests.helpers import dead_url, on, run_cli


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as fake:
        yield fake


def add_model(server: OllamaTestServer, name: str, manifest_bytes: bytes) -> str:
    """Put a model on the server whose manifest file has these bytes; returns its name."""
    server.add_model(name)["digest"] = sha256(manifest_bytes)
    return name


def published(registry: FakeRegistry, repository: str, value: dict[str, Any], **dump: Any) -> str:
    """Publish ``value`` as library/REPOSITORY:latest; returns the model's name."""
    registry.put(f"library/{repository}:latest", json.dumps(value, **dump).encode())
    return f"{registry.host}/library/{repository}:latest"


def compact(value: dict[str, Any]) -> bytes:
    """Go's json.Marshal of a manifest in Go's key order, without characters Go escapes."""
    return json.dumps(value, separators=(",", ":")).encode()


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()]


def test_the_registry_s_own_manifest_is_current(
    bare: OllamaTestServer, registry: FakeRegistry
) -> None:
    name = published(registry, "tiny", manifest(605_216))
    add_model(bare, name, registry.manifests["library/tiny:latest"])
    result = on(bare, "outdated", "--insecure", "--exit-code")
    assert result.exit_code == 0, result.stderr
    digest = sha256(registry.manifests["library/tiny:latest"])[:12]
    assert rows(result.stdout) == [
        ["NAME", "LOCAL", "REMOTE", "STATUS"],
        [name, digest, digest, "current"],
    ]
    method, path, headers = registry.requests[-1]
    assert (method, path) == ("GET", "/v2/library/tiny/manifests/latest")
    assert headers["Accept"] == MANIFEST_TYPE


@pytest.mark.parametrize("newline", [b"", b"\n"], ids=["pulled-by-ollama<0.19", "created"])
def test_the_forms_ollama_rewrites_a_manifest_into_are_current(
    bare: OllamaTestServer, registry: FakeRegistry, newline: bytes
) -> None:
    value = manifest(605_216, 124, seed="pretty")
    name = published(registry, "pretty", value, indent=2)  # other bytes than Go writes
    add_model(bare, name, compact(value) + newline)
    result = on(bare, "outdated", "--insecure", "--json")
    [model] = json.loads(result.stdout)["models"]
    assert model["status"] == "current"
    assert model["remote_digest"] == sha256(registry.manifests["library/pretty:latest"])
    assert model["local_digest"] == sha256(compact(value) + newline) != model["remote_digest"]


def test_another_manifest_is_outdated_and_exit_code_says_so(
    bare: OllamaTestServer, registry: FakeRegistry
) -> None:
    name = published(registry, "moved", manifest(605_216, seed="v2"))
    add_model(bare, name, compact(manifest(605_216, seed="v1")))
    result = on(bare, "outdated", "--insecure")
    assert result.exit_code == 0  # as pip list --outdated
    assert rows(result.stdout)[1][-1] == "outdated"
    result = on(bare, "outdated", "--insecure", "--exit-code", "--json")
    assert result.exit_code == 1
    [model] = json.loads(result.stdout)["models"]
    assert model == {
        "name": name,
        "status": "outdated",
        "local_digest": sha256(compact(manifest(605_216, seed="v1"))),
        "remote_digest": sha256(registry.manifests["library/moved:latest"]),
        "reason": "",
        "url": f"http://{registry.host}/v2/library/moved/manifests/latest",
    }


def test_a_tag_the_registry_lacks_is_local_only_and_not_a_failure(
    bare: OllamaTestServer, registry: FakeRegistry
) -> None:
    name = add_model(bare, f"{registry.host}/library/mine:v1", b"{}")
    result = on(bare, "outdated", "--insecure", "--exit-code", "--json")
    assert result.exit_code == 0, result.stderr
    [model] = json.loads(result.stdout)["models"]
    assert (model["name"], model["status"]) == (name, "local-only")
    assert model["reason"] == "not in the registry (HTTP 404 MANIFEST_UNKNOWN)"
    assert result.stderr == ""


def test_an_unreachable_registry_is_said_on_stderr_and_exit_code_is_3(
    bare: OllamaTestServer,
) -> None:
    host = dead_url().split("//")[1]
    add_model(bare, f"{host}/library/gone:latest", b"{}")
    result = on(bare, "outdated", "--insecure")
    assert result.exit_code == 0
    assert rows(result.stdout)[1][-2:] == ["-", "unreachable"]
    assert f"could not connect to http://{host}: connection refused" in result.stderr
    assert on(bare, "outdated", "--insecure", "--exit-code").exit_code == 3


def test_a_plain_http_registry_asked_over_https_hints_at_insecure(
    bare: OllamaTestServer, registry: FakeRegistry
) -> None:
    name = published(registry, "tiny", manifest(1))
    add_model(bare, name, registry.manifests["library/tiny:latest"])
    result = on(bare, "outdated")
    assert rows(result.stdout)[1][-1] == "unreachable"
    assert f"TLS error talking to https://{registry.host}:" in result.stderr
    assert "use --insecure" in result.stderr


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        ((401, b'{"errors":[{"code":"UNAUTHORIZED"}]}'), "requires a sign-in (HTTP 401"),
        ((200, b"<html>Sign in</html>"), "not a manifest"),
        ((500, b""), "answered HTTP 500"),
    ],
)
def test_a_registry_that_gives_no_manifest_is_unreachable_never_outdated(
    bare: OllamaTestServer,
    registry: FakeRegistry,
    refusal: tuple[int, bytes],
    reason: str,
) -> None:
    add_model(bare, f"{registry.host}/me/private:latest", b"{}")
    registry.refuse = refusal
    result = on(bare, "outdated", "--insecure", "--json")
    [model] = json.loads(result.stdout)["models"]
    assert model["status"] == "unreachable"
    assert reason in model["reason"] and reason in result.stderr


def test_the_server_s_credentials_never_reach_the_registry(
    gateway_server: OllamaTestServer, registry: FakeRegistry
) -> None:
    name = published(registry, "tiny", manifest(1))
    add_model(gateway_server, name, registry.manifests["library/tiny:latest"])
    result = run_cli(
        "--host",
        gateway_server.url,
        "--api-key",
        "canary-token-123",
        "-H",
        "X-Team-Key: canary-header-456",
        "outdated",
        "--insecure",
    )
    assert result.exit_code == 0, result.stderr
    [(_, _, headers)] = registry.requests
    assert "Authorization" not in headers
    assert "canary" not in json.dumps(headers)


def test_named_models_only_and_an_unknown_name_asks_no_registry(
    bare: OllamaTestServer, registry: FakeRegistry
) -> None:
    first = published(registry, "first", manifest(1, seed="1"))
    second = published(registry, "second", manifest(2, seed="2"))
    add_model(bare, first, registry.manifests["library/first:latest"])
    add_model(bare, second, registry.manifests["library/second:latest"])
    result = on(bare, "outdated", "--insecure", f"{registry.host}/library/second")
    assert [row[0] for row in rows(result.stdout)[1:]] == [second]
    asked = len(registry.requests)
    result = on(bare, "outdated", "--insecure", second, "nope")
    assert result.exit_code == 5
    assert "model 'nope' not found" in result.stderr
    assert len(registry.requests) == asked


def test_every_model_is_checked_in_the_server_s_order(
    bare: OllamaTestServer, registry: FakeRegistry
) -> None:
    names = [published(registry, f"m{i}", manifest(i + 1, seed=str(i))) for i in range(6)]
    for i, name in enumerate(names):
        add_model(bare, name, registry.manifests[f"library/m{i}:latest"])
    listed = [row[0] for row in rows(on(bare, "list").stdout)[1:]]
    result = on(bare, "outdated", "--insecure")
    assert [row[0] for row in rows(result.stdout)[1:]] == listed
    assert {row[-1] for row in rows(result.stdout)[1:]} == {"current"}
    assert len(registry.requests) == 6


def test_ollama_s_registry_is_asked_over_https_even_with_insecure(
    server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", dead_url())  # nothing leaves this machine
    result = on(server, "outdated", "--insecure", "--json", "tiny")
    [model] = json.loads(result.stdout)["models"]
    assert model["status"] == "unreachable"
    assert model["url"] == "https://registry.ollama.ai/v2/library/tiny/manifests/latest"
    assert (
        "could not connect to https://registry.ollama.ai: connection refused (through the proxy"
        in result.stderr
    )


class Parent:
    """A ``parent_model`` callback that counts how often it is asked."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.asked = 0

    def __call__(self) -> str:
        self.asked += 1
        return self.value


@pytest.mark.parametrize(
    ("name", "parent", "status"),
    [
        ("mymodel", "llama3.2:latest", LOCAL_ONLY),  # created FROM a model, under a bare name
        ("tiny", "/models/blobs/sha256-0123", LOCAL_ONLY),  # created from a GGUF file
        ("llama3.2", "", OUTDATED),  # pulled from ollama.com: no parent
        ("me/mymodel", "llama3.2:latest", OUTDATED),  # a namespace of one's own is pushed to
        ("127.0.0.1:5000/library/x", "/models/blobs/sha256-0123", OUTDATED),
    ],
)
def test_another_manifest_under_a_bare_name_with_a_parent_is_local_only(
    name: str, parent: str, status: str
) -> None:
    answer = Answer("https://r/v2/m", digest="b" * 64, forms=frozenset({"b" * 64}))
    parent_model = Parent(parent)
    assert compare(name, "a" * 64, answer, parent_model).status == status
    assert compare(name, "sha256:" + "B" * 64, answer, parent_model).status == "current"
    assert parent_model.asked == (1 if name in ("mymodel", "tiny", "llama3.2") else 0)


def test_model_names_complete(server: OllamaTestServer) -> None:
    completer = ShellComplete(cli, {}, "ollamactl", "_OLLAMACTL_COMPLETE")
    found = completer.get_completions(["--host", server.url, "outdated", "tiny:latest"], "")
    assert sorted(str(item.value) for item in found) == ["gemma3:12b", "nomic-embed-text:latest"]


# -- the real tier: a tag moved in the real registry ----------------------------------------


def _registry_call(
    method: str, url: str, body: bytes | None = None
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Accept": MANIFEST_TYPE, "Content-Type": MANIFEST_TYPE}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def _outdated(backend: Backend, name: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("--host", backend.url, "outdated", "--insecure", "--json", *args, name)
    [model] = json.loads(result.stdout)["models"]
    return result.exit_code, model


@pytest.mark.real
def test_a_tag_moved_in_a_real_registry_is_outdated_until_pulled(
    real_backend: Backend, request: pytest.FixtureRequest
) -> None:
    backend = real_backend
    name = backend.unique_name("outdated", in_registry=True)
    repository = name.split("/")[2].split(":")[0]
    manifests = f"http://{backend.registry}/v2/library/{repository}/manifests"
    pushed: list[str] = []

    def forget_the_repository() -> None:
        for digest in pushed:
            _registry_call("DELETE", f"{manifests}/sha256:{digest}")

    request.addfinalizer(forget_the_repository)
    host = ("--host", backend.url)
    assert run_cli(*host, "cp", backend.model, name).exit_code == 0
    assert run_cli(*host, "push", "--insecure", "--quiet", name).exit_code == 0
    code, model = _outdated(backend, name, "--exit-code")
    pushed.append(model["remote_digest"])
    assert (code, model["status"]) == (0, "current")

    # The same manifest in other bytes: a new digest, still the model the server has.
    _, body, _ = _registry_call("GET", f"{manifests}/latest")
    pretty = json.dumps(json.loads(body), indent=2).encode()
    assert _registry_call("PUT", f"{manifests}/latest", pretty)[0] == 201
    pushed.append(sha256(pretty))
    code, model = _outdated(backend, name, "--exit-code")
    assert (code, model["status"], model["remote_digest"]) == (0, "current", sha256(pretty))

    # The tag moves to another model's manifest (its blobs mounted first).
    fresh_repository = backend.pullable_model.split("/")[2].split(":")[0]
    _, fresh, _ = _registry_call(
        "GET", f"http://{backend.registry}/v2/library/{fresh_repository}/manifests/latest"
    )
    fresh_value = json.loads(fresh)
    for layer in [fresh_value["config"], *fresh_value["layers"]]:
        mount = (
            f"http://{backend.registry}/v2/library/{repository}/blobs/uploads/"
            f"?mount={layer['digest']}&from=library/{fresh_repository}"
        )
        assert _registry_call("POST", mount)[0] == 201
    assert _registry_call("PUT", f"{manifests}/latest", fresh)[0] == 201
    pushed.append(sha256(fresh))
    code, model = _outdated(backend, name, "--exit-code")
    assert (code, model["status"], model["remote_digest"]) == (1, "outdated", sha256(fresh))

    assert run_cli(*host, "pull", "--insecure", "--quiet", name).exit_code == 0
    code, model = _outdated(backend, name, "--exit-code")
    assert (code, model["status"]) == (0, "current")
