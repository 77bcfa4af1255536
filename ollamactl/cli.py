"""The root command: global options, the App context object, errors to exit codes.

This module must stay cheap to import (``--help``, ``--version`` and shell
completion run it): requests and tqdm are imported only when a command needs
the network or a progress bar.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ollamactl import __version__
from ollamactl.config import Flags, Settings, _is_secret_header, redact, resolve
from ollamactl.errors import ExitCode, Interrupted, OllamactlError

if TYPE_CHECKING:
    from ollamactl.client import Client

EPILOG = """\b
Exit codes:
  0    success
  1    the server answered with an error
  2    usage error (bad flag, host, profile or file)
  3    cannot connect: refused, DNS, TLS, timeout, connection lost
  4    authentication or authorization refused (HTTP 401/403)
  5    model not found
  130  interrupted (Ctrl-C)

\b
Environment variables:
  OLLAMA_HOST         server URL, e.g. https://gw.example.com/ollama-api
  OLLAMA_API_KEY      bearer token sent to that server
  OLLAMACTL_PROFILE   profile of the config file to use
  OLLAMACTL_CONFIG_DIR  folder of config.toml (default: the user config dir)
  OLLAMACTL_CACHE_DIR   folder of the completion cache (default: the user cache dir)
  OLLAMACTL_CA_CERT   CA bundle for TLS verification (or REQUESTS_CA_BUNDLE)
"""


class App:
    """What every command receives: the resolved settings and a lazily built client."""

    def __init__(self, flags: Flags, *, debug: bool = False) -> None:
        self.flags = flags
        self.debug = debug
        self._settings: Settings | None = None
        self._client: Client | None = None

    @property
    def settings(self) -> Settings:
        """The effective settings (resolved on first use)."""
        if self._settings is None:
            self._settings = resolve(self.flags)
        return self._settings

    @property
    def client(self) -> Client:
        """The HTTP client (built, and requests imported, on first use)."""
        if self._client is None:
            from ollamactl.client import Client

            settings = self.settings
            self.warn_about_transport(settings)
            self._client = Client(settings)
        return self._client

    def warn_about_transport(self, settings: Settings) -> None:
        """Warn (stderr) about disabled TLS checks and credentials sent over plain http://."""
        if settings.insecure_tls:
            warn("TLS certificate verification is disabled (--insecure-tls)")
        sends_credentials = bool(
            settings.api_key
            or settings.host.password
            or any(_is_secret_header(name) for name in settings.headers)
        )
        if sends_credentials and settings.host.scheme == "http" and not settings.host.is_loopback:
            warn(
                f"credentials are sent over plain http:// to {settings.host.host};"
                " use https:// to keep them private"
            )

    def redact(self, text: str) -> str:
        """Remove every known secret from ``text`` (safe even if settings failed to resolve)."""
        secrets = list(filter(None, [self.flags.api_key]))
        if self._settings is not None:
            secrets += self._settings.secrets
        return redact(text, secrets)


pass_app = click.make_pass_decorator(App)
F = TypeVar("F", bound=Callable[..., Any])

#: ``-H`` and ``--ca-cert``: global options, and fields of ``config profile add``.
header_option = click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="HTTP header for every request (repeatable).",
)
ca_cert_option = click.option(
    "--ca-cert", metavar="PATH", help="CA bundle to verify the server's certificate."
)


def json_option(func: F) -> F:
    """``--json``: print the API objects as returned, for scripts."""
    return click.option("--json", "as_json", is_flag=True, help="Print the API response as JSON.")(
        func
    )


def echo_json(value: Any) -> None:
    """Print a value as JSON on stdout."""
    from ollamactl import render

    click.echo(render.to_json(value))


def _complete_profiles(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from ollamactl.completion import complete_profiles

    return complete_profiles(ctx, param, incomplete)


def warn(message: str) -> None:
    """Write a warning line to stderr."""
    click.echo(f"Warning: {message}", err=True)


#: Every command, registered explicitly as name -> "module:attribute". A command's module is
#: imported only when that command is used (``--help`` imports them all to list them), so
#: ``--version`` pays for click and this file alone, and ``run --help`` or a TAB press on
#: ``run`` also for the generate module (never for requests or tqdm).
COMMANDS: dict[str, str] = {
    "run": "ollamactl.commands.generate:run",
    "batch": "ollamactl.commands.batch:batch",
    "chat": "ollamactl.commands.generate:chat",
    "embed": "ollamactl.commands.generate:embed",
    "create": "ollamactl.commands.transfer:create",
    "pull": "ollamactl.commands.transfer:pull",
    "push": "ollamactl.commands.transfer:push",
    "list": "ollamactl.commands.models:list_models",
    "ls": "ollamactl.commands.models:list_models",
    "ps": "ollamactl.commands.models:ps",
    "show": "ollamactl.commands.models:show",
    "cp": "ollamactl.commands.models:cp",
    "rm": "ollamactl.commands.models:rm",
    "stop": "ollamactl.commands.models:stop",
    "version": "ollamactl.commands.models:version",
    "wait": "ollamactl.commands.models:wait",
    "exists": "ollamactl.commands.models:exists",
    "doctor": "ollamactl.commands.doctor:doctor",
    "config": "ollamactl.commands.config_cmd:config_group",
    "completion": "ollamactl.completion:completion",
}


class OllamaGroup(click.Group):
    """The root group: loads commands on demand; every ollamactl error becomes one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OllamactlError as e:
            _report(ctx, e)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)  # commands that say more raise Interrupted
            _report(ctx, Interrupted("interrupted"))
        return None


def _report(ctx: click.Context, error: OllamactlError) -> None:
    app = ctx.find_object(App)
    scrub = app.redact if app else (lambda text: text)
    if app and app.debug:
        import traceback

        click.echo(
            scrub("".join(traceback.format_exception(type(error), error, error.__traceback__))),
            err=True,
        )
    if not isinstance(error, Interrupted):
        click.echo(f"Error: {scrub(str(error))}", err=True)
    ctx.exit(int(error.exit_code))


@click.group(
    cls=OllamaGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "-v", "--version", message="ollamactl version %(version)s")
@click.option(
    "--host",
    metavar="URL",
    help="Server URL (env OLLAMA_HOST), e.g. https://gw.example.com/ollama-api or :11434.",
)
@click.option(
    "--profile",
    metavar="NAME",
    help="Use a profile of the config file (env OLLAMACTL_PROFILE).",
    shell_complete=_complete_profiles,
)
@click.option("--api-key", metavar="TOKEN", help="Bearer token (env OLLAMA_API_KEY).")
@header_option
@ca_cert_option
@click.option(
    "--insecure-tls", is_flag=True, default=None, help="Do not verify TLS certificates (unsafe)."
)
@click.option(
    "--connect-timeout", type=float, metavar="SECONDS", help="Connect timeout [default: 5]."
)
@click.option(
    "--timeout",
    "read_timeout",
    type=float,
    metavar="SECONDS",
    help="Idle timeout: longest wait for the next bytes [default: 300].",
)
@click.option(
    "--retries", type=click.IntRange(0, 10), help="Retries for idempotent requests [default: 2]."
)
@click.option(
    "--debug", is_flag=True, help="Log HTTP requests and show tracebacks (secrets redacted)."
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, headers: tuple[str, ...], **flags: Any) -> None:
    """A command-line client for Ollama servers, local or remote.

    The commands of `ollama` (run, pull, list, ps, show, cp, rm, ...) over the
    REST API, with what remote use needs: HTTPS and path-prefixed gateways,
    tokens and headers, CA bundles, profiles, JSON output and exit codes.

    \b
    Examples:
      ollamactl list
      ollamactl --host https://abc.gw.example.com/ollama-api ps --json
      OLLAMA_HOST=lab:11434 ollamactl show llama3.2
    """
    ctx.obj = App(Flags(headers=headers, **flags), debug=debug)
    if debug:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("debug: %(message)s"))
        logger = logging.getLogger("ollamactl")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


def main() -> None:
    """Console-script entry point."""
    if os.environ.get("_OLLAMACTL_COMPLETE"):
        # A TAB press: register ollamactl's own shell classes (click's public
        # add_completion_class) before click looks the shell up.
        import ollamactl.completion  # noqa: F401
    cli(prog_name="ollamactl")


__all__ = ["App", "ExitCode", "cli", "echo_json", "json_option", "main", "pass_app", "warn"]
