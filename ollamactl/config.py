"""The settings in effect: the config file, and :func:`resolve` with its precedence.

Every setting is resolved by :func:`resolve` in one place, in the order of
:data:`PRECEDENCE` (highest first), which ``config show`` prints too. Hosts are parsed
in :mod:`ollamactl.hosts`, the keys of a profile are described in :mod:`ollamactl.profiles`.

This module never imports requests, so ``--help`` and completion stay fast.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollamactl.errors import ConfigError
from ollamactl.hosts import (
    DEFAULT_HOST,
    HostURL,
    check_header_value,
    host_credentials,
    is_secret_header,
    parse_header,
    parse_host,
    split_malformed_header,
)
from ollamactl.mtls import check_client_certificate
from ollamactl.paths import config_dir, locked_folder, read_input, write_private_file
from ollamactl.profiles import (
    PROFILE_SETTINGS,
    layer_from_profile,
    profile_table,
    secret_from_profile,
)

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_RETRIES = 2
CONFIG_FILE_NAME = "config.toml"
#: A config file larger than this is not one (it is read whole).
MAX_CONFIG_BYTES = 4 * 2**20
#: The shortest text treated as a secret: shorter ones would blank out ordinary words.
MIN_SECRET_LENGTH = 4
#: Where a setting comes from, highest first: the order :func:`resolve` applies.
PRECEDENCE = (
    "command-line flags",
    "the profile chosen with --profile or OLLAMACTL_PROFILE",
    "environment (OLLAMA_HOST, OLLAMA_API_KEY, OLLAMACTL_CA_CERT, OLLAMACTL_CLIENT_CERT/KEY)",
    "default_profile",
    f"built-in defaults ({DEFAULT_HOST})",
)


def config_path() -> Path:
    """The path of the config file (it may not exist)."""
    return config_dir() / CONFIG_FILE_NAME


def load_config(path: Path | None = None) -> dict[str, Any]:
    """Read the TOML config file; a missing file is an empty config."""
    path = path or config_path()
    if not path.exists():
        return {}
    data = read_input(str(path), "the config file", MAX_CONFIG_BYTES)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on old Pythons only
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"the config file {path} is not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"the config file {path} is nested too deeply") from None


def save_config(config: Mapping[str, Any], path: Path | None = None) -> None:
    """Write the config file atomically with mode 0600 (see :func:`write_private_file`).

    Call it inside :func:`edited_config`, which holds the lock of the config folder.
    """
    import tomli_w  # only here: reading the config never needs it

    path = path or config_path()
    try:
        data = tomli_w.dumps(config).encode()
    except (TypeError, ValueError, RecursionError) as e:
        raise ConfigError(f"cannot write the config file {path}: {e}") from None
    try:
        write_private_file(path, data, locked=True)
    except OSError as e:
        raise ConfigError(f"cannot write the config file {path}: {e.strerror or e}") from None


@contextmanager
def edited_config(path: Path | None = None) -> Iterator[dict[str, Any]]:
    """Read, change and write the config file as one step: two writers never lose a change.

    The config folder is locked from the read to the write (see
    :func:`~ollamactl.paths.locked_folder`); the file is written when the block ends
    without an exception.
    """
    path = path or config_path()
    with locked_folder(path.parent, f"the config file {path}"):
        config = load_config(path)
        yield config
        save_config(config, path)


@dataclass(frozen=True)
class Flags:
    """The connection settings given on the command line (``None``: not given)."""

    host: str | None = None
    profile: str | None = None
    api_key: str | None = None
    headers: tuple[str, ...] = ()
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure_tls: bool | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    retries: int | None = None

    def checked(self) -> Flags:
        """These flags with every value through the parser of its profile key, typed.

        Raises UsageError (exit 2) naming the flag; no message shows a secret.
        """
        return dataclasses.replace(self, **{**_layer_from_flags(self), "headers": self.headers})

    def secrets(self, env: Mapping[str, str]) -> list[str]:
        """The secrets given on the command line or in the environment, even malformed ones."""
        found = [self.api_key or "", env.get("OLLAMA_API_KEY", "")]
        for host in (self.host or "", env.get("OLLAMA_HOST", "")):
            found += host_credentials(host)
        for header in self.headers:
            name, colon, value = header.partition(":")
            start, rest = split_malformed_header(name)
            if not colon or rest:  # malformed: what follows a possible name may be a value
                value = f"{rest}{colon}{value}"
                found += [value.strip(), *value.split()]
                if is_secret_header(start):  # a value may be glued to it
                    found.append(start)
            elif is_secret_header(name):
                found.append(value.strip())
        return found


@dataclass
class Settings:
    """Everything needed to talk to one server, with where each value came from."""

    host: HostURL
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure_tls: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    retries: int = DEFAULT_RETRIES
    profile: str | None = None
    #: The profiles to try when the server cannot be reached: the ``fallback`` of the profile
    #: that named the host (none when --host or OLLAMA_HOST named it).
    fallback: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The base URL, credentials removed."""
        return self.host.base_url

    @property
    def secrets(self) -> list[str]:
        """Every secret value in play (basic auth as ``user:password`` too), for redaction."""
        found = [self.api_key or "", self.host.password or ""]
        if self.host.password:
            found.append(f"{self.host.username or ''}:{self.host.password}")
        found += [v for k, v in self.headers.items() if is_secret_header(k)]
        return found

    def credential_source(self) -> str | None:
        """Say which credential was sent (never its value), for auth error hints."""
        secret_headers = [name for name in self.headers if is_secret_header(name)]
        if secret_headers:
            names = ", ".join(secret_headers)
            return f"the header {names} from {self.sources.get('headers', 'a header')}"
        if self.api_key:
            return f"the API key from {self.sources.get('api_key')}"
        if self.host.username is not None:
            return f"basic auth for user {self.host.username!r} from {self.sources.get('host')}"
        return None


def redact(text: str, secrets: Iterable[str]) -> str:
    r"""Replace every secret in ``text`` with ``***``, in every form a message may show it.

    A secret is found as is, JSON-escaped (``doctor --json``), URL-encoded, and base64-encoded
    (a basic-auth or bearer header echoed back by a server). Secrets shorter than
    MIN_SECRET_LENGTH are left alone.

    >>> redact("token abc123 and https://u:pw12@h", ["abc123", "pw12"])
    'token *** and https://u:***@h'
    >>> redact('{"k": "k\"ey1"} Basic dTpwdzEy', ['k"ey1', "u:pw12"])
    '{"k": "***"} Basic ***'
    """
    known = [secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH]
    forms = {form for secret in known for form in _forms(secret)}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _forms(secret: str) -> set[str]:
    """The ways a secret can appear in a message."""
    import base64  # only when there is a secret to redact
    import json
    from urllib.parse import quote, quote_plus

    encoded = secret.encode("utf-8", "surrogateescape")
    plain = {
        secret,
        quote(encoded, safe=""),
        quote_plus(encoded, safe=""),
        quote(encoded, safe=":@"),
        base64.b64encode(encoded).decode(),
        base64.b64encode(encoded).decode().rstrip("="),
        base64.urlsafe_b64encode(encoded).decode().rstrip("="),
    }
    escaped = {json.dumps(form, ensure_ascii=ascii)[1:-1] for form in plain for ascii in (0, 1)}
    return {form for form in plain | escaped if len(form) >= MIN_SECRET_LENGTH}


#: The environment variable of each setting read from the environment.
_ENV_NAMES = {
    "host": "OLLAMA_HOST",
    "api_key": "OLLAMA_API_KEY",
    "ca_cert": "OLLAMACTL_CA_CERT",
    "client_cert": "OLLAMACTL_CLIENT_CERT",
    "client_key": "OLLAMACTL_CLIENT_KEY",
}


def _layer_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings of the environment, each checked by the parser of its profile key."""
    return {
        key: PROFILE_SETTINGS[key].parse(var, env[var])
        for key, var in _ENV_NAMES.items()
        if env.get(var)
    }


def _layer_from_flags(flags: Flags) -> dict[str, Any]:
    """The settings given as flags, each checked by the parser of its profile key."""
    layer: dict[str, Any] = {
        key: PROFILE_SETTINGS[key].parse(flag, getattr(flags, key))
        for key, flag in _FLAG_NAMES.items()
        if key in PROFILE_SETTINGS and getattr(flags, key) is not None
    }
    if flags.headers:
        layer["headers"] = dict(parse_header(h) for h in flags.headers)
    return layer


@dataclass
class _Layer:
    """One source of settings: its description, its values, and its profile (if any)."""

    origin: str
    values: dict[str, Any]
    profile: tuple[str, Mapping[str, Any]] | None = None


def resolve(
    flags: Flags,
    env: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    with_secrets: bool = True,
) -> Settings:
    """Resolve the effective settings from flags, environment and config file.

    The layers are applied in the order of :data:`PRECEDENCE`. Headers merge across
    layers (a higher layer wins for the same name). Credentials are bound to
    their host: when another layer supplies the host, a profile's API key, client
    certificate and secret headers are not sent (its ``api_key_env``/``api_key_cmd`` is not even
    run), nor is ``OLLAMA_API_KEY`` when ``OLLAMA_HOST`` was overridden or the host
    is that of the chosen profile. ``with_secrets=False`` skips running key sources at all (for a
    caller that only needs the base URL, such as shell completion).
    """
    env = os.environ if env is None else env
    path = config_path()
    if config is None:
        config = load_config(path)
    layers = [_Layer("flag", _layer_from_flags(flags))]
    chosen = flags.profile or env.get("OLLAMACTL_PROFILE")
    if chosen:
        how = "--profile" if flags.profile else "OLLAMACTL_PROFILE"
        table = profile_table(config, chosen, path)
        layers.append(
            _Layer(
                f"profile {chosen!r} ({how})",
                layer_from_profile(table, chosen, path),
                (chosen, table),
            )
        )
    env_layer = _Layer("environment", _layer_from_env(env))
    layers.append(env_layer)
    default_profile = config.get("default_profile")
    if default_profile and not chosen:
        name = str(default_profile)
        table = profile_table(config, name, path)
        layers.append(
            _Layer(
                f"profile {name!r} (default_profile)",
                layer_from_profile(table, name, path),
                (name, table),
            )
        )
    _bind_credentials(layers, env_layer, env if with_secrets else None, path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    headers: dict[str, str] = {}
    for layer in reversed(layers):  # lowest first, so higher layers overwrite
        for key, value in layer.values.items():
            source = _describe_source(layer.origin, key)
            if key == "headers":
                headers.update(value)
            else:
                if key == "api_key":
                    check_header_value(str(value), f"the API key from {source}")
                values[key] = value
            sources[key] = source
    profile = chosen or (str(default_profile) if default_profile else None)
    if sources.get("fallback") != sources.get("host"):  # --host, OLLAMA_HOST: that server only
        values.pop("fallback", None)
    settings = Settings(  # every value was checked by its parser: the types are right
        host=parse_host(str(values.get("host", ""))),
        api_key=values.get("api_key") or None,
        headers=headers,
        ca_cert=values.get("ca_cert"),
        client_cert=values.get("client_cert"),
        client_key=values.get("client_key"),
        insecure_tls=values.get("insecure_tls", False),
        connect_timeout=float(values.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
        read_timeout=float(values.get("read_timeout", DEFAULT_READ_TIMEOUT)),
        retries=values.get("retries", DEFAULT_RETRIES),
        profile=profile,
        fallback=tuple(values.get("fallback", ())),
        defaults=dict(values.get("defaults", {})),
        sources=sources,
    )
    sources.setdefault("host", "default")
    for part, text in (("user name", settings.host.username), ("password", settings.host.password)):
        if text:
            check_header_value(text, f"the {part} in the host URL from {sources['host']}")
    check_client_certificate(settings.client_cert, settings.client_key, sources)
    return settings


def _bind_credentials(
    layers: list[_Layer], env_layer: _Layer, env: Mapping[str, str] | None, path: Path
) -> None:
    """Keep each credential with its host; resolve the API key of the profiles that keep theirs.

    A profile with a host that is not the one used loses its API key, client certificate and
    secret headers.
    ``OLLAMA_API_KEY`` goes with ``OLLAMA_HOST``: it is dropped when that host is overridden,
    or, without ``OLLAMA_HOST``, when the host is that of the profile chosen with ``--profile``
    or ``OLLAMACTL_PROFILE`` (it still overrides default_profile's key). ``env`` None: no key source
    of a profile runs (the profiles' API keys stay unresolved).
    """
    host_layer = next((layer for layer in layers if "host" in layer.values), None)
    for layer in layers:
        if layer.profile is None:
            continue
        if "host" in layer.values and layer is not host_layer:
            _drop_credentials(layer.values)
        elif env is not None:
            api_key = secret_from_profile(layer.profile[1], layer.profile[0], env, path)
            if api_key is not None:
                layer.values["api_key"] = api_key
    if host_layer is None or host_layer is env_layer:
        return
    chosen_profile = host_layer.profile is not None and layers.index(host_layer) < layers.index(
        env_layer
    )
    if "host" in env_layer.values or chosen_profile:
        env_layer.values.pop("api_key", None)


def _drop_credentials(layer: dict[str, Any]) -> None:
    """Remove the API key, client certificate and secret headers of a profile not in use."""
    for key in ("api_key", "client_cert", "client_key"):
        layer.pop(key, None)
    if "headers" in layer:
        layer["headers"] = {k: v for k, v in layer["headers"].items() if not is_secret_header(k)}


#: The command-line flag of each setting given by a flag.
_FLAG_NAMES = {
    "host": "--host",
    "api_key": "--api-key",
    "headers": "-H",
    "ca_cert": "--ca-cert",
    "client_cert": "--client-cert",
    "client_key": "--client-key",
    "insecure_tls": "--insecure-tls",
    "connect_timeout": "--connect-timeout",
    "read_timeout": "--read-timeout",
    "retries": "--retries",
}


def _describe_source(origin: str, key: str) -> str:
    if origin == "flag":
        return _FLAG_NAMES[key]
    if origin == "environment":
        return _ENV_NAMES[key]
    return origin
