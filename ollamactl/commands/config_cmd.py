"""config: read and change the config file, and manage its profiles."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from ollamactl import render
from ollamactl.app import App, pass_app
from ollamactl.completion import complete_profiles
from ollamactl.config import PRECEDENCE, config_path, edited_config, load_config
from ollamactl.errors import ConfigError, UsageError
from ollamactl.fallback import check_fallbacks, forget
from ollamactl.hosts import HIDDEN, is_secret_header, parse_header, scrub_host
from ollamactl.mtls import check_client_certificate
from ollamactl.options import (
    ca_cert_option,
    client_cert_options,
    header_option,
    names_only_option,
)
from ollamactl.profiles import (
    API_KEY,
    PROFILE_NAME,
    PROFILE_SETTINGS,
    PROFILE_TABLES,
    check_profile_name,
    keys_of,
    parse_ca_cert_setting,
    parse_client_cert_setting,
    parse_client_key_setting,
    parse_host_setting,
    profile_table,
)
from ollamactl.terminal import Terminal

NOT_A_SETTING = "not a setting ollamactl reads"
DEFAULT_PROFILE_MEANING = "profile used when neither --profile nor OLLAMACTL_PROFILE is given"


def _subtable(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """``parent[key]`` as a table, created if missing; ConfigError if it holds a value."""
    table = parent.setdefault(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where} in {config_path()} must be a table")
    return table


def _profiles(config: dict[str, Any]) -> dict[str, Any]:
    return _subtable(config, "profiles", "profiles")


def _parse_setting(key: str, raw: str) -> tuple[list[str], Any]:
    """Check that ``key`` is settable and convert ``raw`` to its type."""
    parts = key.split(".")
    if len(parts) in (3, 4) and parts[0] == "profiles":
        check_profile_name(parts[1])
        if len(parts) == 3 and parts[2] in PROFILE_SETTINGS:
            return parts, PROFILE_SETTINGS[parts[2]].parse(key, raw)
        if len(parts) == 4 and parts[2] in PROFILE_TABLES and parts[3]:
            return parts, PROFILE_TABLES[parts[2]].parse(key, raw)
    if parts == ["default_profile"]:
        return parts, raw
    settings = ", ".join([*PROFILE_SETTINGS, *(f"{t}.NAME" for t in PROFILE_TABLES)])
    raise UsageError(
        f"unknown key {key!r}", hint=f"keys are default_profile and profiles.PROFILE.{{{settings}}}"
    )


def _lookup(config: dict[str, Any], key: str) -> tuple[dict[str, Any], str]:
    """The table holding dotted ``key`` and its last part; UsageError if it is not set."""
    *path, last = key.split(".")
    table: Any = config
    for part in path:
        table = table.get(part) if isinstance(table, dict) else None
    if not isinstance(table, dict) or last not in table:
        raise UsageError(f"{key} is not set in {config_path()}")
    return table, last


def _read_secret(prompt: str, terminal: Terminal) -> str:
    """A secret from stdin: a hidden prompt on a terminal, else the first line (UTF-8)."""
    if terminal.stdin_is_tty:
        value = click.prompt(prompt, hide_input=True, err=True)
    else:
        value = terminal.read_secret_line(prompt.lower())
    value = value.strip()
    if not value:
        raise UsageError(f"no {prompt.lower()} on stdin")
    return value


def _saved(message: str) -> None:
    click.echo(f"{message} ({config_path()})", err=True)


def _drop_profile(config: dict[str, Any], name: str) -> None:
    """Remove a profile, and default_profile with it if it named that profile."""
    del _profiles(config)[name]
    for other in forget(_profiles(config), name):
        click.echo(f"removed '{name}' from the fallback of '{other}'", err=True)
    if config.get("default_profile") == name:
        del config["default_profile"]
        click.echo(f"'{name}' was the default profile; there is no default profile now", err=True)


def _complete_keys(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Dotted keys of the config file, and the settable keys of its profiles."""
    try:
        config = load_config()
    except UsageError:
        return []
    keys = {"default_profile"}
    profiles = config.get("profiles")
    for name, table in (profiles if isinstance(profiles, dict) else {}).items():
        keys |= {f"profiles.{name}.{setting}" for setting in PROFILE_SETTINGS}
        for sub in PROFILE_TABLES:
            entries = table.get(sub) if isinstance(table, dict) else None
            keys |= {f"profiles.{name}.{sub}.{k}" for k in entries or {}}
    return sorted(k for k in keys if k.startswith(incomplete))


def _complete_fallback(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Profile names for the last name of ``A,B,...``."""
    done, comma, last = incomplete.rpartition(",")
    return [f"{done}{comma}{name}" for name in complete_profiles(ctx, param, last)]


# -- config show ------------------------------------------------------------------------


def _toml_key(key: str) -> str:
    return key if PROFILE_NAME.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value}).partition(" = ")[2].rstrip("\n")


def _meaning(parts: list[str], default_profile: Any) -> str:
    """Where the value at ``parts`` applies, for the comments of ``config show``."""
    if parts == ["default_profile"]:
        return DEFAULT_PROFILE_MEANING
    if parts == ["profiles"]:
        return ""
    if parts[0] != "profiles":
        return NOT_A_SETTING
    name = parts[1]
    if len(parts) == 2:
        default = "; the default profile" if name == default_profile else ""
        return f"used with --profile {name} or OLLAMACTL_PROFILE={name}{default}"
    if len(parts) == 3:
        setting = PROFILE_SETTINGS.get(parts[2]) or PROFILE_TABLES.get(parts[2])
        return setting.meaning if setting else NOT_A_SETTING
    return "" if len(parts) == 4 and parts[2] in PROFILE_TABLES else NOT_A_SETTING


def _shown(parts: list[str], value: Any) -> Any:
    """The value as ``config show`` prints it: secrets replaced by ***.

    Whatever the value (a hand-edited file may hold anything): a host's password, and the
    arguments of ``api_key_cmd`` (``echo TOKEN`` is a command too), are hidden.
    """
    if parts[-1] == "api_key" or (
        len(parts) == 4 and parts[2] == "headers" and is_secret_header(parts[3])
    ):
        return HIDDEN
    if parts[-1] == "host" and isinstance(value, str):
        return scrub_host(value)
    if parts[-1] == "api_key_cmd" and isinstance(value, str):
        program, _, arguments = value.strip().partition(" ")
        return f"{program} {HIDDEN}" if arguments.strip() else program
    return value


def _annotated_table(parts: list[str], table: dict[str, Any], default_profile: Any) -> list[str]:
    """TOML lines for a table and its sub-tables, each value commented with its meaning."""
    lines: list[str] = []
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, dict)]
    meaning = _meaning(parts, default_profile) if parts else ""
    if parts and (scalars or meaning or not table):
        heading = "[" + ".".join(_toml_key(p) for p in parts) + "]"
        lines += ["", f"{heading}  # {meaning}" if meaning else heading]
    assignments = [
        (f"{_toml_key(k)} = {_toml_value(_shown([*parts, k], v))}", [*parts, k]) for k, v in scalars
    ]
    width = max((len(text) for text, _ in assignments), default=0)
    for text, path in assignments:
        meaning = _meaning(path, default_profile)
        lines.append(f"{text.ljust(width)}  # {meaning}" if meaning else text)
    for key, value in table.items():
        if isinstance(value, dict):
            lines += _annotated_table([*parts, key], value, default_profile)
    return lines


def _environment_notes() -> list[str]:
    notes = []
    if os.environ.get("OLLAMACTL_PROFILE"):
        notes.append(f"# OLLAMACTL_PROFILE={os.environ['OLLAMACTL_PROFILE']} chooses the profile")
    for var, key in (
        ("OLLAMA_HOST", "host"),
        ("OLLAMA_API_KEY", "api_key"),
        ("OLLAMACTL_CA_CERT", "ca_cert"),
        ("OLLAMACTL_CLIENT_CERT", "client_cert"),
        ("OLLAMACTL_CLIENT_KEY", "client_key"),
    ):
        if os.environ.get(var):
            notes.append(
                f"# {var} is set: it overrides the {key} of default_profile,"
                " not of --profile/OLLAMACTL_PROFILE"
            )
    return notes


# -- commands ---------------------------------------------------------------------------


@click.group("config")
def config_group() -> None:
    """Read and change the config file, and manage its profiles.

    The file is TOML (config.toml in the user config dir, or in
    $OLLAMACTL_CONFIG_DIR). Changes are written atomically with mode 0600;
    comments in the file are not kept. Keys are dotted: default_profile,
    profiles.NAME.host, profiles.NAME.options.num_ctx, ...

    \b
    Examples:
      ollamactl config profile add gpu --host https://gw.example.com --api-key-env GPU_TOKEN
      ollamactl config set profiles.gpu.options.num_ctx 8192
      ollamactl config show
    """


@config_group.command("path")
def config_path_cmd() -> None:
    """Print the path of the config file (it may not exist yet).

    \b
    Example:
      ${EDITOR:-vi} "$(ollamactl config path)"
    """
    click.echo(str(config_path()))


@config_group.command("show")
def config_show() -> None:
    """Print the config file with secrets hidden and each value explained.

    The output is TOML: every value carries a comment saying where it
    applies, and API keys, passwords in URLs and secret-looking headers are
    replaced by ***. Use `config get` to print one value as stored.

    \b
    Example:
      ollamactl config show
    """
    path = config_path()
    config = load_config(path)
    lines = [f"# {path}" + ("" if path.exists() else " (does not exist yet)")]
    lines += [f"# Precedence: {PRECEDENCE[0]}", *(f"#   > {layer}" for layer in PRECEDENCE[1:])]
    lines += _environment_notes()
    lines += _annotated_table([], config, config.get("default_profile"))
    click.echo("\n".join(lines))


@config_group.command("get")
@click.argument("key", shell_complete=_complete_keys)
def config_get(key: str) -> None:
    """Print the value of KEY as stored (secrets included); exit 2 if it is not set.

    Strings print as they are, other values as JSON, tables as TOML.

    \b
    Examples:
      ollamactl config get default_profile
      ollamactl config get profiles.gpu.options
    """
    table, last = _lookup(load_config(), key)
    value = table[last]
    if isinstance(value, dict):
        import tomli_w

        click.echo(tomli_w.dumps(value), nl=False)
    else:
        click.echo(value if isinstance(value, str) else json.dumps(value))


@config_group.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key", shell_complete=_complete_keys)
@click.argument("value")
@pass_app
def config_set(app: App, key: str, value: str) -> None:
    """Set KEY to VALUE, checked and typed for that key.

    Numbers, true/false, URLs and keep_alive durations are checked for the
    key they go to; options.NAME must be a model option, typed as -o types
    it (8192, 0.7, true; stop also takes a JSON list such as ["</s>"]). A
    VALUE of - is read from stdin, so a secret stays out of shell history.
    A profile has one API key source: setting api_key, api_key_env or
    api_key_cmd removes the other two.

    \b
    Examples:
      ollamactl config set default_profile gpu
      ollamactl config set profiles.gpu.model llama3.2
      ollamactl config set profiles.gpu.options.temperature 0.2
      ollamactl config set profiles.gpu.keep_alive -1
      ollamactl config set profiles.gpu.headers.CF-Access-Client-Secret - < secret.txt
    """
    if value == "-":
        value = _read_secret("Value", app.terminal)
    parts, typed = _parse_setting(key, value)
    with edited_config() as config:
        if parts == ["default_profile"]:
            profile_table(config, typed, config_path())
            config["default_profile"] = typed
        else:
            profile = _subtable(_profiles(config), parts[1], ".".join(parts[:2]))
            if len(parts) == 4:
                _subtable(profile, parts[2], ".".join(parts[:3]))[parts[3]] = typed
            else:
                if parts[2] in keys_of(API_KEY):
                    for other in keys_of(API_KEY):
                        if other != parts[2] and profile.pop(other, None) is not None:
                            click.echo(f"removed profiles.{parts[1]}.{other}", err=True)
                profile[parts[2]] = typed
                if parts[2] == "fallback":
                    check_fallbacks(_profiles(config))
    _saved(f"set {key}")


@config_group.command("unset")
@click.argument("key", shell_complete=_complete_keys)
def config_unset(key: str) -> None:
    """Remove KEY from the config file; exit 2 if it is not set.

    Removing a whole profile (profiles.NAME) also clears default_profile if it
    named that profile.

    \b
    Examples:
      ollamactl config unset profiles.gpu.options.num_ctx
      ollamactl config unset default_profile
    """
    with edited_config() as config:
        table, last = _lookup(config, key)
        parts = key.split(".")
        if len(parts) == 2 and parts[0] == "profiles":
            _drop_profile(config, last)
        else:
            del table[last]
            if len(parts) == 4 and parts[0] == "profiles" and not table:
                del config["profiles"][parts[1]][parts[2]]  # no empty [profiles.x.options] left
    _saved(f"unset {key}")


@config_group.group("profile")
def profile_group() -> None:
    """Add, list, choose and remove profiles: named servers with their credentials.

    A profile is used with --profile NAME or OLLAMACTL_PROFILE=NAME, or always
    once it is the default (`profile use NAME`). Besides the connection it can
    hold defaults for run and chat: model, options, keep_alive.

    \b
    Examples:
      ollamactl config profile add lab --host lab.internal:11434 --default
      ollamactl config profile list
      ollamactl --profile lab ps
    """


@profile_group.command("add")
@click.argument("name")
@click.option("--host", required=True, metavar="URL", help="Server URL of this profile.")
@click.option(
    "--api-key-env", metavar="VAR", help="Read the bearer token from $VAR when a command runs."
)
@click.option(
    "--api-key-cmd",
    metavar="COMMAND",
    help="Run COMMAND to get the bearer token (e.g. 'pass show gpu-token').",
)
@click.option(
    "--api-key-stdin",
    is_flag=True,
    help="Read the bearer token from stdin and keep it in the file (mode 0600).",
)
@header_option
@ca_cert_option
@client_cert_options
@click.option(
    "--fallback",
    metavar="A,B",
    help="Profiles to try in order when this server cannot be reached (refused, DNS, timeout).",
    shell_complete=_complete_fallback,
)
@click.option("--default", "make_default", is_flag=True, help="Make it the default profile.")
@pass_app
def profile_add(
    app: App,
    name: str,
    host: str,
    api_key_env: str | None,
    api_key_cmd: str | None,
    api_key_stdin: bool,
    headers: tuple[str, ...],
    ca_cert: str | None,
    client_cert: str | None,
    client_key: str | None,
    fallback: str | None,
    make_default: bool,
) -> None:
    """Add a profile NAME for the server at URL.

    Give the API key as a reference, so the file holds no secret:
    --api-key-env (an environment variable) or --api-key-cmd (a command
    such as a password manager); --api-key-stdin stores the value itself.

    \b
    Examples:
      ollamactl config profile add gpu --host https://abc.gw.example.com/ollama-api \\
          --api-key-env GPU_TOKEN --default
      pass show gpu-token | ollamactl config profile add gpu --host https://gw --api-key-stdin
      ollamactl config profile add lab --host lab:11434 -H 'X-Team: ml' --ca-cert ca.pem
      ollamactl config profile add corp --host https://ollama.corp --client-cert me.pem \\
          --client-key me.key
      ollamactl config profile add gpu --host https://gpu.lab --fallback lab,local
    """
    if sum(map(bool, (api_key_env, api_key_cmd, api_key_stdin))) > 1:
        raise UsageError("give at most one of --api-key-env, --api-key-cmd and --api-key-stdin")
    check_profile_name(name)
    table: dict[str, Any] = {"host": parse_host_setting("--host", host)}
    if api_key_env:
        table["api_key_env"] = PROFILE_SETTINGS["api_key_env"].parse("--api-key-env", api_key_env)
    if api_key_cmd:
        table["api_key_cmd"] = PROFILE_SETTINGS["api_key_cmd"].parse("--api-key-cmd", api_key_cmd)
    if api_key_stdin:
        secret = _read_secret("API key", app.terminal)
        table["api_key"] = PROFILE_SETTINGS["api_key"].parse("stdin", secret)
    if headers:
        table["headers"] = dict(parse_header(h) for h in headers)
    if ca_cert:
        table["ca_cert"] = parse_ca_cert_setting("--ca-cert", ca_cert)
    if client_cert:
        table["client_cert"] = parse_client_cert_setting("--client-cert", client_cert)
    if client_key:
        table["client_key"] = parse_client_key_setting("--client-key", client_key)
    check_client_certificate(
        table.get("client_cert"),
        table.get("client_key"),
        {"client_cert": "--client-cert", "client_key": "--client-key"},
    )
    if fallback:
        table["fallback"] = PROFILE_SETTINGS["fallback"].parse("--fallback", fallback)
    with edited_config() as config:
        if name in _profiles(config):
            raise UsageError(
                f"profile {name!r} already exists",
                hint=f"change it with `ollamactl config set profiles.{name}.KEY VALUE`"
                f" or remove it with `ollamactl config profile rm {name}`",
            )
        _profiles(config)[name] = table
        check_fallbacks(_profiles(config))
        if make_default:
            config["default_profile"] = name
    _saved(f"added profile '{name}'" + (" as the default" if make_default else ""))


@profile_group.command("list")
@names_only_option("profile")
def profile_list(quiet: bool) -> None:
    """List the profiles: NAME, HOST, and DEFAULT (* for the default profile).

    \b
    Examples:
      ollamactl config profile list
      for p in $(ollamactl config profile list -q); do ollamactl --profile "$p" ps; done
    """
    config = load_config()
    profiles = _profiles(config)
    if quiet:
        for name in profiles:
            click.echo(name)
        return
    default = config.get("default_profile")
    rows = [
        [
            name,
            str(_shown(["profiles", name, "host"], table.get("host", ""))),
            "*" if name == default else "",
        ]
        for name, table in profiles.items()
        if isinstance(table, dict)
    ]
    click.echo(render.table(rows, header=["NAME", "HOST", "DEFAULT"]), nl=False)


@profile_group.command("use")
@click.argument("name", shell_complete=complete_profiles)
def profile_use(name: str) -> None:
    """Make NAME the default profile (default_profile in the file).

    \b
    Example:
      ollamactl config profile use gpu
    """
    with edited_config() as config:
        profile_table(config, name, config_path())
        config["default_profile"] = name
    _saved(f"default profile is now '{name}'")


@profile_group.command("rm")
@click.argument("name", shell_complete=complete_profiles)
def profile_rm(name: str) -> None:
    """Remove the profile NAME (and default_profile if it named it).

    \b
    Example:
      ollamactl config profile rm old-lab
    """
    with edited_config() as config:
        profile_table(config, name, config_path())
        _drop_profile(config, name)
    _saved(f"removed profile '{name}'")
