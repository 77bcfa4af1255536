"""Host, credential and profile resolution: flags > explicit profile > env > default profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollamactl.config import Flags, config_path, resolve
from ollamactl.errors import ConfigError, UsageError
from tests.helpers import run_cli

CONFIG = """
default_profile = "lab"

[profiles.lab]
host = "http://lab.internal:11434"
headers = { "X-Team" = "ml" }
read_timeout = 900

[profiles.gw]
host = "https://abc.gw.example.com/ollama-api/"
api_key_env = "GW_TOKEN"
headers = { "CF-Access-Client-Id" = "id-1" }
model = "llama3.2"
"""


def write_config(text: str = CONFIG) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_default_host_without_config_or_env() -> None:
    settings = resolve(Flags(), env={})
    assert settings.base_url == "http://127.0.0.1:11434"
    assert settings.sources["host"] == "default"


def test_env_beats_default_profile_and_flag_beats_env() -> None:
    write_config()
    assert resolve(Flags(), env={}).base_url == "http://lab.internal:11434"
    env = {"OLLAMA_HOST": "https://env.example.com"}
    assert resolve(Flags(), env=env).base_url == "https://env.example.com"
    settings = resolve(Flags(host="flag.example.com:1"), env=env)
    assert settings.base_url == "http://flag.example.com:1"
    assert settings.sources["host"] == "--host"


def test_explicit_profile_beats_environment() -> None:
    write_config()
    env = {"OLLAMA_HOST": "https://env.example.com", "GW_TOKEN": "tok-gw"}
    settings = resolve(Flags(profile="gw"), env=env)
    assert settings.base_url == "https://abc.gw.example.com/ollama-api"
    assert settings.api_key == "tok-gw"
    assert settings.headers == {
        "CF-Access-Client-Id": "id-1"
    }  # the default profile is not mixed in
    assert settings.defaults == {"model": "llama3.2"}
    assert "profile 'gw'" in settings.sources["host"]
    via_env = resolve(Flags(), env={**env, "OLLAMACTL_PROFILE": "gw"})
    assert via_env.base_url == "https://abc.gw.example.com/ollama-api"


def test_headers_merge_and_flags_win() -> None:
    write_config()
    settings = resolve(Flags(headers=("X-Team: infra", "X-Extra: 1")), env={})
    assert settings.headers == {"X-Team": "infra", "X-Extra": "1"}
    assert settings.read_timeout == 900


def test_unknown_profile_names_the_file_and_the_known_ones() -> None:
    path = write_config()
    with pytest.raises(UsageError) as e:
        resolve(Flags(profile="nope"), env={})
    assert "unknown profile 'nope'" in str(e.value)
    assert str(path) in str(e.value) and "gw, lab" in str(e.value)


def test_corrupt_config_names_file_and_line() -> None:
    path = write_config('default_profile = "lab"\n[profiles.lab\nhost = 1\n')
    with pytest.raises(ConfigError) as e:
        resolve(Flags(), env={})
    assert str(path) in str(e.value) and "line 2" in str(e.value)


def test_api_key_from_missing_env_var_is_a_usage_error() -> None:
    write_config()
    with pytest.raises(UsageError, match=r"\$GW_TOKEN, which is not set"):
        resolve(Flags(profile="gw"), env={})


def test_api_key_from_command() -> None:
    write_config('[profiles.p]\nhost = "h"\napi_key_cmd = "echo from-cmd"\n')
    assert resolve(Flags(profile="p"), env={}).api_key == "from-cmd"


def test_basic_auth_in_url_is_split_out() -> None:
    settings = resolve(Flags(host="https://me:pw%2Fx@gw.example.com/p"), env={})
    assert settings.base_url == "https://gw.example.com/p"
    assert (settings.host.username, settings.host.password) == ("me", "pw/x")
    assert settings.credential_source() == "basic auth for user 'me' from --host"


def test_unreadable_ca_cert_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the CA certificate file"):
        resolve(Flags(ca_cert=str(tmp_path / "missing.pem")), env={})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "ftp://x", "list"], "unsupported scheme 'ftp'"),
        (["--host", "h:99999", "list"], "invalid port '99999'"),
        (["--profile", "nope", "list"], "unknown profile 'nope'"),
        (["--ca-cert", "/nonexistent/ca.pem", "list"], "cannot read the CA certificate file"),
        (["-H", "no-colon", "list"], "invalid header 'no-colon'"),
    ],
)
def test_bad_local_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_corrupt_config_through_the_cli() -> None:
    write_config("[profiles\n")
    result = run_cli("list")
    assert result.exit_code == 2
    assert "is not valid TOML" in result.stderr and "line 1" in result.stderr


def test_config_dir_defaults_to_user_config_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMACTL_CONFIG_DIR")
    assert config_path().parent.name == "ollamactl"
    assert not config_path().parent.exists()  # reading never creates the folder
