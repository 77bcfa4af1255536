"""What travels over the wire: recorded requests, replies, Ollama's JSON and Go's error wording.

Every endpoint module builds its answers from these pieces, so that content types, JSON
escaping, timestamps and request-decoding errors are the same everywhere (and as recorded
from a real Ollama 0.9.3).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Union

VERSION = "0.9.3"
JSON_TYPE = "application/json; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"
TEXT_TYPE = "text/plain; charset=utf-8"
# waitForStream (pull/push/create with "stream": false) answers with a bare JSON content type.
WAIT_TYPE = "application/json"
INT_OPTIONS = frozenset(
    (
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "mirostat",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
    )
)
FLOAT_OPTIONS = frozenset(
    (
        "temperature",
        "top_p",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
        "tfs_z",
        "mirostat_tau",
        "mirostat_eta",
    )
)

_DURATION_RE = re.compile(r"(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
# The Go JSON decoder's wording for the syntax errors Python's decoder reports.
_GO_JSON_CONTEXT = {
    "Expecting property name enclosed in double quotes": (
        "looking for beginning of object key string"
    ),
    "Expecting ':' delimiter": "after object key",
    "Expecting ',' delimiter": "after object key:value pair",
}


@dataclass
class RecordedRequest:
    """One request as received: path is relative to the server prefix, without the query."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: The body decoded as JSON, or None when it is not JSON.
    json: Any | None


@dataclass
class Reply:
    """A complete answer (``content_type`` None: no Content-Type header)."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Stream:
    """A streamed answer: NDJSON lines, sent as HTTP/1.1 chunks."""

    lines: Generator[bytes, None, None]


Result = Union[Reply, Stream]
Events = Generator[dict[str, Any], None, None]


class ApiError(Exception):
    """Raised by an endpoint to answer with ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.reply = error_reply(status, message)


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON with Go's HTML escaping, as Ollama emits it."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def line(obj: Any) -> bytes:
    """One NDJSON line."""
    return (dumps(obj) + "\n").encode()


def encode(events: Events) -> Generator[bytes, None, None]:
    """NDJSON lines of ``events`` (closing the events when the stream is cut short)."""
    with closing(events):
        for event in events:
            yield line(event)


def json_reply(obj: Any, status: int = 200, content_type: str = JSON_TYPE) -> Reply:
    return Reply(status, dumps(obj).encode(), content_type)


def error_reply(status: int, message: str, content_type: str = JSON_TYPE) -> Reply:
    return json_reply({"error": message}, status, content_type)


def text_reply(status: int, text: str, content_type: str = "text/plain") -> Reply:
    return Reply(status, text.encode(), content_type)


def quote(value: str) -> str:
    """Go's %q for ordinary strings."""
    return json.dumps(value, ensure_ascii=False)


@functools.lru_cache(maxsize=8)
def _utc_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def timestamp(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds and trailing zeros trimmed, like Go's RFC3339Nano in UTC."""
    seconds, frac = divmod(time.time_ns() if ns is None else ns, 1_000_000_000)
    fraction = f".{frac:09d}".rstrip("0").rstrip(".")
    return f"{_utc_seconds(seconds)}{fraction}Z"


def try_json(body: bytes) -> Any | None:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _go_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {list: "array", str: "string", dict: "object"}.get(type(value), "value")


def _go_json_error(exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(exc.doc) or exc.msg.startswith("Unterminated"):
        return "unexpected EOF"
    if exc.msg.startswith("Invalid control character"):
        context = "in string literal"
    else:
        context = _GO_JSON_CONTEXT.get(exc.msg, "looking for beginning of value")
    return f"invalid character {exc.doc[exc.pos]!r} {context}"


class RequestBody:
    """A decoded JSON request body with Go-style type errors for its fields."""

    def __init__(self, raw: bytes, type_name: str) -> None:
        self.type_name = type_name
        text = raw.decode("utf-8", "replace").lstrip()
        if not text:
            raise ApiError(400, "missing request body")
        try:
            value, _ = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError as exc:
            raise ApiError(400, _go_json_error(exc)) from None
        if value is not None and not isinstance(value, dict):
            kind = _go_kind(value)
            raise ApiError(
                400, f"json: cannot unmarshal {kind} into Go value of type api.{type_name}"
            )
        self.data: dict[str, Any] = value or {}

    def get(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def text(self, *keys: str) -> str:
        """The first non-empty string among ``keys`` (e.g. ``model`` then deprecated ``name``)."""
        for key in keys:
            value = self.data.get(key)
            if value is not None and not isinstance(value, str):
                raise ApiError(
                    400,
                    f"json: cannot unmarshal {_go_kind(value)} into Go struct field "
                    f"{self.type_name}.{key} of type string",
                )
            if value:
                return value
        return ""

    @property
    def stream(self) -> bool:
        return self.data.get("stream") is not False

    def keep_alive(self) -> float:
        """Seconds to keep the model loaded (default 5m, negative = forever, 0 = unload now)."""
        value = self.data.get("keep_alive")
        if value is None:
            return 300.0
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ApiError(400, f"Unsupported type: '{_go_kind(value)}'")
        if not isinstance(value, str):
            return float(value)
        body = value.lstrip("+-")
        sign = -1.0 if value.startswith("-") else 1.0
        if body == "0":
            return 0.0
        if re.fullmatch(r"\d+\.?\d*", body):
            raise ApiError(400, f"time: missing unit in duration {quote(value)}")
        if not _DURATION_RE.fullmatch(body):
            raise ApiError(400, f"time: invalid duration {quote(value)}")
        parts = _DURATION_PART.findall(body)
        return sign * sum(float(num) * _UNIT_S[unit] for num, unit in parts)

    def check_options(self) -> None:
        """Reject mistyped runner options like Ollama does (HTTP 500)."""
        for key, value in (self.get("options", {}) or {}).items():
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if key in INT_OPTIONS and not is_number:
                raise ApiError(500, f"option {quote(key)} must be of type integer")
            if key in FLOAT_OPTIONS and not is_number:
                raise ApiError(500, f"option {quote(key)} must be of type float32")
