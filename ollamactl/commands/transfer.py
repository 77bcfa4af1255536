"""Moving models: pull, push and create (with the client-side Modelfile and blob uploads)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ollamactl.cli import App, pass_app, warn
from ollamactl.completion import complete_models
from ollamactl.errors import (
    APIError,
    AuthFailed,
    ConnectionFailed,
    ExitCode,
    Interrupted,
    OllamactlError,
    ServerTimeout,
    StreamBroken,
    TLSFailed,
    UsageError,
)
from ollamactl.modelfile import LocalFile, read_modelfile
from ollamactl.progress import MODES, Progress, open_progress, resolve_mode

if TYPE_CHECKING:
    from ollamactl.client import JSON

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TRANSFER_RETRIES = 3
DEFAULT_STALL_TIMEOUT = 60.0
#: Seconds before the first re-issue of a broken transfer; doubles each time, at most 30 s.
RETRY_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
HASH_CHUNK = 1 << 20
DEFAULT_REGISTRY = "registry.ollama.ai"
NOT_AUTHORIZED_TO_PUSH = (
    "you are not authorized to push to this namespace, create the model under a namespace you own"
)
OLD_SERVER = "the ollama server must be updated to use `ollama create` with this client"
#: What Ctrl-C leaves behind, by transfer.
_INTERRUPTED = {
    "pull": "the server may keep the partial download of {model}; pulling it again resumes it",
    "push": "the push of {model} stopped; pushing again skips the layers already uploaded",
}


# -- shared options -------------------------------------------------------------------------


def progress_option(func: F) -> F:
    """``--progress MODE``."""
    return click.option(
        "--progress",
        type=click.Choice(MODES),
        default="auto",
        show_default=True,
        help="Progress on stderr: bars on a terminal (tty), lines (plain), server events (json),"
        " or none. auto = tty on a terminal, else plain.",
    )(func)


def transfer_options(func: F) -> F:
    """The options of pull and push: --insecure, --retries, --stall-timeout, --progress, -q."""
    for option in (
        click.option("-q", "--quiet", is_flag=True, help="Show no progress (--progress none)."),
        progress_option,
        click.option(
            "--stall-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=DEFAULT_STALL_TIMEOUT,
            show_default=True,
            metavar="SECONDS",
            help="Re-issue the transfer when no progress arrives for this long.",
        ),
        click.option(
            "--retries",
            "transfer_retries",
            type=click.IntRange(0, 100),
            default=DEFAULT_TRANSFER_RETRIES,
            show_default=True,
            help="How often to re-issue a broken or stalled transfer (the server resumes it).",
        ),
        click.option(
            "--insecure", is_flag=True, help="Use an insecure registry (http, unverified TLS)."
        ),
    ):
        func = option(func)
    return func


# -- model names ----------------------------------------------------------------------------


def split_name(name: str) -> tuple[str, str, str, str]:
    """``[host/][namespace/]model[:tag]`` as (host, namespace, model, tag), with Ollama's defaults.

    >>> split_name("llama3.2")
    ('registry.ollama.ai', 'library', 'llama3.2', 'latest')
    >>> split_name("127.0.0.1:5000/me/tiny:v1")
    ('127.0.0.1:5000', 'me', 'tiny', 'v1')
    """
    text = name.split("@", 1)[0]
    tag = "latest"
    colon = text.rfind(":")
    if colon > text.rfind("/"):
        text, tag = text[:colon], text[colon + 1 :]
    parts = text.split("/")
    if len(parts) < 3:
        parts = [DEFAULT_REGISTRY, "library"][: 3 - len(parts)] + parts
    return parts[0], parts[1], "/".join(parts[2:]), tag


def model_key(name: str) -> str:
    """The form ``/api/tags`` lists a model under, lower-cased for comparison.

    >>> model_key("Tiny"), model_key("registry.ollama.ai/library/tiny:latest")
    ('tiny:latest', 'tiny:latest')
    >>> model_key("me/tiny:v1"), model_key("127.0.0.1:5000/library/tiny")
    ('me/tiny:v1', '127.0.0.1:5000/library/tiny:latest')
    """
    host, namespace, model, tag = split_name(name.strip())
    if host != DEFAULT_REGISTRY:
        key = f"{host}/{namespace}/{model}:{tag}"
    elif namespace != "library":
        key = f"{namespace}/{model}:{tag}"
    else:
        key = f"{model}:{tag}"
    return key.lower()


def _digests(models: list[JSON]) -> dict[str, str]:
    """Model key -> digest of every model of an ``/api/tags`` listing."""
    return {model_key(str(m.get("name", ""))): str(m.get("digest", "")) for m in models}


# -- pull and push with retries -------------------------------------------------------------


def _retry_reason(error: OllamactlError, stall_timeout: float) -> str:
    if isinstance(error, ServerTimeout):
        return f"no progress for {stall_timeout:g}s"
    return error.message


def _retryable(error: OllamactlError, attempt: int) -> bool:
    """A broken or stalled stream; after the first attempt also a refused connection."""
    if isinstance(error, (StreamBroken, ServerTimeout)):
        return True
    return attempt > 1 and isinstance(error, ConnectionFailed) and not isinstance(error, TLSFailed)


def _with_retries(
    verb: str,
    model: str,
    events: Callable[[], Iterator[JSON]],
    display: Progress,
    *,
    retries: int,
    stall_timeout: float,
) -> None:
    """Feed ``events()`` to ``display``; re-issue it with backoff when it breaks or stalls."""
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        try:
            for event in events():
                display.event(event)
            return
        except ConnectionFailed as e:
            if attempt == attempts or not _retryable(e, attempt):
                if isinstance(e, ServerTimeout):
                    raise ServerTimeout(
                        f"the {verb} of {model} stalled: no progress for {stall_timeout:g}s",
                        url=e.url,
                        hint="raise --stall-timeout or --retries",
                    ) from e
                raise
            display.notice(
                f"retrying {verb} of {model} (attempt {attempt + 1} of {attempts}):"
                f" {_retry_reason(e, stall_timeout)}"
            )
            time.sleep(min(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))


def _interrupted(display: Progress, message: str) -> Interrupted:
    """Close the display, say what Ctrl-C left behind, and return the error that exits 130."""
    display.close()
    click.echo(f"\ninterrupted: {message}", err=True)
    return Interrupted(message)


def _transfer(
    app: App,
    verb: str,
    model: str,
    *,
    insecure: bool,
    progress: str,
    retries: int,
    stall_timeout: float,
) -> None:
    """Pull or push ``model`` with progress on stderr, re-issuing it when it breaks or stalls."""
    start = app.client.pull if verb == "pull" else app.client.push
    with open_progress(progress, verb) as display:
        try:
            _with_retries(
                verb,
                model,
                lambda: start(model, insecure=insecure, read_timeout=stall_timeout),
                display,
                retries=retries,
                stall_timeout=stall_timeout,
            )
        except KeyboardInterrupt:
            raise _interrupted(display, _INTERRUPTED[verb].format(model=model)) from None


def pull_model(
    app: App,
    model: str,
    *,
    insecure: bool = False,
    progress: str = "auto",
    retries: int = DEFAULT_TRANSFER_RETRIES,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
) -> None:
    """Pull ``model`` onto the server with progress on stderr, re-issuing a broken pull.

    Raises the error of the last attempt (e.g. ``ModelNotFound``), or ``Interrupted`` on
    Ctrl-C after saying that the server may keep the partial download.
    """
    _transfer(
        app,
        "pull",
        model,
        insecure=insecure,
        progress=progress,
        retries=retries,
        stall_timeout=stall_timeout,
    )


def _quiet_mode(quiet: bool, progress: str) -> str:
    return "none" if quiet else progress


def _transfer_arguments(options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`pull_model` from the options of :func:`transfer_options`."""
    return {
        "insecure": options["insecure"],
        "progress": _quiet_mode(options["quiet"], options["progress"]),
        "retries": options["transfer_retries"],
        "stall_timeout": options["stall_timeout"],
    }


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
@transfer_options
@pass_app
def pull(
    app: App,
    models: tuple[str, ...],
    pull_all: bool,
    if_missing: bool,
    **options: Any,
) -> None:
    """Pull models from a registry onto the server.

    Progress goes to stderr: bars on a terminal, plain lines in logs and pipes, the server's
    JSON events with --progress json. A pull that breaks or stalls is re-issued (the server
    resumes it). With several models or --all, a summary line says which were updated,
    unchanged or failed; stdout stays empty.

    \b
    Examples:
      ollamactl pull llama3.2
      ollamactl pull llama3.2 qwen3:4b nomic-embed-text
      ollamactl pull --all                     # update every model
      ollamactl pull --if-missing llama3.2     # in CI: pull only when absent
      ollamactl pull llama3.2 --progress json 2> progress.ndjson
    """
    if pull_all == bool(models):
        raise UsageError("give MODEL names or --all")
    transfer = _transfer_arguments(options)
    many = pull_all or len(models) > 1
    listed = app.client.tags() if (many or if_missing) else []
    before = _digests(listed)
    names = [str(m.get("name", "")) for m in listed] if pull_all else list(dict.fromkeys(models))
    report = _Report(transfer["progress"])
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
            pull_model(app, name, **transfer)
        except OllamactlError as e:
            if not many or isinstance(e, Interrupted):
                raise
            failures[name] = e
            message = app.redact(str(e))
            report.line(f"Error: pulling {name}: {message}", model=name, error=message)
            continue
        pulled.append(name)
    if many:
        after = _digests(app.client.tags()) if pulled else {}
        updated = [n for n in pulled if after.get(model_key(n)) != before.get(model_key(n))]
        unchanged = present + [n for n in pulled if n not in updated]
        failed = list(failures)
        summary = {"updated": updated, "unchanged": unchanged, "failed": failed}
        report.line(_summary(updated, unchanged, failed), summary=summary)
    if failures:
        raise _failure(list(failures.values()), len(names))


class _Report:
    """The pull command's own lines on stderr: text, or JSON objects with --progress json."""

    def __init__(self, mode: str) -> None:
        self.mode = resolve_mode(mode)

    def line(self, text: str, **fields: Any) -> None:
        """Always shown: ``text``, or ``fields`` as one JSON object."""
        if self.mode == "json":
            text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        click.echo(text, err=True)

    def progress(self, text: str, **fields: Any) -> None:
        """Like :meth:`line`, but not with --progress none (or -q)."""
        if self.mode != "none":
            self.line(text, **fields)


def _push_destination(model: str) -> str:
    """Where a pushed model can be found: its ollama.com page, or its full name.

    >>> _push_destination("me/tiny"), _push_destination("127.0.0.1:5000/me/tiny")
    ('https://ollama.com/me/tiny', '127.0.0.1:5000/me/tiny:latest')
    """
    host, namespace, name, tag = split_name(model)
    if host.endswith((".ollama.ai", ".ollama.com")):
        shortest = name if namespace == "library" else f"{namespace}/{name}"
        return f"https://ollama.com/{shortest}" + ("" if tag == "latest" else f":{tag}")
    return f"{host}/{namespace}/{name}:{tag}"


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
    transfer = _transfer_arguments(options)
    try:
        _transfer(app, "push", model, **transfer)
    except APIError as e:
        lowered = e.message.lower()
        if "access denied" in lowered or "unauthorized" in lowered:
            raise AuthFailed(NOT_AUTHORIZED_TO_PUSH, url=e.url, status=e.status) from e
        raise
    destination = _push_destination(model)
    _Report(transfer["progress"]).progress("You can find your model at:", destination=destination)
    click.echo(destination)


# -- create ---------------------------------------------------------------------------------


def _sha256(path: Path, label: str, display: Progress) -> str:
    """The ``sha256:<hex>`` digest of a file, read in chunks with a progress bar."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    done = 0
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            display.bar(f"hash:{path}", label, done, size)
    return "sha256:" + digest.hexdigest()


def _hash_files(files: list[LocalFile], display: Progress) -> dict[Path, str]:
    """Digest of every local file of a plan (each file read once)."""
    digests: dict[Path, str] = {}
    if files:
        display.status("gathering model components")
    for local in files:
        if local.path not in digests:
            try:
                digests[local.path] = _sha256(local.path, f"hashing {local.name}", display)
            except OSError as e:
                raise UsageError(f"cannot read {local.path}: {e.strerror or e}") from None
    return digests


def _upload_missing(
    app: App, files: list[LocalFile], digests: dict[Path, str], display: Progress
) -> None:
    """Upload each blob the server lacks (``HEAD`` first), each digest at most once."""
    seen: set[str] = set()
    for local in files:
        digest = digests[local.path]
        if digest in seen:
            continue
        seen.add(digest)
        if app.client.blob_exists(digest):
            display.status(f"using existing blob {digest[:19]} for {local.name}")
            continue
        _upload(app, local, digest, display)


def _upload(app: App, local: LocalFile, digest: str, display: Progress) -> None:
    """``POST /api/blobs/<digest>`` with an upload bar; a 413 from a proxy gets a hint."""
    label = f"copying file {local.name}"
    sent = 0

    def on_bytes(count: int) -> None:
        nonlocal sent
        sent += count
        display.bar(f"upload:{digest}", label, sent, size)

    try:
        size = local.path.stat().st_size
        with local.path.open("rb") as stream:
            app.client.upload_blob(digest, stream, on_bytes)
    except OSError as e:
        raise UsageError(f"cannot read {local.path}: {e.strerror or e}") from None
    except APIError as e:
        if e.status == 413:
            raise APIError(
                f"the server refused the upload of {local.name} as too large (HTTP 413)",
                url=e.url,
                status=413,
                hint="a proxy in front of the server limits the request body size",
            ) from e
        raise


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
@click.option("--quiet", is_flag=True, help="Show no progress (--progress none).")
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
    with open_progress(_quiet_mode(quiet, progress), "create") as display:
        try:
            digests = _hash_files(plan.files, display)
            body = plan.request(model, digests, quantize)
            if draft_quantize:
                body["draft_quantize"] = draft_quantize
            if dry_run:
                display.close()
                click.echo(json.dumps(body, indent=2, ensure_ascii=False))
                return
            _upload_missing(app, plan.files, digests, display)
            for event in app.client.create(body):
                display.event(event)
        except KeyboardInterrupt:
            raise _interrupted(
                display, f"{model} was not created; blobs already uploaded stay on the server"
            ) from None
        except APIError as e:
            if "path or Modelfile are required" in e.message:
                raise APIError(OLD_SERVER, url=e.url, status=e.status) from e
            raise
