"""version, wait and exists (the server and its models), and help (the program's)."""

from __future__ import annotations

import dataclasses
import time

import click

from ollamactl import __version__
from ollamactl.app import App, echo_json, pass_app, warn
from ollamactl.completion import complete_help_topics, complete_models, subcommand_context
from ollamactl.errors import (
    APIError,
    ConnectionFailed,
    ConnectTimeout,
    ModelNotFound,
    OllamactlError,
    ServerTimeout,
    TLSFailed,
    UsageError,
)
from ollamactl.options import Seconds, json_option

#: Seconds each try of `wait` may take at most (less when less time is left).
WAIT_TRY_SECONDS = 5.0
WAIT_LONGER_HINT = (
    "the server did not answer in time; `ollamactl wait --timeout SECONDS` waits longer"
)


@click.command()
@json_option()
@pass_app
def version(app: App, as_json: bool) -> None:
    """Show the client's and the server's versions.

    \b
    Example:
      ollamactl version --json
    """
    try:
        server = str(app.client.version().get("version", "unknown"))
    except ConnectionFailed:
        if not as_json:
            click.echo(f"ollamactl version is {__version__}")
        warn("could not connect to a running Ollama instance")
        raise
    if as_json:
        echo_json({"client": __version__, "server": server, "host": app.settings.base_url})
    else:
        click.echo(f"ollama version is {server}")
        click.echo(f"ollamactl version is {__version__}")


@click.command()
@click.option(
    "--timeout",
    type=Seconds(inclusive=True),
    default=60.0,
    show_default=True,
    help="Give up after this many seconds in all (a total deadline).",
)
@click.option(
    "--interval",
    type=Seconds(minimum=0.05, inclusive=True),
    default=0.5,
    show_default=True,
    help="Seconds between tries.",
)
@pass_app
def wait(app: App, timeout: float, interval: float) -> None:
    """Wait until the server answers (for CI: start the server, then `wait`).

    \b
    Example:
      ollamactl wait --timeout 120 && ollamactl pull llama3.2
    """
    from ollamactl.client import Client

    app.warn_about_transport(app.settings)
    deadline = time.monotonic() + timeout
    while True:
        # Each try gets no retries and no more than the time left, so `wait` ends in time.
        seconds = max(min(deadline - time.monotonic(), WAIT_TRY_SECONDS), 0.1)
        quick = dataclasses.replace(
            app.settings, connect_timeout=seconds, read_timeout=seconds, retries=0
        )
        client = Client(quick)
        try:
            with client.session:
                server = client.version().get("version", "unknown")
        except TLSFailed:
            raise  # a certificate problem does not go away by waiting
        except (ConnectionFailed, APIError) as e:
            if time.monotonic() + interval > deadline:
                timed_out = isinstance(e, (ServerTimeout, ConnectTimeout))
                raise ConnectionFailed(
                    f"the server at {app.settings.base_url} was not ready after {timeout:g}s"
                    f" (last error: {e.message})",
                    hint=WAIT_LONGER_HINT if timed_out else e.hint,
                ) from None
            time.sleep(interval)
            continue
        click.echo(f"server ready: ollama {server} at {app.settings.base_url}", err=True)
        return


@click.command()
@click.argument("model", shell_complete=complete_models)
@click.option(
    "-v", "--verbose", is_flag=True, help="Say the answer, or why there is none, on stderr."
)
@pass_app
def exists(app: App, model: str, verbose: bool) -> None:
    """Exit 0 if MODEL is on the server, 5 if it is not; print nothing.

    The exit code is the answer, and nothing is printed, not even why there
    is none: 3 when the server cannot be reached, 4 when it refuses the
    credentials, 1 for another server error (e.g. an invalid name). --verbose
    says the answer, or the error, on stderr.

    \b
    Examples:
      ollamactl exists llama3.2 || ollamactl pull llama3.2
      ollamactl exists -v llama3.2
    """
    try:
        app.client.show(model)
    except ModelNotFound:
        if verbose:
            click.echo(f"{model} is not on the server", err=True)
        raise click.exceptions.Exit(5) from None
    except OllamactlError as e:
        if verbose:
            raise
        raise click.exceptions.Exit(int(e.exit_code)) from None
    if verbose:
        click.echo(f"{model} is on the server", err=True)


@click.command("help")
@click.argument("command", nargs=-1, shell_complete=complete_help_topics)
@click.pass_context
def help_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show the help of ollamactl, or of COMMAND (as COMMAND --help).

    \b
    Examples:
      ollamactl help
      ollamactl help pull
      ollamactl help config profile add
    """
    shown = subcommand_context(ctx.find_root(), command)
    if shown is None:
        raise UsageError(
            f"unknown help topic {' '.join(command)!r}", hint="`ollamactl help` lists the commands"
        )
    click.echo(shown.get_help(), color=ctx.color)
