"""The models on a server: list, ps, show, cp, rm, stop."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ollamactl import render
from ollamactl.app import App, echo_json, pass_app, warn
from ollamactl.completion import complete_models, complete_running_models
from ollamactl.errors import (
    ModelNotFound,
    OllamactlError,
    UsageError,
)
from ollamactl.fleet import Models, ask_every_profile
from ollamactl.options import (
    all_profiles_option,
    json_option,
    listing_options,
    names_only_option,
)
from ollamactl.tables import (
    FLEET_COLUMNS,
    LIST_COLUMNS,
    LIST_SORTS,
    PS_COLUMNS,
    PS_SORTS,
    Column,
    SortKey,
    choose_format,
    delimited,
    matching,
    sort_models,
)
from ollamactl.terminal import sanitise

if TYPE_CHECKING:
    from ollamactl.client import Client


SHOW_VIEWS = ("license", "modelfile", "parameters", "system", "template")


def _with_first_column(title: str, cells: list[str], table: str) -> str:
    """Prepend a column to a table of ``render.table`` (a header line, then a line per row)."""
    width = max(len(cell) for cell in [title, *cells])
    lines = table.splitlines()
    return "".join(
        f"{cell.ljust(width)}{render.TABLE_PADDING}{line}\n"
        for cell, line in zip([title, *cells], lines)
    )


@dataclass(frozen=True)
class Listing:
    """How list or ps prints its models: the format and order asked for, and its columns."""

    output_format: str
    headers: bool
    sort: SortKey | None
    render_table: Callable[[Models], str]
    columns: tuple[Column, ...]

    def print(self, models: Models, errors: list[dict[str, str]] | None = None) -> None:
        """Print ``models`` (``errors``: the hosts that failed, in JSON with --all-profiles)."""
        models = sort_models(models, self.sort)
        if self.output_format == "json":
            echo_json({"models": models, **({"errors": errors} if errors else {})})
        elif self.output_format == "names":
            for m in models:
                click.echo(m.get("name", ""))
        elif self.output_format == "table":
            text = self.render_table(models)
            click.echo(text if self.headers else text.partition("\n")[2], nl=False)
        else:
            columns = self.columns if errors is None else (*FLEET_COLUMNS, *self.columns)
            click.echo(
                delimited(models, columns, self.output_format, headers=self.headers), nl=False
            )


def _show_models(
    app: App, fetch: Callable[[Client], Models], listing: Listing, *, all_profiles: bool
) -> None:
    """Print the models of one server, or of every profile with a HOST column."""
    if not all_profiles:
        listing.print(fetch(app.client))
        return
    answers = ask_every_profile(app, fetch)
    models = [{**m, "profile": a.profile, "host": a.host} for a in answers for m in a.models]
    failed = [a for a in answers if a.error is not None]
    table = listing.render_table
    dataclasses.replace(
        listing,
        render_table=lambda ms: _with_first_column("HOST", [m["profile"] for m in ms], table(ms)),
    ).print(
        models,
        errors=[{"profile": a.profile, "host": a.host, "error": a.message} for a in failed],
    )
    for answer in failed:
        where = f"{answer.profile} ({answer.host})" if answer.host else answer.profile
        click.echo(f"Error: {where}: {answer.message}", err=True)
    if failed and failed[0].error is not None:
        raise click.exceptions.Exit(int(failed[0].error.exit_code))


def _listing(
    options: dict[str, Any],
    sorts: dict[str, SortKey],
    render_table: Callable[[Models], str],
    columns: tuple[Column, ...],
) -> Listing:
    """The Listing of the options of :func:`listing_options`, ``--json`` and ``-q``."""
    sort = options.pop("sort")
    return Listing(
        output_format=choose_format(
            options.pop("output_format"),
            as_json=options.pop("as_json"),
            quiet=options.pop("quiet"),
            no_headers=options["no_headers"],
        ),
        headers=not options.pop("no_headers"),
        sort=sorts[sort] if sort else None,
        render_table=render_table,
        columns=columns,
    )


@click.command("list")
@click.argument("prefixes", nargs=-1, metavar="[PREFIX]...", shell_complete=complete_models)
@json_option()
@names_only_option()
@listing_options(
    list(LIST_SORTS), "Order: name (A-Z), size (largest first), modified (newest first)."
)
@all_profiles_option
@pass_app
def list_models(app: App, prefixes: tuple[str, ...], all_profiles: bool, **options: Any) -> None:
    """List the models on the server (alias: ls).

    PREFIX keeps only names that start with it (case-insensitive, as `ollama list`);
    with several, names that start with any of them (the Go CLI reads the first only).
    The table is the Go CLI's; --output-format tsv or csv gives raw values for scripts
    (name, digest, size in bytes, modified_at in ISO 8601 UTC), --json the API objects.
    With --all-profiles, every profile's server is asked at once and the exit
    code is that of the first host that failed (3: could not connect).

    \b
    Examples:
      ollamactl list
      ollamactl ls llama qwen --json
      ollamactl list --sort size
      ollamactl list --output-format csv > models.csv
      ollamactl list --output-format tsv --no-headers | awk -F'\\t' '$3 > 5e9 {print $1}'
      ollamactl list -q | xargs -n1 ollamactl pull
      ollamactl list --all-profiles
    """

    def fetch(client: Client) -> Models:
        return matching(client.tags(), prefixes, ignore_case=True)

    listing = _listing(options, LIST_SORTS, render.model_table, LIST_COLUMNS)
    _show_models(app, fetch, listing, all_profiles=all_profiles)


@click.command()
@click.argument("prefixes", nargs=-1, metavar="[PREFIX]...", shell_complete=complete_running_models)
@json_option()
@names_only_option()
@listing_options(
    list(PS_SORTS), "Order: name (A-Z), size (memory, largest first), until (next unloaded first)."
)
@all_profiles_option
@pass_app
def ps(app: App, prefixes: tuple[str, ...], all_profiles: bool, **options: Any) -> None:
    """List the models loaded in memory.

    PREFIX keeps only names that start with it (case-sensitive, as `ollama ps`);
    with several, names that start with any of them. --output-format tsv or csv
    gives raw values (name, digest, size and size_vram in bytes, context_length,
    expires_at in ISO 8601 UTC). With --all-profiles, every profile's server is
    asked at once.

    \b
    Examples:
      ollamactl ps
      ollamactl ps --sort until
      ollamactl ps --output-format tsv --no-headers | cut -f1,3
      ollamactl ps --json | jq '.models[].name'
      ollamactl ps --all-profiles
    """

    def fetch(client: Client) -> Models:
        return matching(client.ps(), prefixes, ignore_case=False)

    listing = _listing(options, PS_SORTS, render.running_table, PS_COLUMNS)
    _show_models(app, fetch, listing, all_profiles=all_profiles)


@click.command()
@click.argument("model", shell_complete=complete_models)
@click.option("--license", "views", flag_value="license", multiple=True, help="Show the license.")
@click.option(
    "--modelfile", "views", flag_value="modelfile", multiple=True, help="Show the Modelfile."
)
@click.option(
    "--parameters", "views", flag_value="parameters", multiple=True, help="Show the parameters."
)
@click.option(
    "--system", "views", flag_value="system", multiple=True, help="Show the system message."
)
@click.option(
    "--template", "views", flag_value="template", multiple=True, help="Show the template."
)
@click.option("-v", "--verbose", is_flag=True, help="Show detailed model information.")
@json_option()
@pass_app
def show(app: App, model: str, views: tuple[str, ...], verbose: bool, as_json: bool) -> None:
    """Show information about a model.

    \b
    Examples:
      ollamactl show llama3.2
      ollamactl show llama3.2 --modelfile > Modelfile
      ollamactl show llama3.2 --json | jq .capabilities
    """
    if len(set(views)) > 1:
        flags = [f"'--{view}'" for view in SHOW_VIEWS]
        raise UsageError(f"only one of {', '.join(flags[:-1])}, or {flags[-1]} can be specified")
    info = app.client.show(model, verbose=verbose)
    if as_json:
        echo_json(info)
    elif views:
        text = str(info.get(views[0]) or "")
        if app.terminal.stdout_is_tty:  # the server's text: its escape sequences shown, not run
            text = sanitise(text)
        # As `ollama show`: license, modelfile and parameters end with a newline.
        click.echo(text, nl=views[0] not in ("system", "template"))
    else:
        click.echo(render.show_info(info, verbose=verbose), nl=False)


@click.command()
@click.argument("source", shell_complete=complete_models)
@click.argument("destination")
@pass_app
def cp(app: App, source: str, destination: str) -> None:
    """Copy a model under a new name.

    \b
    Example:
      ollamactl cp llama3.2 my-llama:v1
    """
    app.client.copy(source, destination)
    click.echo(f"copied '{source}' to '{destination}'")


def _expand(app: App, patterns: tuple[str, ...]) -> list[str]:
    """Expand glob patterns against the server's model names; plain names pass through."""
    names: list[str] = []
    available: list[str] | None = None
    for pattern in patterns:
        if not any(c in pattern for c in "*?["):
            names.append(pattern)
            continue
        if available is None:
            available = [str(m.get("name", "")) for m in app.client.tags()]
        matched = fnmatch.filter(available, pattern)
        if not matched:
            raise ModelNotFound(f"no model matches {pattern!r}")
        names += matched
    return list(dict.fromkeys(names))


@click.command()
@click.argument("models", nargs=-1, required=True, shell_complete=complete_models)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
@pass_app
def rm(app: App, models: tuple[str, ...], yes: bool, dry_run: bool) -> None:
    """Remove models (glob patterns match the server's model names).

    Each model is unloaded first, as `ollama rm` does. On a terminal, asks
    before deleting unless -y is given.

    \b
    Examples:
      ollamactl rm llama3.2
      ollamactl rm 'qwen*' --dry-run
      ollamactl rm -y old-model:v1 old-model:v2
    """
    names = _expand(app, models)
    if dry_run:
        for name in names:
            click.echo(f"would delete '{name}'")
        return
    question = f"Delete {', '.join(repr(n) for n in names)}?"
    if not yes and app.terminal.stdin_is_tty and not click.confirm(question, err=True):
        click.echo("nothing deleted", err=True)
        raise click.exceptions.Exit(1)
    for name in names:
        try:
            app.client.unload(name)
        except ModelNotFound:
            pass
        except OllamactlError:
            click.echo(f"Warning: unable to stop model '{name}'", err=True)
        app.client.delete(name)
        click.echo(f"deleted '{name}'")


@click.command()
@click.argument("model", required=False, shell_complete=complete_running_models)
@click.option("--all", "stop_all", is_flag=True, help="Stop every running model.")
@pass_app
def stop(app: App, model: str | None, stop_all: bool) -> None:
    """Unload a running model from memory.

    \b
    Examples:
      ollamactl stop llama3.2
      ollamactl stop --all
    """
    if bool(model) == stop_all:
        raise UsageError("give either a MODEL or --all")
    if stop_all:
        running = [str(m.get("name")) for m in app.client.ps()]
        if not running:
            click.echo("no models are running", err=True)
        failures: list[OllamactlError] = []
        for name in running:
            try:
                app.client.unload(name)
            except OllamactlError as e:  # say so, and stop the others all the same
                warn(app.redact(f"unable to stop model '{name}': {e}"))
                failures.append(e)
                continue
            click.echo(f"stopped '{name}'", err=True)
        if failures:
            raise click.exceptions.Exit(int(failures[0].exit_code))
        return
    assert model is not None
    try:
        app.client.unload(model)
    except ModelNotFound:
        raise ModelNotFound(f'couldn\'t find model "{model}" to stop') from None
