"""The keys of a profile, once: what each means, how its text is read, what it is for.

Read by :func:`ollamactl.config.resolve` (which keys are connection settings, defaults
or API key sources) and by ``config set``/``config show`` (parsers and meanings).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ollamactl.errors import ConfigError, UsageError
from ollamactl.hosts import parse_header, parse_host

if TYPE_CHECKING:
    from ollamactl.params import KeepAlive

PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: Roles of a setting (see :class:`Setting`).
CONNECTION, DEFAULT, API_KEY = "connection", "default", "api_key"


def _text(key: str, raw: str) -> str:
    return raw


def _boolean(key: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise UsageError(f"{key} must be true or false, not {raw!r}")


def _seconds(key: str, raw: str) -> int | float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{key} must be a positive number of seconds, not {raw!r}")
    return int(value) if value.is_integer() else value


def _retries(key: str, raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) > 10:
        raise UsageError(f"{key} must be a whole number from 0 to 10, not {raw!r}")
    return int(raw)


def parse_host_setting(key: str, raw: str) -> str:
    parse_host(raw)  # a UsageError names what is wrong with the URL
    return raw.strip()


def _readable_file(what: str) -> Callable[[str, str], str]:
    """The parser of a path to a readable file (made absolute), called ``what`` in messages."""

    def parse(key: str, raw: str) -> str:
        path = Path(raw).expanduser().absolute()
        if not os.access(path, os.R_OK):
            raise UsageError(f"{key}: cannot read the {what} {str(path)!r}")
        return str(path)

    return parse


parse_ca_cert_setting = _readable_file("CA certificate file")
parse_client_cert_setting = _readable_file("client certificate file")
parse_client_key_setting = _readable_file("client key file")


def _keep_alive(key: str, raw: str) -> KeepAlive | None:
    from ollamactl.params import parse_keep_alive

    try:
        return parse_keep_alive(raw)
    except UsageError as e:
        raise UsageError(f"{key}: {e.message}", hint=e.hint) from None


def _header(key: str, raw: str) -> str:
    return parse_header(f"{key.rpartition('.')[2]}: {raw}")[1]


def _option(key: str, raw: str) -> Any:
    """A model option typed as ``-o`` types it; a list option also takes a JSON list of text."""
    from ollamactl.modelfile import LIST_PARAMETERS
    from ollamactl.params import format_param

    name = key.rpartition(".")[2]
    if name in LIST_PARAMETERS:
        with suppress(ValueError):
            value = json.loads(raw)
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return value
    try:
        return format_param(name, [raw])
    except UsageError as e:
        raise UsageError(f"{key}: {e.message}", hint=e.hint) from None


def _profile_names(key: str, value: Any) -> list[str]:
    """Names of other profiles, in order: a list, or text such as ``lab,local`` or ``["lab"]``.

    Whether they exist, and make no cycle, is checked where the whole file is known
    (:func:`ollamactl.fallback.check_fallbacks`).
    """
    names = value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            with suppress(ValueError):
                names = json.loads(text)
        else:
            names = [name.strip() for name in text.split(",") if name.strip()]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise UsageError(f"{key} must be a list of profile names, such as lab,local")
    return list(dict.fromkeys(check_profile_name(name) for name in names))


@dataclass(frozen=True)
class Setting:
    """A key of a profile: what it means (``config show``), how VALUE is read, and its role.

    The role says what :func:`ollamactl.config.resolve` does with it: a ``connection``
    setting becomes a setting of that name, a ``default`` one a default of run/chat/embed,
    an ``api_key`` one a source of the API key.
    """

    meaning: str
    parse: Callable[[str, str], Any]
    role: str


PROFILE_SETTINGS = {
    "host": Setting("server URL", parse_host_setting, CONNECTION),
    "api_key": Setting("bearer token, kept in this file (mode 0600)", _text, API_KEY),
    "api_key_env": Setting(
        "bearer token read from this environment variable at run time", _text, API_KEY
    ),
    "api_key_cmd": Setting("bearer token printed by this command at run time", _text, API_KEY),
    "ca_cert": Setting(
        "CA bundle that verifies the server's certificate", parse_ca_cert_setting, CONNECTION
    ),
    "client_cert": Setting(
        "client certificate (PEM) for servers that require one (mutual TLS)",
        parse_client_cert_setting,
        CONNECTION,
    ),
    "client_key": Setting(
        "private key (PEM, not encrypted) of client_cert, if not in that file",
        parse_client_key_setting,
        CONNECTION,
    ),
    "insecure_tls": Setting("true: do not verify TLS certificates (unsafe)", _boolean, CONNECTION),
    "connect_timeout": Setting("seconds allowed to connect", _seconds, CONNECTION),
    "read_timeout": Setting(
        "seconds of silence allowed while the server works", _seconds, CONNECTION
    ),
    "retries": Setting("retries of idempotent requests (0-10)", _retries, CONNECTION),
    "fallback": Setting(
        "profiles tried in order when this server cannot be reached (refused, DNS, timeout)",
        _profile_names,
        CONNECTION,
    ),
    "model": Setting("default model of run, chat and embed", _text, DEFAULT),
    "keep_alive": Setting(
        "how long run and chat keep the model loaded (5m, 1h, -1)", _keep_alive, DEFAULT
    ),
}
#: Tables of a profile: every key in them is read with the same parser.
PROFILE_TABLES = {
    "headers": Setting("HTTP headers sent with every request to this server", _header, CONNECTION),
    "options": Setting(
        "default model options of run and chat (num_ctx, temperature...)", _option, DEFAULT
    ),
}


def keys_of(role: str) -> list[str]:
    """The keys (settings, then tables) of one role, in table order.

    >>> keys_of(DEFAULT)
    ['model', 'keep_alive', 'options']
    """
    tables = {**PROFILE_SETTINGS, **PROFILE_TABLES}
    return [key for key, setting in tables.items() if setting.role == role]


def check_profile_name(name: str) -> str:
    """``name`` if it can name a profile (letters, digits, '-' and '_'), else UsageError."""
    if not PROFILE_NAME.fullmatch(name):
        raise UsageError(f"invalid profile name {name!r}", hint="use letters, digits, '-' and '_'")
    return name


def profile_table(config: Mapping[str, Any], name: str, path: Path) -> dict[str, Any]:
    """The table of profile ``name``; UsageError naming the known profiles if there is none."""
    profiles = config.get("profiles", {})
    if not isinstance(profiles, dict) or not isinstance(profiles.get(name), dict):
        known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) and profiles else "none"
        raise UsageError(f"unknown profile {name!r}", hint=f"profiles in {path}: {known}")
    table: dict[str, Any] = profiles[name]
    return table


def secret_from_profile(table: Mapping[str, Any], name: str, env: Mapping[str, str]) -> str | None:
    """A profile's API key: literal, from an environment variable, or from a command."""
    if "api_key" in table:
        return str(table["api_key"])
    if "api_key_env" in table:
        var = str(table["api_key_env"])
        if var not in env:
            raise UsageError(f"profile {name!r} reads its API key from ${var}, which is not set")
        return env[var]
    if "api_key_cmd" in table:
        import shlex
        import subprocess

        command = str(table["api_key_cmd"])
        try:
            done = subprocess.run(
                shlex.split(command), capture_output=True, text=True, timeout=30, check=True
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise UsageError(f"profile {name!r}: the api_key_cmd failed: {e}") from None
        return done.stdout.strip()
    return None


def layer_from_profile(table: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Map a profile table onto setting names (its API key is resolved later, if needed)."""
    layer: dict[str, Any] = {key: table[key] for key in keys_of(CONNECTION) if key in table}
    headers = layer.pop("headers", {})
    if not isinstance(headers, dict):
        raise ConfigError(f"profile {name!r}: headers must be a table of name = value")
    if headers:
        layer["headers"] = {str(k): str(v) for k, v in headers.items()}
    defaults = {key: table[key] for key in keys_of(DEFAULT) if key in table}
    if defaults:
        layer["defaults"] = defaults
    return layer
