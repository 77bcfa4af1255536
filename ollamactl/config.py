"""The settings in effect: the config file, and :func:`resolve` with its precedence.

Every setting is resolved by :func:`resolve` in one place, in the order of
:data:`PRECEDENCE` (highest first), which ``config show`` prints too. Hosts are parsed
in :mod:`ollamactl.hosts`, the keys of a profile are described in :mod:`ollamactl.profiles`.

This module never imports requests, so ``--help`` and completion stay fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollamactl.errors import ConfigError, UsageError
from ollamactl.hosts import DEFAULT_HOST, HostURL, is_secret_header, parse_header, parse_host
from ollamactl.mtls import check_client_certificate
from ollamactl.paths import config_dir, write_private_file
from ollamactl.profiles import layer_from_profile, profile_table, secret_from_profile

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_RETRIES = 2
CONFIG_FILE_NAME = "config.toml"
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
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e.strerror}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on old Pythons only
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"the config file {path} is not valid TOML: {e}") from None


def save_config(config: Mapping[str, Any], path: Path | None = None) -> None:
    """Write the config file atomically with mode 0600 (see :func:`write_private_file`)."""
    import tomli_w  # only here: reading the config never needs it

    path = path or config_path()
    try:
        data = tomli_w.dumps(config).encode()
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot write the config file {path}: {e}") from None
    try:
        write_private_file(path, data)
    except OSError as e:
        raise ConfigError(f"cannot write the config file {path}: {e.strerror or e}") from None


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
        """Every secret value in play, so that messages can redact them."""
        found = [self.api_key or "", self.host.password or ""]
        found += [v for k, v in self.headers.items() if is_secret_header(k)]
        return [s for s in found if len(s) >= 4]

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


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret in ``text`` with ``***``.

    >>> redact("token abc123 and https://u:pw12@h", ["abc123", "pw12"])
    'token *** and https://u:***@h'
    """
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


#: The environment variable of each setting read from the environment.
_ENV_NAMES = {
    "host": "OLLAMA_HOST",
    "api_key": "OLLAMA_API_KEY",
    "ca_cert": "OLLAMACTL_CA_CERT",
    "client_cert": "OLLAMACTL_CLIENT_CERT",
    "client_key": "OLLAMACTL_CLIENT_KEY",
}


def _layer_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {key: env[var] for key, var in _ENV_NAMES.items() if env.get(var)}


def _layer_from_flags(flags: Flags) -> dict[str, Any]:
    layer: dict[str, Any] = {
        key: getattr(flags, key)
        for key in (
            "host",
            "api_key",
            "ca_cert",
            "client_cert",
            "client_key",
            "insecure_tls",
            "connect_timeout",
            "read_timeout",
            "retries",
        )
        if getattr(flags, key) is not None
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
                f"profile {chosen!r} ({how})", layer_from_profile(table, chosen), (chosen, table)
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
                layer_from_profile(table, name),
                (name, table),
            )
        )
    _bind_credentials(layers, env_layer, env if with_secrets else None)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    headers: dict[str, str] = {}
    for layer in reversed(layers):  # lowest first, so higher layers overwrite
        for key, value in layer.values.items():
            source = _describe_source(layer.origin, key)
            if key == "headers":
                for name, text in value.items():
                    _check_header_value(text, f"the header {name!r} from {source}")
                headers.update(value)
            else:
                if key == "api_key":
                    _check_header_value(str(value), f"the API key from {source}")
                values[key] = value
            sources[key] = source
    profile = chosen or (str(default_profile) if default_profile else None)
    if sources.get("fallback") != sources.get("host"):  # --host, OLLAMA_HOST: that server only
        values.pop("fallback", None)
    try:
        settings = Settings(
            host=parse_host(str(values.get("host", ""))),
            api_key=values.get("api_key") or None,
            headers=headers,
            ca_cert=values.get("ca_cert"),
            client_cert=values.get("client_cert"),
            client_key=values.get("client_key"),
            insecure_tls=bool(values.get("insecure_tls", False)),
            connect_timeout=float(values.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
            read_timeout=float(values.get("read_timeout", DEFAULT_READ_TIMEOUT)),
            retries=int(values.get("retries", DEFAULT_RETRIES)),
            profile=profile,
            fallback=tuple(values.get("fallback", ())),
            defaults=dict(values.get("defaults", {})),
            sources=sources,
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid setting in {path}: {e}") from None
    sources.setdefault("host", "default")
    for part, text in (("user name", settings.host.username), ("password", settings.host.password)):
        if text:
            _check_header_value(text, f"the {part} in the host URL from {sources['host']}")
    if settings.ca_cert and not os.access(settings.ca_cert, os.R_OK):
        raise UsageError(
            f"cannot read the CA certificate file {settings.ca_cert!r} (from {sources['ca_cert']})"
        )
    check_client_certificate(settings.client_cert, settings.client_key, sources)
    return settings


def _bind_credentials(
    layers: list[_Layer], env_layer: _Layer, env: Mapping[str, str] | None
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
            api_key = secret_from_profile(layer.profile[1], layer.profile[0], env)
            if api_key is not None:
                layer.values["api_key"] = api_key
    if host_layer is None or host_layer is env_layer:
        return
    chosen_profile = host_layer.profile is not None and layers.index(host_layer) < layers.index(
        env_layer
    )
    if "host" in env_layer.values or chosen_profile:
        env_layer.values.pop("api_key", None)


def _check_header_value(text: str, what: str) -> None:
    """Refuse a value HTTP cannot carry in a header (line breaks, non-Latin-1), never showing it."""
    if "\r" in text or "\n" in text:
        raise UsageError(f"{what} contains a line break", hint="HTTP headers cannot carry one")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise UsageError(
            f"{what} contains characters HTTP headers cannot carry",
            hint="only Latin-1 characters are allowed; check for a pasted typographic character",
        ) from None


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
