"""The root command: global options, the command table, errors to exit codes.

This module must stay cheap to import (``--help``, ``--version`` and shell
completion run it): requests and tqdm are imported only when a command needs
the network or a progress bar, and a command's module only when it is used.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from ollamactl import __version__
from ollamactl.errors import Interrupted, OllamactlError, exit_code_table
from ollamactl.options import AliasOption, ca_cert_option, client_cert_options, header_option
from ollamactl.terminal import (
    BROKEN_PIPE_EXIT,
    OutputClosed,
    Terminated,
    guard_standard_streams,
    sanitise,
)

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

EPILOG = (
    "\b\nExit codes:\n"
    + "".join(f"  {line}\n" for line in exit_code_table().splitlines())
    + """
\b
Environment variables:
  OLLAMA_HOST         server URL, e.g. https://gw.example.com/ollama-api
  OLLAMA_API_KEY      bearer token sent to that server
  OLLAMACTL_PROFILE   profile of the config file to use
  OLLAMACTL_CONFIG_DIR  folder of config.toml (default: the user config dir)
  OLLAMACTL_CACHE_DIR   folder of the completion cache (default: the user cache dir)
  OLLAMACTL_CA_CERT   CA bundle for TLS verification (or REQUESTS_CA_BUNDLE)
  OLLAMACTL_CLIENT_CERT, OLLAMACTL_CLIENT_KEY  client certificate and key (mutual TLS)
"""
)


def _complete_profiles(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from ollamactl.completion import complete_profiles

    return complete_profiles(ctx, param, incomplete)


class Entry(NamedTuple):
    """A command of the table: where it is (``module:attribute``) and what it does."""

    target: str
    summary: str


#: Every command, registered explicitly, with its one-line summary (as pip's command table).
#: A command's module is imported only when that command is used: ``--version`` and
#: ``--help`` pay for click and this file alone, ``run --help`` or a TAB press on ``run``
#: also for the run module (never for requests or tqdm).
COMMANDS: dict[str, Entry] = {
    "run": Entry(
        "ollamactl.commands.run:run", "Run a model: answer PROMPT, or chat in a REPL on a terminal."
    ),
    "batch": Entry(
        "ollamactl.commands.batch:batch",
        "Answer many prompts: one JSON line out per line in, over one or more servers.",
    ),
    "chat": Entry(
        "ollamactl.commands.chat:chat", "Chat with a model; conversations are saved locally."
    ),
    "embed": Entry(
        "ollamactl.commands.embed:embed",
        "Compute embeddings: one JSON array per input, one per line.",
    ),
    "create": Entry("ollamactl.commands.transfer:create", "Create a model from a Modelfile."),
    "pull": Entry(
        "ollamactl.commands.transfer:pull", "Pull models from a registry onto the server."
    ),
    "push": Entry(
        "ollamactl.commands.transfer:push", "Push a model from the server to a registry."
    ),
    "list": Entry(
        "ollamactl.commands.models:list_models", "List the models on the server (alias: ls)."
    ),
    "ls": Entry(
        "ollamactl.commands.models:list_models", "List the models on the server (alias: ls)."
    ),
    "ps": Entry("ollamactl.commands.models:ps", "List the models loaded in memory."),
    "show": Entry("ollamactl.commands.models:show", "Show information about a model."),
    "cp": Entry("ollamactl.commands.models:cp", "Copy a model under a new name."),
    "rm": Entry(
        "ollamactl.commands.models:rm",
        "Remove models (glob patterns match the server's model names).",
    ),
    "stop": Entry("ollamactl.commands.models:stop", "Unload a running model from memory."),
    "version": Entry(
        "ollamactl.commands.server:version", "Show the client's and the server's versions."
    ),
    "wait": Entry("ollamactl.commands.server:wait", "Wait until the server answers (for CI)."),
    "exists": Entry(
        "ollamactl.commands.server:exists", "Exit 0 if MODEL is on the server, 5 if it is not."
    ),
    "outdated": Entry(
        "ollamactl.commands.outdated:outdated",
        "List the models whose registry has a newer version.",
    ),
    "du": Entry("ollamactl.commands.du:du", "Show the disk and memory the models use."),
    "doctor": Entry(
        "ollamactl.commands.doctor:doctor", "Diagnose the connection to the server, step by step."
    ),
    "config": Entry(
        "ollamactl.commands.config_cmd:config_group",
        "Read and change the config file, and manage its profiles.",
    ),
    "completion": Entry(
        "ollamactl.completion:completion",
        "Print the shell completion script for bash, zsh or fish.",
    ),
    "help": Entry("ollamactl.commands.server:help_command", "Help about any command."),
}
#: Commands that change the server's models or the ones in memory: the completion cache of
#: that server is dropped after them, so the next TAB offers what is there now.
CHANGES_MODELS = frozenset(("pull", "cp", "create", "rm", "run", "chat", "embed", "batch", "stop"))


class OllamaGroup(click.Group):
    """The root group: loads commands on demand; every ollamactl error becomes one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, _, attribute = entry.target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        command.short_help = entry.summary  # the table is where summaries are written
        return command

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names from the table (no command module is imported), then options."""
        from click.shell_completion import CompletionItem

        names = [
            CompletionItem(name, help=entry.summary)
            for name, entry in sorted(COMMANDS.items())
            if name.startswith(incomplete)
        ]
        return names + click.Command.shell_complete(self, ctx, incomplete)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands with their summaries from the table, without importing any of them."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name].summary) for name in sorted(COMMANDS)])

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:  # bare `ollamactl`: help, exit 0 (as Go)
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit()
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OllamactlError as e:
            _report(ctx, e)
        except Terminated as e:  # SIGTERM, SIGHUP, a broken pipe: what Ctrl-C keeps is kept
            if not isinstance(e, OutputClosed):  # a reader that went away wants no message
                click.echo("terminated", err=True)
            ctx.exit(128 + e.signum)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)  # commands that say more raise Interrupted
            _report(ctx, Interrupted("interrupted"))
        finally:
            if ctx.invoked_subcommand in CHANGES_MODELS and ctx.obj is not None:
                from ollamactl.completion import forget_server  # ctx.obj: the App of cli()

                forget_server(ctx.obj.flags)
        return None


def _report(ctx: click.Context, error: OllamactlError) -> None:
    """The error as one line on stderr (no secret, no control character), then its exit code."""
    from ollamactl.app import App  # here and in cli(): --version, --help and TAB need neither

    app = ctx.find_object(App)
    scrub = app.redact if app else sanitise
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
@client_cert_options
@click.option(
    "--insecure-tls", is_flag=True, default=None, help="Do not verify TLS certificates (unsafe)."
)
@click.option(
    "--connect-timeout",
    metavar="SECONDS",
    help="Longest wait for each connection (TCP and TLS) [default: 5].",
)
@click.option(
    "--read-timeout",
    "read_timeout",
    cls=AliasOption,
    aliases=("--timeout",),
    metavar="SECONDS",
    help="Idle timeout: longest wait for the next bytes [default: 300].",
)
@click.option(
    "--retries",
    metavar="N",
    help="Retries of each idempotent HTTP request, 0-10 [default: 2].",
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
      ollamactl --host https://ollama.corp --client-cert me.pem --client-key me.key ps
    """
    from ollamactl.app import App
    from ollamactl.config import Flags

    app = ctx.obj = App(Flags(headers=headers, **flags), debug=debug)  # redacts what was given
    app.flags = app.flags.checked()  # every value through its key's parser: exit 2 if bad
    if debug:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("debug: %(message)s"))
        logger = logging.getLogger("ollamactl")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM/SIGHUP: unwind as Ctrl-C does, so a partial answer is saved; a second one kills."""
    signal.signal(signum, signal.SIG_DFL)
    raise Terminated(signum)


def main() -> None:
    """Console-script entry point.

    The standard streams are guarded first (see :func:`guard_standard_streams`): a broken
    pipe ends with 141, as a shell reports a process that SIGPIPE ended, and quietly.
    """
    if os.environ.get("_OLLAMACTL_COMPLETE"):
        # A TAB press: register ollamactl's own shell classes (click's public
        # add_completion_class) before click looks the shell up.
        import ollamactl.completion  # noqa: F401
    streams = guard_standard_streams()
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _terminate)
    try:
        cli(prog_name="ollamactl")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    except OutputClosed:
        code = BROKEN_PIPE_EXIT
    sys.exit(streams.exit_code(code))
