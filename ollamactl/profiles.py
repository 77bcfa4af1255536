"""The keys of a profile, once: what each means, how its text is read, what it is for.

Read by :func:`ollamactl.config.resolve` (which keys are connection settings, defaults
or API key sources) and by ``config set``/``config show`` (parsers and meanings).
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ollamactl.errors import UsageError
from ollamactl.hosts import check_header_name, check_header_value, parse_host

if TYPE_CHECKING:
    import subprocess

    from ollamactl.params import KeepAlive

PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: Roles of a setting (see :class:`Setting`).
CONNECTION, DEFAULT, API_KEY = "connection", "default", "api_key"
#: The longest timeout that can be set (about 11 days): beyond it, sockets refuse the value.
MAX_SECONDS = 1_000_000
MAX_RETRIES = 10
#: What an api_key_cmd may take: time, and output (a key is a line, not a file).
KEY_COMMAND_SECONDS = 30
KEY_COMMAND_BYTES = 64 * 1024


def _shown(value: Any) -> str:
    """A value as a message quotes it: text in quotes, other TOML values as TOML writes them."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, (int, float, list, dict)) else repr(value)


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{key} must be text, not {_shown(value)}")
    return value


def _word(key: str, value: Any) -> str:
    """Text that is not empty (a model name, an environment variable)."""
    if not _text(key, value).strip():
        raise UsageError(f"{key} must not be empty")
    return value.strip()


def _api_key(key: str, value: Any) -> str:
    """A token: text that an HTTP header can carry; no message ever shows it."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{key} must be non-empty text")
    return check_header_value(value.strip(), f"the API key from {key}")


def _command(key: str, value: Any) -> str:
    """A command line, split as a shell splits it (no shell runs it)."""
    try:
        words = shlex.split(_text(key, value))
    except ValueError as e:  # an unclosed quote
        raise UsageError(f"{key} cannot be split into words: {e}") from None
    if not words:
        raise UsageError(f"{key} must name a command")
    return value


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower() if isinstance(value, str) else None
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise UsageError(f"{key} must be true or false, not {_shown(value)}")


def parse_seconds(
    key: str, value: Any, *, minimum: float = 0, inclusive: bool = False
) -> int | float:
    """A number of seconds (text or a TOML number): finite, above ``minimum`` (or equal to
    it, ``inclusive``), at most MAX_SECONDS. The one check of every timeout and interval.

    >>> parse_seconds("--timeout", "1.5"), parse_seconds("--timeout", "0", inclusive=True)
    (1.5, 0)
    """
    number = math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with suppress(ValueError):
            number = float(value)
    low_enough = minimum <= number if inclusive else minimum < number
    if not (math.isfinite(number) and low_enough and number <= MAX_SECONDS):
        wanted = (
            f"a positive number of seconds (at most {MAX_SECONDS})"
            if minimum == 0 and not inclusive
            else f"a number of seconds from {minimum:g} to {MAX_SECONDS}"
        )
        raise UsageError(f"{key} must be {wanted}, not {_shown(value)}")
    return int(number) if number.is_integer() else number


def _retries(key: str, value: Any) -> int:
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif text and text.isascii() and text.isdigit():
        number = int(text)
    else:
        number = -1
    if not 0 <= number <= MAX_RETRIES:
        raise UsageError(
            f"{key} must be a whole number from 0 to {MAX_RETRIES}, not {_shown(value)}"
        )
    return number


def parse_host_setting(key: str, value: Any) -> str:
    """A host URL, checked by :func:`~ollamactl.hosts.parse_host` (messages hide passwords)."""
    try:
        parse_host(_text(key, value))
    except UsageError as e:
        raise UsageError(f"{key}: {e.message}", hint=e.hint) from None
    return str(value).strip()


def parse_ca_cert_setting(key: str, value: Any) -> str:
    """A readable CA bundle: a PEM file, or a folder of hashed certificates."""
    if not _text(key, value).strip():
        raise UsageError(f"{key} must be the path of a CA certificate file")
    path = Path(value).expanduser().absolute()
    if not os.access(path, os.R_OK) or not (path.is_file() or path.is_dir()):
        raise UsageError(f"{key}: cannot read the CA certificate file {str(path)!r}")
    return str(path)


def _readable_file(what: str) -> Callable[[str, Any], str]:
    """The parser of the path of a readable file (made absolute), called ``what`` in messages."""

    def parse(key: str, value: Any) -> str:
        path = Path(_text(key, value).strip()).expanduser().absolute()
        if not value.strip() or not path.is_file() or not os.access(path, os.R_OK):
            raise UsageError(f"cannot read the {what} {value!r} (from {key})")
        return str(path)

    return parse


parse_client_cert_setting = _readable_file("client certificate")
parse_client_key_setting = _readable_file("client key")


def _keep_alive(key: str, value: Any) -> KeepAlive | None:
    from ollamactl.params import parse_keep_alive

    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"{key} must be a duration (5m, 1h) or seconds, not {_shown(value)}")
    try:
        return parse_keep_alive(str(value))
    except UsageError as e:
        raise UsageError(f"{key}: {e.message}", hint=e.hint) from None


def _header(key: str, value: Any) -> str:
    """A header of a profile (key ``profiles.NAME.headers.HEADER``): never shown."""
    profile, _, name = key.removeprefix("profiles.").partition(".headers.")
    check_header_name(name)
    what = f"the header {name!r} from profile {profile!r}"
    return check_header_value(_text(key, value).strip(), what)


def _option(key: str, value: Any) -> Any:
    """A model option typed as ``-o`` types it; a list option also takes a list of text."""
    from ollamactl.modelfile import LIST_PARAMETERS
    from ollamactl.params import format_param, parse_json

    name = key.rpartition(".")[2]
    if name in LIST_PARAMETERS and isinstance(value, str):
        with suppress(UsageError):
            value = parse_json(value, key)
    if name in LIST_PARAMETERS and isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return value
        raise UsageError(f"{key} must be a list of text, not {_shown(value)}")
    if isinstance(value, bool):
        value = str(value).lower()
    if not isinstance(value, (str, int, float)):
        raise UsageError(f"{key} must be a value such as 8192, 0.7 or true, not {_shown(value)}")
    try:
        return format_param(name, [str(value)])
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
    """A key of a profile: what it means (``config show``), how a value is read, and its role.

    ``parse(key, value)`` is the one check of the key: for a command-line flag, ``config set``
    (text) and the config file (a TOML value) alike; it returns the typed value or raises
    :class:`UsageError` naming ``key``, never quoting a secret. The role says what
    :func:`ollamactl.config.resolve` does with it: a ``connection`` setting becomes a setting
    of that name, a ``default`` one a default of run/chat/embed, an ``api_key`` one a source
    of the API key.
    """

    meaning: str
    parse: Callable[[str, Any], Any]
    role: str


PROFILE_SETTINGS = {
    "host": Setting("server URL", parse_host_setting, CONNECTION),
    "api_key": Setting("bearer token, kept in this file (mode 0600)", _api_key, API_KEY),
    "api_key_env": Setting(
        "bearer token read from this environment variable at run time", _word, API_KEY
    ),
    "api_key_cmd": Setting("bearer token printed by this command at run time", _command, API_KEY),
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
    "connect_timeout": Setting("seconds allowed to connect", parse_seconds, CONNECTION),
    "read_timeout": Setting(
        "seconds of silence allowed while the server works", parse_seconds, CONNECTION
    ),
    "retries": Setting("retries of idempotent requests (0-10)", _retries, CONNECTION),
    "fallback": Setting(
        "profiles tried in order when this server cannot be reached (refused, DNS, timeout)",
        _profile_names,
        CONNECTION,
    ),
    "model": Setting("default model of run, chat and embed", _word, DEFAULT),
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


def parse_setting(key: str, value: Any) -> Any:
    """Check ``value`` for the dotted ``key``: ``profiles.NAME.SETTING`` or ``...TABLE.ENTRY``.

    >>> parse_setting("profiles.lab.retries", "3"), parse_setting("profiles.lab.retries", 3)
    (3, 3)
    >>> parse_setting("profiles.lab.read_timeout", -3)
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: profiles.lab.read_timeout must be a positive number of seconds \
(at most 1000000), not -3
    """
    parts = key.split(".", 3)
    if len(parts) == 4:
        return PROFILE_TABLES[parts[2]].parse(key, value)
    return PROFILE_SETTINGS[parts[2]].parse(key, value)


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


def secret_from_profile(
    table: Mapping[str, Any], name: str, env: Mapping[str, str], path: Path
) -> str | None:
    """A profile's API key: literal, from an environment variable, or from a command.

    The table was checked by :func:`layer_from_profile`; no message shows the key.
    """
    if "api_key" in table:
        return str(table["api_key"])
    if "api_key_env" in table:
        var = str(table["api_key_env"]).strip()
        if var not in env:
            raise UsageError(f"profile {name!r} reads its API key from ${var}, which is not set")
        return env[var]
    if "api_key_cmd" in table:
        return _run_key_command(str(table["api_key_cmd"]), f"profiles.{name}.api_key_cmd", path)
    return None


def _run_key_command(command: str, key: str, path: Path) -> str:
    """What ``command`` prints: the key (UTF-8, one line); neither is shown in a message.

    The command gets KEY_COMMAND_SECONDS and may print KEY_COMMAND_BYTES at most: one that
    hangs or prints for ever is stopped, and that is an error.
    """
    import subprocess

    where = f"in {path}"
    try:
        process = subprocess.Popen(
            shlex.split(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError as e:
        raise UsageError(f"{key}: the command cannot run: {e.strerror}", hint=where) from None
    with process:
        output, finished = _bounded_output(process)
        if not finished:
            process.kill()
            raise UsageError(
                f"{key}: the command did not print a key within {KEY_COMMAND_SECONDS} s"
                f" and {KEY_COMMAND_BYTES // 1024} KiB",
                hint=where,
            )
    if process.returncode != 0:
        raise UsageError(f"{key}: the command exited with status {process.returncode}", hint=where)
    try:
        key_text = output.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{key}: the command printed something that is not UTF-8 text") from None
    if not key_text:
        raise UsageError(f"{key}: the command printed no key", hint=where)
    return key_text


def _bounded_output(process: subprocess.Popen[bytes]) -> tuple[bytes, bool]:
    """The output of ``process`` and whether it ended within the time and size allowed."""
    import selectors
    import time

    assert process.stdout is not None
    deadline = time.monotonic() + KEY_COMMAND_SECONDS
    chunks: list[bytes] = []
    size = 0
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while size <= KEY_COMMAND_BYTES:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return b"", False
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        else:
            return b"", False
    try:
        process.wait(max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        return b"", False
    return b"".join(chunks), True


def layer_from_profile(table: Mapping[str, Any], name: str, path: Path) -> dict[str, Any]:
    """Check a profile table and map it onto setting names (its API key is resolved later).

    Every key ollamactl reads goes through its parser (:func:`parse_setting`); a bad value is
    a UsageError naming the dotted key and the file.
    """
    try:
        checked = {
            key: _parse_entry(key, f"profiles.{name}.{key}", table[key])
            for key in [*PROFILE_SETTINGS, *PROFILE_TABLES]
            if key in table
        }
    except UsageError as e:
        raise UsageError(e.message, hint="; ".join(filter(None, [e.hint, f"in {path}"]))) from None
    layer: dict[str, Any] = {key: checked[key] for key in keys_of(CONNECTION) if key in checked}
    defaults = {key: checked[key] for key in keys_of(DEFAULT) if key in checked}
    if defaults:
        layer["defaults"] = defaults
    if not layer.get("headers"):
        layer.pop("headers", None)
    return layer


def _parse_entry(setting: str, key: str, value: Any) -> Any:
    """One entry of a profile: a setting, or a table whose entries are each parsed."""
    if setting in PROFILE_SETTINGS:
        return PROFILE_SETTINGS[setting].parse(key, value)
    if not isinstance(value, dict):
        raise UsageError(f"{key} must be a table of NAME = value, not {_shown(value)}")
    parse = PROFILE_TABLES[setting].parse
    return {str(entry): parse(f"{key}.{entry}", item) for entry, item in value.items()}
