"""The server itself: version, wait (until it answers) and exists (is a model there)."""

from __future__ import annotations

import dataclasses
import time

import click

from ollamactl import __version__
from ollamactl.app import App, echo_json, pass_app, warn
from ollamactl.completion import complete_models
from ollamactl.errors import (
    APIError,
    ConnectionFailed,
    ConnectTimeout,
    ModelNotFound,
    ServerTimeout,
    TLSFailed,
)
from ollamactl.options import json_option

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
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    help="Give up after this many seconds.",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.05),
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
@pass_app
def exists(app: App, model: str) -> None:
    """Exit 0 if MODEL is on the server, 5 if it is not; print nothing.

    \b
    Example:
      ollamactl exists llama3.2 || ollamactl pull llama3.2
    """
    try:
        app.client.show(model)
    except ModelNotFound:
        raise click.exceptions.Exit(5) from None
