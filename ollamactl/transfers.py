"""Moving models to and from the server: pulls and pushes that resume, hashing, blob uploads.

A pull or push that breaks or stalls is re-issued with backoff (the server resumes it);
``create``'s local files are hashed and uploaded only when the server lacks them. The
progress goes to a :class:`~ollamactl.progress.Progress` display on stderr.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ollamactl.errors import (
    APIError,
    ConnectionFailed,
    Interrupted,
    OllamactlError,
    ServerTimeout,
    StreamBroken,
    TLSFailed,
    UsageError,
)
from ollamactl.modelfile import LocalFile
from ollamactl.names import model_key
from ollamactl.options import DEFAULT_RESUME_RETRIES, DEFAULT_STALL_TIMEOUT
from ollamactl.progress import Progress, open_progress
from ollamactl.terminal import Terminal

if TYPE_CHECKING:
    from ollamactl.client import JSON, Client

#: Seconds before the first re-issue of a broken transfer; doubles each time, at most 30 s.
RETRY_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
HASH_CHUNK = 1 << 20
#: What Ctrl-C leaves behind, by transfer.
_INTERRUPTED = {
    "pull": "the server may keep the partial download of {model}; pulling it again resumes it",
    "push": "the push of {model} stopped; pushing again skips the layers already uploaded",
}


@dataclass(frozen=True)
class Transfer:
    """How a pull or push goes: registry, progress mode, re-issues and stall limit."""

    insecure: bool = False
    progress: str = "auto"
    retries: int = DEFAULT_RESUME_RETRIES
    stall_timeout: float = DEFAULT_STALL_TIMEOUT


def digests(models: list[JSON]) -> dict[str, str]:
    """Model key -> digest of every model of an ``/api/tags`` listing."""
    return {model_key(str(m.get("name", ""))): str(m.get("digest", "")) for m in models}


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
    how: Transfer,
) -> None:
    """Feed ``events()`` to ``display``; re-issue it with backoff when it breaks or stalls."""
    stall_timeout = how.stall_timeout
    attempts = how.retries + 1
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
                        hint="raise --stall-timeout or --resume-retries",
                    ) from e
                raise
            display.notice(
                f"retrying {verb} of {model} (attempt {attempt + 1} of {attempts}):"
                f" {_retry_reason(e, stall_timeout)}"
            )
            time.sleep(min(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))


def interrupted(display: Progress, message: str) -> Interrupted:
    """Close the display, say what Ctrl-C left behind, and return the error that exits 130."""
    display.close()
    display.stream.write(f"\ninterrupted: {message}\n")
    display.stream.flush()
    return Interrupted(message)


def transfer(client: Client, terminal: Terminal, verb: str, model: str, how: Transfer) -> None:
    """Pull or push ``model`` with progress on stderr, re-issuing it when it breaks or stalls.

    Raises the error of the last attempt (e.g. ``ModelNotFound``), or ``Interrupted`` on
    Ctrl-C after saying what the server keeps of it.
    """
    start = client.pull if verb == "pull" else client.push
    with open_progress(how.progress, verb, terminal) as display:
        try:
            _with_retries(
                verb,
                model,
                lambda: start(model, insecure=how.insecure, read_timeout=how.stall_timeout),
                display,
                how,
            )
        except KeyboardInterrupt:
            raise interrupted(display, _INTERRUPTED[verb].format(model=model)) from None


def pull_model(client: Client, terminal: Terminal, model: str, how: Transfer | None = None) -> None:
    """Pull ``model`` onto the server with progress on stderr (see :func:`transfer`)."""
    transfer(client, terminal, "pull", model, how or Transfer())


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


def hash_files(files: list[LocalFile], display: Progress) -> dict[Path, str]:
    """Digest of every local file of a plan (each file read once)."""
    digests: dict[Path, str] = {}
    for local in files:
        if local.path not in digests:
            try:
                digests[local.path] = _sha256(local.path, f"hashing {local.name}", display)
            except OSError as e:
                raise UsageError(f"cannot read {local.path}: {e.strerror or e}") from None
    return digests


def upload_missing(
    client: Client, files: list[LocalFile], digests: dict[Path, str], display: Progress
) -> None:
    """Upload each blob the server lacks (``HEAD`` first), each digest at most once."""
    seen: set[str] = set()
    for local in files:
        digest = digests[local.path]
        if digest in seen:
            continue
        seen.add(digest)
        if client.blob_exists(digest):
            display.status(f"using existing blob {digest[:19]} for {local.name}")
            continue
        _upload(client, local, digest, display)


def _upload(client: Client, local: LocalFile, digest: str, display: Progress) -> None:
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
            client.upload_blob(digest, stream, on_bytes)
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
