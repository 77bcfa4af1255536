"""pull, push and create: the commands (the transfers themselves: ollamactl.transfers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ollamactl import transfers
from ollamactl.app import App, pass_app, warn
from ollamactl.completion import complete_models
from ollamactl.errors import (
    APIError,
    AuthFailed,
    ConnectionFailed,
    ExitCode,
    Interrupted,
    OllamactlError,
    UsageError,
)
from ollamactl.http_errors import is_old_server_create, is_push_denied
from ollamactl.modelfile import SERVER_SINCE, CreatePlan, read_modelfile
from ollamactl.names import model_key, push_destination
from ollamactl.options import no_progress_option, progress_option, transfer_options
from ollamactl.progress import open_progress, resolve_mode
from ollamactl.security import parse_version
from ollamactl.terminal import Terminal
from ollamactl.transfers import Transfer, digests, hash_files, interrupted, upload_missing

NOT_AUTHORIZED_TO_PUSH = (
    "you are not authorized to push to this namespace, create the model under a namespace you own"
)
OLD_SERVER = "the ollama server must be updated to use `ollama create` with this client"


def _quiet_mode(quiet: bool, progress: str) -> str:
    return "none" if quiet else progress


def _transfer_of(options: dict[str, Any]) -> Transfer:
    """How to pull or push, from the options of :func:`~ollamactl.options.transfer_options`."""
    return Transfer(
        insecure=options["insecure"],
        progress=_quiet_mode(options["quiet"], options["progress"]),
        retries=options["resume_retries"],
        stall_timeout=options["stall_timeout"],
    )


def _failure(failures: list[OllamactlError], total: int) -> OllamactlError:
    """One error for several failed pulls, with their exit code if they share it, else 1."""
    codes = {e.exit_code for e in failures}
    error = OllamactlError(f"{len(failures)} of {total} pulls failed")
    error.exit_code = codes.pop() if len(codes) == 1 else ExitCode.API_ERROR
    return error


def _summary(updated: list[str], unchanged: list[str], failed: list[str]) -> str:
    """The last line of a multi-model pull.

    >>> _summary(["a"], ["b", "c"], ["d"])
    'summary: 1 updated (a), 2 unchanged, 1 failed (d)'
    """
    parts = [f"{len(updated)} updated" + (f" ({', '.join(updated)})" if updated else "")]
    parts.append(f"{len(unchanged)} unchanged")
    parts.append(f"{len(failed)} failed" + (f" ({', '.join(failed)})" if failed else ""))
    return "summary: " + ", ".join(parts)


@click.command()
@click.argument("models", nargs=-1)
@click.option("--all", "pull_all", is_flag=True, help="Pull every model on the server again.")
@click.option("--if-missing", is_flag=True, help="Skip the models the server already has.")
@click.option(
    "--outdated",
    is_flag=True,
    help="Pull the models `outdated` finds outdated (of MODELS, else of every model).",
)
@transfer_options
@pass_app
def pull(
    app: App,
    models: tuple[str, ...],
    pull_all: bool,
    if_missing: bool,
    outdated: bool,
    **options: Any,
) -> None:
    """Pull models from a registry onto the server.

    Progress goes to stderr: bars on a terminal, plain lines in logs and pipes, the server's
    JSON events with --progress json. A pull that breaks or stalls is re-issued (the server
    resumes it). With several models, --all or --outdated, a summary line says which were
    updated, unchanged or failed; stdout stays empty. --outdated asks each model's registry
    first, as `ollamactl outdated` does, and exits 3 after the pulls if a registry could not
    be asked.

    \b
    Examples:
      ollamactl pull llama3.2
      ollamactl pull llama3.2 qwen3:4b nomic-embed-text
      ollamactl pull --all                     # update every model
      ollamactl pull --outdated                # update the models the registry has anew
      ollamactl pull --if-missing llama3.2     # in CI: pull only when absent
      ollamactl pull llama3.2 --progress json 2> progress.ndjson
    """
    if (pull_all and (models or outdated)) or not (pull_all or outdated or models):
        raise UsageError("give MODEL names, --all or --outdated")
    how = _transfer_of(options)
    report = _Report(how.progress, app.terminal)
    unchecked: list[str] = []
    if outdated:
        models, unchecked = _outdated(app, models, report, insecure=how.insecure)
    many = pull_all or outdated or len(models) > 1
    listed = app.client.tags() if (many or if_missing) else []
    before = digests(listed)
    names = [str(m.get("name", "")) for m in listed] if pull_all else list(dict.fromkeys(models))
    pulled: list[str] = []
    present: list[str] = []
    failures: dict[str, OllamactlError] = {}
    for number, name in enumerate(names, 1):
        if if_missing and model_key(name) in before:
            present.append(name)
            report.progress(f"{name} is already on the server", model=name, present=True)
            continue
        if many:
            report.progress(f"[{number}/{len(names)}] {name}", model=name, number=number)
        try:
            transfers.pull_model(app.client, app.terminal, name, how)
        except OllamactlError as e:
            if not many or isinstance(e, Interrupted):
                raise
            failures[name] = e
            message = app.redact(str(e))
            report.line(f"Error: pulling {name}: {message}", model=name, error=message)
            continue
        pulled.append(name)
    if many:
        after = digests(app.client.tags()) if pulled else {}
        updated = [n for n in pulled if after.get(model_key(n)) != before.get(model_key(n))]
        unchanged = present + [n for n in pulled if n not in updated]
        failed = list(failures)
        summary = {"updated": updated, "unchanged": unchanged, "failed": failed}
        report.line(_summary(updated, unchanged, failed), summary=summary)
    if failures:
        raise _failure(list(failures.values()), len(names))
    if unchecked:
        raise ConnectionFailed(
            f"could not ask the registry of {', '.join(unchecked)} (see the warnings above)"
        )


def _outdated(
    app: App, models: tuple[str, ...], report: _Report, *, insecure: bool
) -> tuple[tuple[str, ...], list[str]]:
    """Of ``models`` (all if none), those outdated, and those whose registry did not answer."""
    from ollamactl.commands.outdated import check_models
    from ollamactl.registry import OUTDATED, UNREACHABLE

    results = check_models(app, models, insecure=insecure)
    for reason in sorted({r.reason for r in results if r.status == UNREACHABLE}):
        report.line(f"Warning: {reason}", warning=reason)
    unchecked = [r.name for r in results if r.status == UNREACHABLE]
    return tuple(r.name for r in results if r.status == OUTDATED), unchecked


class _Report:
    """The pull command's own lines on stderr: text, or JSON objects with --progress json."""

    def __init__(self, mode: str, terminal: Terminal) -> None:
        self.mode = resolve_mode(mode, terminal)

    def line(self, text: str, **fields: Any) -> None:
        """Always shown: ``text``, or ``fields`` as one JSON object."""
        if self.mode == "json":
            text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        click.echo(text, err=True)

    def progress(self, text: str, **fields: Any) -> None:
        """Like :meth:`line`, but not with --progress none (or -q)."""
        if self.mode != "none":
            self.line(text, **fields)


@click.command()
@click.argument("model", shell_complete=complete_models)
@transfer_options
@pass_app
def push(app: App, model: str, **options: Any) -> None:
    """Push a model from the server to a registry.

    Progress goes to stderr (as for pull); stdout gets where the model can be found.
    A push that breaks or stalls is re-issued; layers already uploaded are skipped.

    \b
    Examples:
      ollamactl push myname/mymodel:v1
      ollamactl push 127.0.0.1:5000/team/tiny --insecure --progress plain
    """
    how = _transfer_of(options)
    try:
        transfers.transfer(app.client, app.terminal, "push", model, how)
    except APIError as e:
        if is_push_denied(e.message):
            raise AuthFailed(NOT_AUTHORIZED_TO_PUSH, url=e.url, status=e.status) from e
        raise
    destination = push_destination(model)
    _Report(how.progress, app.terminal).progress(
        "You can find your model at:", destination=destination
    )
    click.echo(destination)


# -- create ---------------------------------------------------------------------------------


@click.command()
@click.argument("model")
@click.option(
    "-f",
    "--file",
    "modelfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Modelfile [default: ./Modelfile].",
)
@click.option("-q", "--quantize", metavar="LEVEL", help="Quantize the model (e.g. q4_K_M).")
@click.option("--draft-quantize", metavar="LEVEL", help="Quantize the DRAFT model to this level.")
@click.option(
    "--dry-run", is_flag=True, help="Print the JSON request on stdout; upload and create nothing."
)
@progress_option
@no_progress_option()
@pass_app
def create(
    app: App,
    model: str,
    modelfile: Path | None,
    quantize: str | None,
    draft_quantize: str | None,
    dry_run: bool,
    progress: str,
    quiet: bool,
) -> None:
    """Create a model from a Modelfile.

    The Modelfile is parsed here. Local weights (a GGUF file, a safetensors folder,
    adapters) are hashed, uploaded only if the server lacks them, and the model is
    created from the uploaded blobs, with progress on stderr.

    \b
    Examples:
      ollamactl create mymodel -f ./Modelfile
      ollamactl create mymodel:q4 -f Modelfile -q q4_K_M
      ollamactl create mymodel --dry-run | jq .
    """
    plan = read_modelfile(modelfile)
    if draft_quantize and not any(f.field == "draft_files" for f in plan.files):
        raise UsageError("--draft-quantize requires a DRAFT model")
    for message in plan.warnings:
        warn(message)
    if not dry_run:
        _refuse_what_the_server_drops(app, plan)
    with open_progress(_quiet_mode(quiet, progress), "create", app.terminal) as display:
        try:
            display.status("gathering model components")  # as the Go CLI, for every create
            local_digests = hash_files(plan.files, display)
            arguments = plan.arguments(local_digests)
            quantizing = {"quantize": quantize, "draft_quantize": draft_quantize}
            if dry_run:
                from ollamactl.client import create_request

                display.close()
                body = create_request(model, **quantizing, **arguments)
                click.echo(json.dumps(body, indent=2, ensure_ascii=False))
                return
            upload_missing(app.client, plan.files, local_digests, display)
            for event in app.client.create(model, **quantizing, **arguments):
                display.event(event)
        except KeyboardInterrupt:
            raise interrupted(
                display, f"{model} was not created; blobs already uploaded stay on the server"
            ) from None
        except APIError as e:
            if is_old_server_create(e.message):
                raise APIError(OLD_SERVER, url=e.url, status=e.status) from e
            raise


def _refuse_what_the_server_drops(app: App, plan: CreatePlan) -> None:
    """Refuse commands (RENDERER, REQUIRES, ...) that the server's version would drop silently.

    The version is asked only when the Modelfile uses one; a server that does not say
    (or a development build, 0.0.0) is taken to know them all.
    """
    if not plan.unknown_to((0, 0, 0)):  # uses none of them
        return
    try:
        version = str(app.client.version().get("version", ""))
    except OllamactlError:
        return
    parsed = parse_version(version)
    if parsed is None or parsed[:3] == (0, 0, 0):
        return
    unknown = plan.unknown_to(parsed[:3])
    if unknown:
        newest = max(SERVER_SINCE[name.lower()] for name in unknown)
        raise OllamactlError(
            f"the server (Ollama {version}) does not know {' and '.join(unknown)}:"
            " it would create the model without it",
            hint=f"Ollama {'.'.join(map(str, newest))} or later knows it; update the server,"
            " or remove the line from the Modelfile",
        )
