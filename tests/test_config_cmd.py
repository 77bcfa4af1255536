"""config and profile commands end to end; the fleet view (--all-profiles)."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from ollamactl.client import Client
from ollamactl.config import Flags, config_path, load_config, resolve, save_config
from ollamactl.errors import ConfigError
from tests.fake_ollama import OllamaTestServer
from tests.helpers import dead_url, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on old Pythons only
    import tomli as tomllib


def ok(*args: str, input: str | None = None) -> str:
    """Run a command that must succeed; return its stdout."""
    result = run_cli(*args, input=input)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def fails(code: int, *args: str) -> str:
    """Run a command that must fail with ``code`` and one error line; return that line."""
    result = run_cli(*args)
    assert result.exit_code == code, result.stdout + result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    return result.stderr


def test_set_show_get_round_trip_with_typed_values() -> None:
    ok("config", "profile", "add", "gpu", "--host", "https://gw.example.com/ollama-api")
    for key, value in [
        ("default_profile", "gpu"),
        ("profiles.gpu.model", "llama3.2"),
        ("profiles.gpu.options.num_ctx", "8192"),
        ("profiles.gpu.options.temperature", "0.2"),
        ("profiles.gpu.options.stop", '["</s>"]'),
        ("profiles.gpu.keep_alive", "-1"),
        ("profiles.gpu.keep_alive", "10m"),
        ("profiles.gpu.read_timeout", "900"),
        ("profiles.gpu.insecure_tls", "false"),
    ]:
        ok("config", "set", key, value)
        assert ok("config", "get", key) == value + "\n"
    stored = load_config()
    gpu = stored["profiles"]["gpu"]
    assert gpu["options"] == {"num_ctx": 8192, "temperature": 0.2, "stop": ["</s>"]}
    assert gpu["read_timeout"] == 900 and gpu["insecure_tls"] is False

    shown = ok("config", "show")
    assert tomllib.loads(shown) == stored
    assert "# default model of run, chat and embed" in shown
    assert "# used with --profile gpu or OLLAMACTL_PROFILE=gpu; the default profile" in shown
    assert ok("config", "get", "profiles.gpu.options") == (
        'num_ctx = 8192\ntemperature = 0.2\nstop = [\n    "</s>",\n]\n'
    )

    settings = resolve(Flags())
    assert settings.base_url == "https://gw.example.com/ollama-api"
    assert settings.read_timeout == 900
    assert settings.defaults == {
        "model": "llama3.2",
        "options": {"num_ctx": 8192, "temperature": 0.2, "stop": ["</s>"]},
        "keep_alive": "10m",
    }


def test_the_file_is_0600_in_a_0700_folder(isolated_env: Path) -> None:
    ok("config", "set", "profiles.lab.host", "lab:11434")
    path = config_path()
    assert path.parent == isolated_env / "config"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ok("config", "path") == f"{path}\n"


def test_a_failed_write_leaves_the_previous_file_intact(monkeypatch: pytest.MonkeyPatch) -> None:
    ok("config", "set", "profiles.lab.host", "lab:11434")
    before = config_path().read_bytes()

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", disk_full)
    error = fails(2, "config", "set", "profiles.lab.host", "other:11434")
    assert f"cannot write the config file {config_path()}: No space left on device" in error
    assert config_path().read_bytes() == before
    assert os.listdir(config_path().parent) == [config_path().name]  # no temporary file left


def test_a_folder_that_cannot_exist_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"cannot write the config file .*: Not a directory"):
        save_config({"default_profile": "x"}, blocker / "config" / "config.toml")
    monkeypatch.setenv("OLLAMACTL_CONFIG_DIR", str(blocker / "config"))
    assert "Not a directory" in fails(2, "config", "set", "profiles.x.host", "x")
    assert blocker.read_text() == "not a folder"


def test_show_hides_secrets_and_get_prints_them() -> None:
    ok(
        "config",
        "profile",
        "add",
        "gpu",
        "--host",
        "https://me:pw-secret-789@gw.example.com",
        "--api-key-stdin",
        "-H",
        "X-Api-Token: tok-secret-456",
        "-H",
        "X-Team: ml",
        input="sk-secret-123\n",
    )
    shown = ok("config", "show")
    assert not {"sk-secret-123", "pw-secret-789", "tok-secret-456"} & set(shown.split('"'))
    assert "-secret-" not in shown
    config = tomllib.loads(shown)["profiles"]["gpu"]
    assert config["api_key"] == "***" and config["host"] == "https://me:***@gw.example.com"
    assert config["headers"] == {"X-Api-Token": "***", "X-Team": "ml"}
    assert "bearer token, kept in this file (mode 0600)" in shown
    assert ok("config", "get", "profiles.gpu.api_key") == "sk-secret-123\n"


def test_an_api_key_is_stored_as_a_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    ok("config", "profile", "add", "gpu", "--host", "gpu", "--api-key-env", "GPU_TOKEN")
    ok("config", "profile", "add", "cmd", "--host", "gpu", "--api-key-cmd", "echo from-cmd")
    assert load_config()["profiles"]["gpu"] == {"host": "gpu", "api_key_env": "GPU_TOKEN"}
    monkeypatch.setenv("GPU_TOKEN", "from-env")
    assert resolve(Flags(profile="gpu")).api_key == "from-env"
    assert resolve(Flags(profile="cmd")).api_key == "from-cmd"

    result = run_cli("config", "set", "profiles.gpu.api_key_cmd", "pass show gpu")
    assert result.exit_code == 0 and "removed profiles.gpu.api_key_env" in result.stderr
    assert load_config()["profiles"]["gpu"] == {"host": "gpu", "api_key_cmd": "pass show gpu"}
    ok("config", "set", "profiles.gpu.api_key", "-", input="from-stdin\n")
    assert load_config()["profiles"]["gpu"] == {"host": "gpu", "api_key": "from-stdin"}


def test_profile_list_use_and_rm() -> None:
    ok("config", "profile", "add", "gpu", "--host", "https://gw.example.com", "--default")
    ok("config", "profile", "add", "lab", "--host", "lab:11434")
    table = ok("config", "profile", "list").splitlines()
    assert table[0].split() == ["NAME", "HOST", "DEFAULT"]
    assert table[1].split() == ["gpu", "https://gw.example.com", "*"]
    assert table[2].split() == ["lab", "lab:11434"]

    ok("config", "profile", "use", "lab")
    assert ok("config", "get", "default_profile") == "lab\n"
    result = run_cli("config", "profile", "rm", "lab")
    assert result.exit_code == 0 and "there is no default profile now" in result.stderr
    assert ok("config", "profile", "list", "-q") == "gpu\n"
    assert "default_profile" not in load_config()


def test_unset_removes_a_key_and_its_empty_table() -> None:
    ok("config", "set", "profiles.gpu.host", "gpu")
    ok("config", "set", "profiles.gpu.options.num_ctx", "4096")
    ok("config", "unset", "profiles.gpu.options.num_ctx")
    assert load_config() == {"profiles": {"gpu": {"host": "gpu"}}}
    assert "profiles.gpu.model is not set" in fails(2, "config", "get", "profiles.gpu.model")
    assert "is not set" in fails(2, "config", "unset", "profiles.gpu.model")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "profiles.gpu.hots", "x"], "unknown key 'profiles.gpu.hots' (keys are"),
        (["set", "profiles.gpu.retries", "many"], "must be a whole number from 0 to 10"),
        (["set", "profiles.gpu.read_timeout", "-1"], "must be a positive number of seconds"),
        (["set", "profiles.gpu.insecure_tls", "maybe"], "must be true or false"),
        (["set", "profiles.gpu.host", "ftp://x"], "unsupported scheme 'ftp'"),
        (["set", "profiles.a.b.host", "x"], "unknown key"),
        (["set", "default_profile", "nope"], "unknown profile 'nope'"),
        (["profile", "use", "nope"], "unknown profile 'nope'"),
        (["profile", "add", "bad.name", "--host", "x"], "invalid profile name 'bad.name'"),
        (
            ["profile", "add", "x", "--host", "x", "--api-key-env", "A", "--api-key-cmd", "b"],
            "give at most one of",
        ),
    ],
)
def test_bad_input_is_one_error_line_and_changes_nothing(args: list[str], message: str) -> None:
    assert message in fails(2, "config", *args)
    assert not config_path().exists()


def test_a_profile_is_not_added_twice() -> None:
    ok("config", "profile", "add", "gpu", "--host", "gpu")
    assert "profile 'gpu' already exists" in fails(
        2, "config", "profile", "add", "gpu", "--host", "x"
    )


# -- the fleet view ---------------------------------------------------------------------


def two_profiles(live: OllamaTestServer) -> None:
    ok("config", "profile", "add", "down", "--host", dead_url())
    ok("config", "profile", "add", "live", "--host", live.url)


def test_list_all_profiles_with_one_live_and_one_dead_host(server: OllamaTestServer) -> None:
    two_profiles(server)
    result = run_cli("list", "--all-profiles")
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["HOST", "NAME", "ID", "SIZE", "MODIFIED"]
    assert lines[0].index("NAME") == lines[1].index(lines[1].split()[1])
    assert sorted(line.split()[:2] for line in lines[1:]) == sorted(
        ["live", name] for name in server.models
    )
    assert result.stderr.startswith("Error: down (http://127.0.0.1:")
    assert "could not connect" in result.stderr and result.stderr.count("\n") == 1


def test_list_all_profiles_json_has_a_host_field(server: OllamaTestServer) -> None:
    two_profiles(server)
    result = run_cli("list", "--all-profiles", "--json", "gem")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert [(m["name"], m["profile"], m["host"]) for m in data["models"]] == [
        ("gemma3:12b", "live", server.url)
    ]
    assert [e["profile"] for e in data["errors"]] == ["down"]


def test_ps_all_profiles(server: OllamaTestServer) -> None:
    Client(resolve(Flags(host=server.url))).load("tiny:latest")
    two_profiles(server)
    result = run_cli("--timeout", "5", "ps", "--all-profiles")
    assert result.exit_code == 3 and result.stderr.startswith("Error: down (")
    header, row = result.stdout.splitlines()
    assert header.split() == ["HOST", "NAME", "ID", "SIZE", "PROCESSOR", "UNTIL"]
    assert row.split()[:2] == ["live", "tiny:latest"]


def test_all_profiles_needs_profiles_and_no_host() -> None:
    assert "there are no profiles" in fails(2, "list", "--all-profiles")
    assert "cannot be combined with --host" in fails(2, "--host", "x", "ps", "--all-profiles")
