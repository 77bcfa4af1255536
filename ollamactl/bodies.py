"""Reading an answer's body: bounded, decompressed here, split into NDJSON events.

What :mod:`ollamactl.transport` reads after the head of an answer: the raw bytes as they
arrive, inflated at most READ_CHUNK at a time (so one compressed chunk cannot expand without
bound), a whole body of at most MAX_BODY_BYTES, and a stream's lines of at most
MAX_LINE_BYTES, each one JSON object checked for ``{"error": ...}``. It never prints.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import requests
import urllib3

from ollamactl import http_errors
from ollamactl.errors import BadResponse

if TYPE_CHECKING:
    from ollamactl.transport import Deadline

JSON = dict[str, Any]
#: Ollama's own scanner refuses longer lines; so do we (a broken server cannot exhaust memory).
MAX_LINE_BYTES = 8_000_000
READ_CHUNK = 65536
#: The largest answer read whole (a JSON answer or an error), after decompression.
MAX_BODY_BYTES = 64 << 20


def inflate(chunks: Iterator[bytes], encoding: str, url: str, base_url: str) -> Iterator[bytes]:
    """The body of ``Content-Encoding: encoding`` decompressed, at most READ_CHUNK at a time.

    Decompressing here, not in urllib3, bounds what one compressed chunk can expand to.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        yield from chunks
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise http_errors.undecodable(url, base_url)
    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or zlib header
    try:
        for chunk in chunks:
            data = chunk
            while data:
                if inflater.eof:  # another gzip member follows
                    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
                piece = inflater.decompress(data, READ_CHUNK)
                data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                if piece:
                    yield piece
        piece = inflater.flush()  # what a limited read left inside (less than a window)
        if piece:
            yield piece
        if not inflater.eof:
            raise http_errors.undecodable(url, base_url)
    except zlib.error:
        raise http_errors.undecodable(url, base_url) from None


def chunks(
    response: requests.Response, base_url: str, idle: float, deadline: Deadline | None
) -> Iterator[bytes]:
    """The body's raw bytes as they arrive (one HTTP chunk, or what a read returns)."""
    raw = response.raw
    url = response.url
    try:
        if raw.chunked and raw.supports_chunked_reads():
            yield from raw.read_chunked(READ_CHUNK, decode_content=False)
        else:
            while chunk := raw.read1(READ_CHUNK, decode_content=False):
                yield chunk
    except (urllib3.exceptions.HTTPError, OSError) as e:
        if deadline is not None and deadline.expired:
            raise http_errors.too_slow(url, base_url, deadline.seconds) from None
        if isinstance(e, urllib3.exceptions.ReadTimeoutError):
            raise http_errors.idle_timeout(url, base_url, idle) from e
        raise http_errors.broken(url, base_url) from e


def body(
    response: requests.Response, base_url: str, idle: float, deadline: Deadline | None = None
) -> Iterator[bytes]:
    """The body's bytes, decompressed, as soon as they arrive."""
    encoding = response.headers.get("Content-Encoding", "")
    raw_chunks = chunks(response, base_url, idle, deadline)
    return inflate(raw_chunks, encoding, response.url, base_url)


def read(
    response: requests.Response, base_url: str, idle: float, deadline: Deadline | None = None
) -> bytes:
    """The whole body, decompressed: at most MAX_BODY_BYTES, by the deadline."""
    parts: list[bytes] = []
    size = 0
    for piece in body(response, base_url, idle, deadline):
        size += len(piece)
        if size > MAX_BODY_BYTES:
            raise http_errors.too_large(response.url, base_url, MAX_BODY_BYTES)
        parts.append(piece)
    return b"".join(parts)


def lines(response: requests.Response, base_url: str, idle: float) -> Iterator[bytes]:
    """The body's non-blank lines; one longer than MAX_LINE_BYTES is an error."""
    url = response.url
    pending = b""
    for chunk in body(response, base_url, idle):
        pending += chunk
        if b"\n" not in chunk:
            if len(pending) > MAX_LINE_BYTES:
                raise BadResponse(f"a line from {url} is longer than 8 MB", url=url)
            continue
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def event(line: bytes, url: str) -> JSON:
    """One NDJSON line's event; an ``{"error": ...}`` line is that error."""
    try:
        value = json.loads(line)
    except ValueError:
        shown = line[:80].decode("utf-8", "replace")
        raise BadResponse(f"the server at {url} sent a line that is not JSON: {shown!r}") from None
    if not isinstance(value, dict):
        raise BadResponse(f"the server at {url} sent an unexpected line: {value!r}"[:200])
    error = value.get("error")
    if error is not None:
        raise http_errors.api_error(str(error), url=url)
    return value
