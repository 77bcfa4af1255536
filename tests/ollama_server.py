"""A local, Ollama-compatible HTTP server for tests and benchmarks (standard library only).

Response shapes, status codes, content types and error strings follow recordings of a real
Ollama 0.9.3 server. State (models, registry, blobs, loaded models) lives in plain dicts that
tests may inspect or edit, and ``add_fault`` injects proxy errors, delays, broken or stalled
streams. Run as a script it serves until killed::

    python tests/ollama_server.py --port 0 --models tiny:latest --token-count 100000
"""

from __future__ import annotations

import argparse
import base64
import copy
import fnmatch
import functools
import hashlib
import itertools
import json
import math
import random
import re
import select
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, NamedTuple, Union
from urllib.parse import urlsplit

VERSION = "0.9.3"
JSON_TYPE = "application/json; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"
TEXT_TYPE = "text/plain; charset=utf-8"
# waitForStream (pull/push/create with "stream": false) answers with a bare JSON content type.
WAIT_TYPE = "application/json"
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_TEMPLATE = "{{ .Prompt }}"
MODELS_DIR = "/usr/share/ollama/.ollama/models"
MEDIA = "application/vnd.ollama.image."
KV_CACHE_BYTES = 23_000_000
COLD_LOAD_NS = 262_000_000
WARM_LOAD_NS = 1_500_000
FOREVER_S = 292 * 365 * 86_400
QUANT_TYPES = {"Q4_K_M", "Q4_K_S", "Q8_0"}
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

_NAME_PARTS = (
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,349}"),  # host[:port]
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}"),  # namespace
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),  # model
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),  # tag
)
_DIGEST_RE = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")
_DURATION_RE = re.compile(r"(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_WEIGHT_MEDIA = (MEDIA + "model", MEDIA + "adapter")
_SIZE_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}

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
    json: Any | None


@dataclass
class _Fault:
    path: str
    method: str | None
    status: int | None
    body: bytes
    content_type: str
    delay: float
    drop_after_lines: int | None
    error_line: str | None
    malformed_line: bool
    stall_after_lines: int | None
    stall_seconds: float
    times: int


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class _Stream:
    lines: Generator[bytes, None, None]


_Result = Union[_Reply, _Stream]
_Events = Generator[dict[str, Any], None, None]


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.reply = _error(status, message)


class _Name(NamedTuple):
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def key(self) -> str:
        """Shortest display form, always with a tag: the store key (``tiny:latest``)."""
        if self.host != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace != "library":
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"


def _parse_name(raw: str) -> _Name | None:
    """Parse ``[host/][namespace/]model[:tag]`` like Ollama does; None if invalid."""
    text = raw.split("@", 1)[0]
    tag = "latest"
    colon = text.rfind(":")
    if colon > text.rfind("/"):
        text, tag = text[:colon], text[colon + 1 :]
    parts = text.split("/")
    if len(parts) > 3:
        return None
    parts = [DEFAULT_HOST, "library"][: 3 - len(parts)] + parts
    name = _Name(parts[0], parts[1], parts[2], tag)
    if all(rx.fullmatch(part) for rx, part in zip(_NAME_PARTS, name)):
        return name
    return None


def _full_name(model: dict[str, Any]) -> str:
    """``registry.ollama.ai/library/tiny:latest`` for a stored model, as capability errors say."""
    parsed = _parse_name(model["name"])
    return parsed.full if parsed else model["name"]


def _dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON with Go's HTML escaping, as Ollama emits it."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _line(obj: Any) -> bytes:
    return (_dumps(obj) + "\n").encode()


def _json(obj: Any, status: int = 200, content_type: str = JSON_TYPE) -> _Reply:
    return _Reply(status, _dumps(obj).encode(), content_type)


def _error(status: int, message: str, content_type: str = JSON_TYPE) -> _Reply:
    return _json({"error": message}, status, content_type)


def _text(status: int, text: str, content_type: str = "text/plain") -> _Reply:
    return _Reply(status, text.encode(), content_type)


def _q(value: str) -> str:
    """Go's %q for ordinary strings."""
    return json.dumps(value, ensure_ascii=False)


@functools.lru_cache(maxsize=8)
def _utc_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def _timestamp(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds and trailing zeros trimmed, like Go's RFC3339Nano in UTC."""
    seconds, frac = divmod(time.time_ns() if ns is None else ns, 1_000_000_000)
    fraction = f".{frac:09d}".rstrip("0").rstrip(".")
    return f"{_utc_seconds(seconds)}{fraction}Z"


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


def _try_json(body: bytes) -> Any | None:
    try:
        return json.loads(body)
    except ValueError:
        return None


class _Body:
    """A decoded JSON request body with Go-style type errors for its fields."""

    def __init__(self, raw: bytes, type_name: str) -> None:
        self.type_name = type_name
        text = raw.decode("utf-8", "replace").lstrip()
        if not text:
            raise _ApiError(400, "missing request body")
        try:
            value, _ = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError as exc:
            raise _ApiError(400, _go_json_error(exc)) from None
        if value is not None and not isinstance(value, dict):
            kind = _go_kind(value)
            raise _ApiError(
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
                raise _ApiError(
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
            raise _ApiError(400, f"Unsupported type: '{_go_kind(value)}'")
        if not isinstance(value, str):
            return float(value)
        body = value.lstrip("+-")
        sign = -1.0 if value.startswith("-") else 1.0
        if body == "0":
            return 0.0
        if re.fullmatch(r"\d+\.?\d*", body):
            raise _ApiError(400, f"time: missing unit in duration {_q(value)}")
        if not _DURATION_RE.fullmatch(body):
            raise _ApiError(400, f"time: invalid duration {_q(value)}")
        parts = _DURATION_PART.findall(body)
        return sign * sum(float(num) * _UNIT_S[unit] for num, unit in parts)

    def check_options(self) -> None:
        """Reject mistyped runner options like Ollama does (HTTP 500)."""
        for key, value in (self.get("options", {}) or {}).items():
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if key in INT_OPTIONS and not is_number:
                raise _ApiError(500, f"option {_q(key)} must be of type integer")
            if key in FLOAT_OPTIONS and not is_number:
                raise _ApiError(500, f"option {_q(key)} must be of type float32")


def _layer(media: str, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return {"mediaType": MEDIA + media, "digest": digest, "size": len(data)}


def _fake_layer(seed: str, size: int) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return {"mediaType": MEDIA + "model", "digest": digest, "size": size}


def _go_number(value: Any) -> Any:
    """Integral floats marshal without a fraction in Go (1.0 -> 1)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_go_number(item) for item in value]
    return value


def _content_layers(
    template: str, system: str, params: dict[str, Any], licenses: list[str], messages: list[Any]
) -> list[dict[str, Any]]:
    """Template/system/params/license/messages layers with the digests Ollama would compute."""
    layers = []
    if template:
        layers.append(_layer("template", template.encode()))
    if system:
        layers.append(_layer("system", system.encode()))
    if params:
        encoded = _dumps({k: _go_number(v) for k, v in params.items()}, sort_keys=True)
        layers.append(_layer("params", (encoded + "\n").encode()))
    layers.extend(_layer("license", text.encode()) for text in licenses)
    if messages:
        layers.append(_layer("messages", _line(messages)))
    return layers


def _param_value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1]
    for convert in (int, float):
        with suppress(ValueError):
            return convert(raw)
    return {"true": True, "false": False}.get(raw, raw)


def _parse_parameters(text: str) -> dict[str, Any]:
    """``key value`` lines (Modelfile PARAMETER or ``ollama show`` style) to a dict."""
    params: dict[str, Any] = {}
    for line in text.splitlines():
        key, _, raw = line.strip().partition(" ")
        if not key:
            continue
        value = _param_value(raw.strip())
        if key == "stop" or key in params:
            previous = params.get(key, [])
            params[key] = [*(previous if isinstance(previous, list) else [previous]), value]
        else:
            params[key] = value
    return params


def _format_param(value: Any, quote: bool) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and quote:
        return _q(value)
    return str(value)


def _param_items(params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            yield key, item


def _parameter_count(size: str) -> int:
    with suppress(ValueError, IndexError):
        return int(float(size[:-1]) * _SIZE_SUFFIX[size[-1].upper()])
    return 0


def _embedding(text: str, dims: int, scale: float = 1.0) -> list[float]:
    """A deterministic unit vector (times ``scale``) derived from the text's hash."""
    rng = random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest(), "big"))
    vector = [rng.uniform(-1.0, 1.0) for _ in range(dims)]
    return _normalize(vector, scale)


def _normalize(vector: list[float], scale: float = 1.0) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [float(f"{scale * x / norm:.8g}") for x in vector]


def _encode(events: _Events) -> Generator[bytes, None, None]:
    with closing(events):
        for event in events:
            yield _line(event)


def _no_blob(digest: str) -> dict[str, Any]:
    path = f"{MODELS_DIR}/blobs/{digest.replace(':', '-')}"
    return {"error": f"open {path}: no such file or directory"}


def _stats(load_ns: int, prompt_count: int, eval_count: int, eval_ns: int) -> dict[str, int]:
    prompt_ns = 40_000 * prompt_count + 500_000
    return {
        "total_duration": load_ns + prompt_ns + eval_ns + 200_000,
        "load_duration": load_ns,
        "prompt_eval_count": prompt_count,
        "prompt_eval_duration": prompt_ns,
        "eval_count": eval_count,
        "eval_duration": eval_ns,
    }


def _prompt_tokens(*texts: Any) -> int:
    return sum(len(str(text).split()) for text in texts) + 10


def _record(
    key: str,
    layers: list[dict[str, Any]],
    *,
    family: str = "llama",
    parameter_size: str = "1M",
    quantization_level: str = "F32",
    capabilities: list[str] | None = None,
    modified_at: str | None = None,
    template: str = DEFAULT_TEMPLATE,
    system: str = "",
    parameters: dict[str, Any] | None = None,
    license: list[str] | None = None,
    messages: list[Any] | None = None,
) -> dict[str, Any]:
    """A model record: the /api/tags fields plus what /api/show, push and create need."""
    manifest = _dumps([layer["digest"] for layer in layers])
    return {
        "name": key,
        "model": key,
        "modified_at": modified_at or _timestamp(),
        "size": sum(layer["size"] for layer in layers),
        "digest": hashlib.sha256(manifest.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": parameter_size,
            "quantization_level": quantization_level,
        },
        "capabilities": list(capabilities or ["completion"]),
        "template": template,
        "system": system,
        "parameters": dict(parameters or {}),
        "license": list(license or []),
        "messages": list(messages or []),
        "layers": layers,
    }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, app: OllamaTestServer, port: int) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host name."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (or sockets closed by ``stop``)."""
        if not isinstance(sys.exc_info()[1], (OSError, ValueError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # like Go: each streamed line leaves at once
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        with suppress(OSError, ValueError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Do not log each request to stderr."""

    def send_response(self, code: int, message: str | None = None) -> None:
        """Status line and Date only: Ollama sends no Server header."""
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline(16)
            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        app = self.server.app
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send_reply(_text(400, "400 Bad Request"), None)
            return
        raw_path = urlsplit(self.path).path
        path = app._strip_prefix(raw_path)
        request = RecordedRequest(
            self.command,
            raw_path if path is None else path,
            dict(self.headers.items()),
            body,
            _try_json(body),
        )
        app.requests.append(request)
        fault = None if path is None else app._take_fault(request)
        if fault is not None and fault.delay > 0:
            app._pause(fault.delay)
        result: _Result
        if path is None:
            result = _text(404, "404 page not found")
        elif fault is not None and fault.status is not None:
            result = _Reply(fault.status, fault.body, fault.content_type)
        elif not app._authorized(self.headers.get("Authorization", "")):
            result = _error(401, "unauthorized")
            if app.basic_auth is not None:
                result.headers = (("WWW-Authenticate", 'Basic realm="ollama"'),)
        else:
            result = app._dispatch(request)
        if isinstance(result, _Stream):
            self._send_stream(result.lines, fault)
        else:
            self._send_reply(result, fault)

    def _send_reply(self, reply: _Reply, fault: _Fault | None) -> None:
        if fault is not None and fault.drop_after_lines is not None:
            self._abort()
            return
        if fault is not None and fault.stall_after_lines is not None:
            self._stall(fault.stall_seconds)
            return
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for key, value in reply.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    def _send_stream(self, lines: Generator[bytes, None, None], fault: _Fault | None) -> None:
        """Write NDJSON lines as HTTP/1.1 chunks, one chunk per line, applying a fault if any."""
        self.send_response(200)
        self.send_header("Content-Type", NDJSON_TYPE)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        drop = stall = None
        if fault is not None:
            drop, stall = fault.drop_after_lines, fault.stall_after_lines
        write = self.wfile.write
        sent = 0
        with closing(lines):
            for line in lines:
                if (drop is not None and sent >= drop) or (stall is not None and sent >= stall):
                    break
                write(b"%x\r\n%s\r\n" % (len(line), line))
                sent += 1
                if sent > 1 or fault is None:
                    continue
                if fault.error_line is not None:
                    error = _line({"error": fault.error_line})
                    write(b"%x\r\n%s\r\n" % (len(error), error))
                    break
                if fault.malformed_line:
                    following = next(lines, line)
                    broken = following[: len(following) // 2] + b"\n"
                    write(b"%x\r\n%s\r\n" % (len(broken), broken))
                    sent += 1
        if drop is not None:
            self._abort()
        elif fault is not None and stall is not None:
            self._stall(fault.stall_seconds)
        else:
            write(b"0\r\n\r\n")

    def _stall(self, seconds: float) -> None:
        """Stay silent for ``seconds``, or until the client hangs up (sets ``stall_released``)."""
        app = self.server.app
        deadline = time.monotonic() + seconds
        while not app._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            if not select.select([self.connection], [], [], min(left, 0.05))[0]:
                continue
            try:
                data = self.connection.recv(65536)
            except OSError:
                data = b""
            if not data:  # the client closed its end
                app.stall_released.set()
                break
        self._abort()

    def _abort(self) -> None:
        """Close the socket at once: no (further) response, no terminating chunk."""
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class OllamaTestServer:
    """An in-memory Ollama server on 127.0.0.1 with a random port (see the module docstring).

    Knobs besides the constructor: ``generation`` (tokens, token_count, token_delay, thinking,
    tool_calls), ``pull_steps`` (progress events per layer), ``pull_delay`` (seconds between
    pull/push events), ``pull_progress`` (digest -> bytes already pulled, used to resume),
    ``resume_gate`` (holds a resumed pull until set), ``embedding_length`` and
    ``embed_requires_capability``; ``stall_released`` tells that a client hung up on a stall.
    """

    def __init__(
        self,
        *,
        prefix: str = "",
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        lifetime: float = 300.0,
        port: int = 0,
    ) -> None:
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.token = token
        self.basic_auth = basic_auth
        self.lifetime = lifetime
        self.port = port
        self.models: dict[str, dict[str, Any]] = {}
        self.registry: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.running: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.generation: dict[str, Any] = {
            "tokens": ["Hello", ",", " world", "!"],
            "token_count": 0,
            "token_delay": 0.0,
            "thinking": None,
            "tool_calls": None,
        }
        self.pull_steps = 5
        self.pull_delay = 0.0
        self.pull_progress: dict[str, int] = {}
        #: When set, a resumed pull stops after reporting where it resumes until this is set.
        self.resume_gate: threading.Event | None = None
        self.embedding_length = 8
        self.embed_requires_capability = False
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        #: Set when a client hangs up on a stalled answer (see ``add_fault(stall_after_lines=)``).
        self.stall_released = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL to give a client, including the prefix."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def start(self) -> OllamaTestServer:
        """Bind 127.0.0.1 and serve in a daemon thread; stop by itself after ``lifetime``."""
        self._httpd = _HTTPServer(self, self.port)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ollama-test-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection, including stalled streams. Idempotent."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        for conn in list(self._httpd.connections):
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def __enter__(self) -> OllamaTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_for(self, gate: threading.Event) -> None:
        """Wait until ``gate`` is set or the server stops (at the end of its lifetime at most)."""
        while not gate.wait(0.05) and not self._stopping.is_set():
            pass

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    # -- state helpers ---------------------------------------------------------------------

    def add_model(
        self,
        name: str,
        *,
        size: int = 605_000,
        family: str = "llama",
        parameter_size: str = "1M",
        quantization_level: str = "F32",
        capabilities: list[str] | None = None,
        modified_at: str | None = None,
        template: str = DEFAULT_TEMPLATE,
        system: str = "",
        parameters: str = "",
        license: str = "",
    ) -> dict[str, Any]:
        """Add a local model; ``size`` is its total size over all layers. Returns the record."""
        key = self._key(name)
        params = _parse_parameters(parameters)
        licenses = [license] if license else []
        content = _content_layers(template, system, params, licenses, [])
        weights = _fake_layer(f"weights:{key}", max(size - sum(x["size"] for x in content), 1))
        record = _record(
            key,
            [weights, *content],
            family=family,
            parameter_size=parameter_size,
            quantization_level=quantization_level,
            capabilities=capabilities,
            modified_at=modified_at,
            template=template,
            system=system,
            parameters=params,
            license=licenses,
        )
        self.models[key] = record
        return record

    def add_registry_model(self, name: str, layers: list[int], **metadata: Any) -> None:
        """Make ``name`` pullable; ``layers`` are layer sizes, metadata as for ``add_model``."""
        key = self._key(name)
        if isinstance(metadata.get("parameters"), str):
            metadata["parameters"] = _parse_parameters(metadata["parameters"])
        if isinstance(metadata.get("license"), str):
            metadata["license"] = [metadata["license"]] if metadata["license"] else []
        self.registry[key] = _record(
            key, [_fake_layer(f"{key}:{i}", size) for i, size in enumerate(layers)], **metadata
        )

    def add_fault(
        self,
        path: str,
        *,
        method: str | None = None,
        status: int | None = None,
        body: str | bytes | None = None,
        content_type: str = JSON_TYPE,
        delay: float = 0.0,
        drop_after_lines: int | None = None,
        error_line: str | None = None,
        malformed_line: bool = False,
        stall_after_lines: int | None = None,
        stall_seconds: float = 0.0,
        times: int = 1,
    ) -> None:
        """Misbehave on the next ``times`` requests to ``path`` (glob, without prefix; -1 = always).

        ``status``/``body`` replace the answer; ``delay`` waits before the headers. On streams:
        ``drop_after_lines`` sends N lines then closes the socket (no terminating chunk; on a
        plain JSON answer the socket closes before any response), ``error_line`` sends
        ``{"error": ...}`` after the first line and ends, ``malformed_line`` replaces the second
        line by a truncated copy, ``stall_after_lines`` sends N lines then goes silent for
        ``stall_seconds`` and closes.
        """
        data = body.encode() if isinstance(body, str) else (body or b"")
        fault = _Fault(
            path,
            method,
            status,
            data,
            content_type,
            delay,
            drop_after_lines,
            error_line,
            malformed_line,
            stall_after_lines,
            stall_seconds,
            times,
        )
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, request: RecordedRequest) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, request.method):
                    continue
                if not fnmatch.fnmatchcase(request.path, fault.path):
                    continue
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _key(self, name: str) -> str:
        parsed = _parse_name(name)
        if parsed is None:
            raise ValueError(f"invalid model name: {name!r}")
        return parsed.key

    def _strip_prefix(self, path: str) -> str | None:
        if not self.prefix:
            return path
        if path == self.prefix or path.startswith(self.prefix + "/"):
            return path[len(self.prefix) :] or "/"
        return None

    def _authorized(self, header: str) -> bool:
        accepted = set()
        if self.token is not None:
            accepted.add(f"Bearer {self.token}")
        if self.basic_auth is not None:
            user, password = self.basic_auth
            accepted.add("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        return not accepted or header in accepted

    def _local(self, raw: str) -> dict[str, Any] | None:
        parsed = _parse_name(raw)
        return None if parsed is None else self.models.get(parsed.key)

    def _load(self, model: dict[str, Any], keep_alive: float) -> int:
        """Mark a model loaded (or unload it for keep_alive 0); returns the load duration."""
        key = model["name"]
        load_ns = WARM_LOAD_NS if key in self.running else COLD_LOAD_NS
        if keep_alive == 0:
            self.running.pop(key, None)
            return load_ns
        seconds = FOREVER_S if keep_alive < 0 else keep_alive
        self.running[key] = {
            "name": key,
            "model": key,
            "size": model["size"] + KV_CACHE_BYTES,
            "digest": model["digest"],
            "details": copy.deepcopy(model["details"]),
            "expires_at": _timestamp(time.time_ns() + int(seconds * 1e9)),
            "size_vram": 0,
        }
        return load_ns

    # -- routing ---------------------------------------------------------------------------

    def _dispatch(self, request: RecordedRequest) -> _Result:
        path = request.path
        route = "/api/blobs/" if path.startswith("/api/blobs/") else path
        methods = _ROUTES.get(route)
        if methods is None:
            return _text(404, "404 page not found")
        name = methods.get(request.method)
        if name is None:
            return _text(405, "405 method not allowed")
        try:
            result: _Result = getattr(self, name)(request)
        except _ApiError as exc:
            return exc.reply
        except Exception as exc:
            traceback.print_exc()
            return _error(500, f"test server error: {exc!r}")
        return result

    def _root(self, request: RecordedRequest) -> _Result:
        return _text(200, "Ollama is running", TEXT_TYPE)

    def _version(self, request: RecordedRequest) -> _Result:
        return _json({"version": VERSION})

    def _tags(self, request: RecordedRequest) -> _Result:
        fields = ("name", "model", "modified_at", "size", "digest", "details")
        models = sorted(self.models.values(), key=lambda m: m["modified_at"], reverse=True)
        return _json({"models": [{k: m[k] for k in fields} for m in models]})

    def _ps(self, request: RecordedRequest) -> _Result:
        running = sorted(self.running.values(), key=lambda m: m["expires_at"], reverse=True)
        return _json({"models": running})

    def _show(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "ShowRequest")
        raw = body.text("model", "name")
        if not raw:
            raise _ApiError(400, "model is required")
        if _parse_name(raw) is None:
            raise _ApiError(400, "invalid model name")
        model = self._local(raw)
        if model is None:
            raise _ApiError(404, f"model '{raw}' not found")
        return _json(self._show_body(model, bool(body.get("verbose"))))

    def _show_body(self, model: dict[str, Any], verbose: bool) -> dict[str, Any]:
        details, params = model["details"], model["parameters"]
        family = details["family"]
        weights = model["layers"][0]["digest"].replace(":", "-")
        lines = [
            '# Modelfile generated by "ollama show"',
            "# To build a new Modelfile based on this, replace FROM with:",
            f"# FROM {model['name']}",
            "",
            f"FROM {MODELS_DIR}/blobs/{weights}",
        ]
        if model["template"]:
            lines.append(f'TEMPLATE "{model["template"]}"')
        if model["system"]:
            lines.append(f'SYSTEM "{model["system"]}"')
        lines += [f"PARAMETER {k} {_format_param(v, False)}" for k, v in _param_items(params)]
        lines += [f'LICENSE """{text}"""' for text in model["license"]]
        lines += [f"MESSAGE {m.get('role')} {m.get('content')}" for m in model["messages"]]
        vocab = ["<unk>", "<s>", "</s>", *(f"<0x{i:02X}>" for i in range(8))]
        info: dict[str, Any] = {
            "general.architecture": family,
            "general.file_type": 0,
            "general.parameter_count": _parameter_count(details["parameter_size"]),
            f"{family}.block_count": 2,
            f"{family}.context_length": 2048,
            f"{family}.embedding_length": self.embedding_length,
            "tokenizer.ggml.model": "llama",
            "tokenizer.ggml.scores": [0.0] * len(vocab) if verbose else None,
            "tokenizer.ggml.token_type": [2, 3, 3] + [6] * (len(vocab) - 3) if verbose else None,
            "tokenizer.ggml.tokens": vocab if verbose else None,
        }
        show: dict[str, Any] = {}
        if model["license"]:
            show["license"] = "\n".join(model["license"])
        show["modelfile"] = "\n".join(lines) + "\n"
        if params:
            ordered = _param_items(dict(sorted(params.items())))
            show["parameters"] = "\n".join(f"{k:<30} {_format_param(v, True)}" for k, v in ordered)
        if model["template"]:
            show["template"] = model["template"]
        if model["system"]:
            show["system"] = model["system"]
        show["details"] = details
        if model["messages"]:
            show["messages"] = model["messages"]
        show["model_info"] = info
        show["tensors"] = [
            {
                "name": "token_embd.weight",
                "type": details["quantization_level"],
                "shape": [self.embedding_length, 514],
            },
            {"name": "output_norm.weight", "type": "F32", "shape": [self.embedding_length]},
        ]
        show["capabilities"] = model["capabilities"]
        show["modified_at"] = model["modified_at"]
        return show

    def _copy(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "CopyRequest")
        source, destination = body.text("source"), body.text("destination")
        src, dst = _parse_name(source), _parse_name(destination)
        if src is None:
            raise _ApiError(400, f"source {_q(source)} is invalid")
        if dst is None:
            raise _ApiError(400, f"destination {_q(destination)} is invalid")
        model = self.models.get(src.key)
        if model is None:
            raise _ApiError(404, f"model {_q(source)} not found")
        duplicate = copy.deepcopy(model)
        duplicate.update(name=dst.key, model=dst.key, modified_at=_timestamp())
        self.models[dst.key] = duplicate
        return _Reply(200, content_type=None)

    def _delete(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "DeleteRequest")
        raw = body.text("model", "name")
        parsed = _parse_name(raw)
        if parsed is None:
            raise _ApiError(400, f"name {_q(raw)} is invalid")
        if self.models.pop(parsed.key, None) is None:
            raise _ApiError(404, f"model '{raw}' not found")
        self.running.pop(parsed.key, None)
        return _Reply(200, content_type=None)

    # -- generation ------------------------------------------------------------------------

    def _tokens(self, fmt: Any) -> tuple[Iterable[str], int]:
        """The reply tokens and their number (``format`` turns them into one JSON text)."""
        count = int(self.generation.get("token_count") or 0)
        tokens: Iterable[str]
        if count > 0:
            tokens = (f"tok{i} " for i in range(count))
        else:
            tokens = list(self.generation.get("tokens") or [])
            count = len(tokens)
        if fmt:
            tokens = ['{"response": ', json.dumps("".join(tokens)), "}"]
            count = 3
        return tokens, count

    def _check_model(
        self, model: dict[str, Any], raw: str, *, think: Any, images: bool, tools: bool = False
    ) -> None:
        caps = model["capabilities"]
        missing = [
            cap
            for cap, wanted in (("completion", True), ("tools", tools), ("vision", images))
            if wanted and cap not in caps
        ]
        if missing:
            raise _ApiError(400, f"{_full_name(model)} does not support {' '.join(missing)}")
        if think and "thinking" not in caps:
            raise _ApiError(400, f"{_q(raw)} does not support thinking")

    def _reply_plan(self, body: _Body) -> tuple[list[str], Iterable[str], int, str]:
        """Thinking pieces, tokens (capped by num_predict), their count and the done_reason."""
        tokens, count = self._tokens(body.get("format"))
        limit = body.get("options", {}).get("num_predict")
        reason = "stop"
        if isinstance(limit, (int, float)) and 0 <= limit < count:
            tokens, count, reason = itertools.islice(tokens, int(limit)), int(limit), "length"
        thinking = list(self.generation.get("thinking") or []) if body.get("think") else []
        return thinking, tokens, count, reason

    def _generate(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "GenerateRequest")
        raw = body.text("model")
        keep_alive = body.keep_alive()
        if _parse_name(raw) is None:
            raise _ApiError(404, f"model '{raw}' not found")
        prompt = body.text("prompt")
        raw_mode = bool(body.get("raw"))
        if raw_mode and (body.get("template") or body.get("system") or body.get("context")):
            raise _ApiError(400, "raw mode does not support template, system, or context")
        model = self._local(raw)
        if model is None:
            raise _ApiError(404, f"model '{raw}' not found")
        self._check_model(model, raw, think=body.get("think"), images=bool(body.get("images")))
        body.check_options()
        load_ns = self._load(model, keep_alive)
        if not prompt and not body.get("images"):
            reason = "unload" if keep_alive == 0 else "load"
            return _json(
                {
                    "model": raw,
                    "created_at": _timestamp(),
                    "response": "",
                    "done": True,
                    "done_reason": reason,
                }
            )
        thinking, tokens, count, reason = self._reply_plan(body)
        prompt_count = _prompt_tokens(prompt, body.get("system", ""))

        def finish(response: str, thought: str, eval_ns: int) -> dict[str, Any]:
            final: dict[str, Any] = {"model": raw, "created_at": _timestamp(), "response": response}
            if thought:
                final["thinking"] = thought
            final.update(done=True, done_reason=reason)
            if not raw_mode:
                final["context"] = [(i * 37 + 13) % 514 for i in range(prompt_count + count)]
            final.update(_stats(load_ns, prompt_count, count + len(thinking), eval_ns))
            return final

        if not body.stream:
            response, thought, eval_ns = self._collect(thinking, tokens)
            return _json(finish(response, thought, eval_ns))
        head = '{"model":' + _dumps(raw) + ',"created_at":"'
        return _Stream(
            self._token_lines(
                thinking,
                tokens,
                lambda text: f'","response":"","thinking":{text},"done":false}}\n',
                lambda text: f'","response":{text},"done":false}}\n',
                head,
                lambda eval_ns: finish("", "", eval_ns),
            )
        )

    def _chat(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "ChatRequest")
        raw = body.text("model")
        keep_alive = body.keep_alive()
        if not raw:
            raise _ApiError(400, "model is required")
        model = self._local(raw)
        if model is None:
            raise _ApiError(404, f"model {_q(raw)} not found, try pulling it first")
        messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
        tools = body.get("tools", [])
        self._check_model(
            model,
            raw,
            think=body.get("think"),
            tools=bool(tools),
            images=any(m.get("images") for m in messages),
        )
        body.check_options()
        load_ns = self._load(model, keep_alive)
        if not messages:
            reason = "unload" if keep_alive == 0 else "load"
            return _json(
                {
                    "model": raw,
                    "created_at": _timestamp(),
                    "message": {"role": "assistant", "content": ""},
                    "done_reason": reason,
                    "done": True,
                }
            )
        prompt_count = _prompt_tokens(*(m.get("content", "") for m in messages)) + 4 * len(messages)
        if tools and messages[-1].get("role") != "tool":
            return self._tool_call_reply(raw, body, tools, load_ns, prompt_count)
        thinking, tokens, count, reason = self._reply_plan(body)

        def finish(content: str, thought: str, eval_ns: int) -> dict[str, Any]:
            message = {"role": "assistant", "content": content}
            if thought:
                message["thinking"] = thought
            return {
                "model": raw,
                "created_at": _timestamp(),
                "message": message,
                "done_reason": reason,
                "done": True,
                **_stats(load_ns, prompt_count, count + len(thinking), eval_ns),
            }

        if not body.stream:
            content, thought, eval_ns = self._collect(thinking, tokens)
            return _json(finish(content, thought, eval_ns))
        head = '{"model":' + _dumps(raw) + ',"created_at":"'
        message = '","message":{"role":"assistant","content":'
        return _Stream(
            self._token_lines(
                thinking,
                tokens,
                lambda text: f'{message}"","thinking":{text}}},"done":false}}\n',
                lambda text: f'{message}{text}}},"done":false}}\n',
                head,
                lambda eval_ns: finish("", "", eval_ns),
            )
        )

    def _tool_call_reply(
        self, raw: str, body: _Body, tools: list[Any], load_ns: int, prompt_count: int
    ) -> _Result:
        """Answer a chat that offers tools with a call of the first tool (or generation knob)."""
        calls = self.generation.get("tool_calls")
        if calls is None:
            function = (tools[0] or {}).get("function", {})
            schema = function.get("parameters", {}) or {}
            samples = {"string": "Paris", "number": 1, "integer": 1, "boolean": True}
            arguments = {
                prop: samples.get((schema.get("properties", {}).get(prop) or {}).get("type"), "x")
                for prop in schema.get("required", [])
            }
            calls = [
                {"function": {"index": 0, "name": function.get("name", ""), "arguments": arguments}}
            ]
        calling = {"role": "assistant", "content": "", "tool_calls": calls}
        stats = _stats(load_ns, prompt_count, 1, 1_000_000)

        def reply(message: dict[str, Any], done: bool) -> dict[str, Any]:
            head = {"model": raw, "created_at": _timestamp(), "message": message}
            if not done:
                return {**head, "done": False}
            return {**head, "done_reason": "stop", "done": True, **stats}

        if not body.stream:
            return _json(reply(calling, True))

        def events() -> _Events:
            yield reply(calling, False)
            yield reply({"role": "assistant", "content": ""}, True)

        return _Stream(_encode(events()))

    def _collect(self, thinking: list[str], tokens: Iterable[str]) -> tuple[str, str, int]:
        """Generate everything for a non-streamed reply (honouring token_delay)."""
        delay = float(self.generation.get("token_delay") or 0)
        start = time.perf_counter_ns()
        pieces = []
        for token in itertools.chain(thinking, tokens):
            self._pause(delay)
            pieces.append(token)
        return (
            "".join(pieces[len(thinking) :]),
            "".join(thinking),
            max(time.perf_counter_ns() - start, 1),
        )

    def _token_lines(
        self,
        thinking: list[str],
        tokens: Iterable[str],
        think_tail: Callable[[str], str],
        token_tail: Callable[[str], str],
        head: str,
        finish: Callable[[int], dict[str, Any]],
    ) -> Generator[bytes, None, None]:
        """Stream lines built by string concatenation (fast enough for 100k-token benchmarks)."""
        delay = float(self.generation.get("token_delay") or 0)
        start = time.perf_counter_ns()
        for tail, pieces in ((think_tail, thinking), (token_tail, tokens)):
            for piece in pieces:
                self._pause(delay)
                yield (head + _timestamp() + tail(_dumps(piece))).encode()
        yield _line(finish(max(time.perf_counter_ns() - start, 1)))

    # -- embeddings ------------------------------------------------------------------------

    def _embed_model(self, raw: str) -> dict[str, Any]:
        model = self._local(raw)
        if model is None:
            raise _ApiError(404, f"model {_q(raw)} not found, try pulling it first")
        if self.embed_requires_capability and "embedding" not in model["capabilities"]:
            raise _ApiError(400, f"{_full_name(model)} does not support embedding")
        return model

    def _embed(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "EmbedRequest")
        raw = body.text("model")
        keep_alive = body.keep_alive()
        model = self._embed_model(raw)
        value = body.get("input", [])
        if isinstance(value, str):
            inputs = [value] if value else []
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            inputs = value
        else:
            raise _ApiError(400, "invalid input type")
        body.check_options()
        load_ns = self._load(model, keep_alive)
        if not inputs:
            return _json({"model": raw, "embeddings": []})
        vectors = [_embedding(f"{model['name']}\n{text}", self.embedding_length) for text in inputs]
        dims = body.get("dimensions")
        if isinstance(dims, int) and 0 < dims < self.embedding_length:
            vectors = [_normalize(vector[:dims]) for vector in vectors]
        prompt_count = sum(len(text.split()) + 2 for text in inputs)
        return _json(
            {
                "model": raw,
                "embeddings": vectors,
                "total_duration": load_ns + 3_000_000 * len(inputs),
                "load_duration": load_ns,
                "prompt_eval_count": prompt_count,
            }
        )

    def _embeddings(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "EmbeddingRequest")
        raw = body.text("model")
        keep_alive = body.keep_alive()
        model = self._embed_model(raw)
        prompt = body.text("prompt")
        body.check_options()
        self._load(model, keep_alive)
        if not prompt:
            return _json({"embedding": []})
        scale = 8.0  # the legacy endpoint does not normalise
        return _json(
            {"embedding": _embedding(f"{model['name']}\n{prompt}", self.embedding_length, scale)}
        )

    # -- pull / push / create --------------------------------------------------------------

    def _progress_reply(self, body: _Body, events: _Events) -> _Result:
        """Stream the events, or with ``stream: false`` answer like Ollama's waitForStream."""
        if body.stream:
            return _Stream(_encode(events))
        last: dict[str, Any] = {}
        with closing(events):
            for event in events:
                if "error" in event:
                    status = event.get("status", 500)
                    return _error(status, event["error"], WAIT_TYPE)
                last = event
        return _json(last, 200, WAIT_TYPE)

    def _pull(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "PullRequest")
        parsed = _parse_name(body.text("model", "name"))
        if parsed is None:
            raise _ApiError(400, "invalid model name")
        return self._progress_reply(body, self._pull_events(parsed.key, final=True))

    def _pull_events(self, key: str, *, final: bool) -> _Events:
        """Pull progress; progress per digest is saved once a line was consumed (sent)."""
        yield {"status": "pulling manifest"}
        source = self.registry.get(key)
        if source is None:
            yield {"error": "pull model manifest: file does not exist"}
            return
        for layer in source["layers"]:
            digest, total = layer["digest"], layer["size"]
            done = min(self.pull_progress.get(digest, 0), total)
            steps = max(self.pull_steps, 1)
            if done >= total:
                points = [total]
            else:  # a resumed pull first reports what it already has
                points = [done] if done else []
                points += [done + (total - done) * i // steps for i in range(1, steps + 1)]
            for completed in points:
                self._pause(self.pull_delay)
                yield {
                    "status": f"pulling {digest[7:19]}",
                    "digest": digest,
                    "total": total,
                    "completed": completed,
                }
                self.pull_progress[digest] = completed
                if done and completed == done and self.resume_gate is not None:
                    self._wait_for(self.resume_gate)
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        model = copy.deepcopy(source)
        model["modified_at"] = _timestamp()
        self.models[key] = model
        if final:
            yield {"status": "success"}

    def _push(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "PushRequest")
        raw = body.text("model", "name")
        if not raw:
            raise _ApiError(400, "model is required")
        parsed = _parse_name(raw)
        if parsed is None:
            raise _ApiError(400, "invalid model name")
        return self._progress_reply(body, self._push_events(parsed))

    def _push_events(self, name: _Name) -> _Events:
        yield {"status": "retrieving manifest"}
        model = self.models.get(name.key)
        if model is None:
            path = f"{MODELS_DIR}/manifests/{name.host}/{name.namespace}/{name.model}/{name.tag}"
            yield {"status": "couldn't retrieve manifest"}
            yield {"error": f"open {path}: no such file or directory"}
            return
        for layer in model["layers"]:
            digest, total = layer["digest"], layer["size"]
            steps = max(self.pull_steps, 1)
            for i in range(1, steps + 1):
                self._pause(self.pull_delay)
                yield {
                    "status": f"pushing {digest[7:19]}",
                    "digest": digest,
                    "total": total,
                    "completed": total * i // steps,
                }
        yield {"status": "pushing manifest"}
        self.registry[name.key] = copy.deepcopy(model)
        yield {"status": "success"}

    def _create(self, request: RecordedRequest) -> _Result:
        body = _Body(request.body, "CreateRequest")
        parsed = _parse_name(body.text("model", "name"))
        if parsed is None:
            raise _ApiError(400, "invalid model name")
        return self._progress_reply(body, self._create_events(parsed.key, body))

    def _create_events(self, key: str, body: _Body) -> _Events:
        """Create from a local/registry model (``from``) or uploaded blobs (``files``)."""
        base: dict[str, Any] | None = None
        source = body.text("from")
        files = body.get("files")
        if source:
            parsed = _parse_name(source)
            if parsed is None:
                yield {"error": "invalid model name", "status": 400}
                return
            if parsed.key not in self.models:
                if parsed.key not in self.registry:
                    # Recorded from Ollama 0.9.3: the error line, then it carries on regardless.
                    yield {"status": "pulling manifest"}
                    yield {"error": "pull model manifest: file does not exist"}
                    yield {"status": "writing manifest"}
                    yield {"status": "success"}
                    return
                yield from self._pull_events(parsed.key, final=False)
            base = self.models[parsed.key]
            weights = [x for x in base["layers"] if x["mediaType"] in _WEIGHT_MEDIA]
        elif isinstance(files, dict):
            digests = [digest.replace("sha256-", "sha256:", 1) for digest in files.values()]
            missing = [digest for digest in digests if digest not in self.blobs]
            if missing:
                yield _no_blob(missing[0])
                return
            yield {"status": "parsing GGUF"}
            weights = [_layer("model", self.blobs[digest]) for digest in digests]
        else:
            yield {"error": "neither 'from' or 'files' was specified", "status": 400}
            return
        meta = copy.deepcopy(base) if base else _record(key, [], template="")
        details = meta["details"]
        known = {x["digest"] for m in self.models.values() for x in m["layers"]} | set(self.blobs)
        quantize = body.text("quantize", "quantization")
        if quantize:
            level = quantize.upper()
            if level not in QUANT_TYPES:
                yield {"error": f"unsupported quantization type {quantize}", "status": 400}
                return
            if details["quantization_level"] not in ("F16", "F32"):
                yield {
                    "error": "quantization is only supported for F16 and F32 models",
                    "status": 400,
                }
                return
            yield {"status": f"quantizing {details['quantization_level']} model to {level}"}
            weights = [
                _fake_layer(f"{x['digest']}:{level}", max(x["size"] // 4, 1)) for x in weights
            ]
            details["quantization_level"] = level
        for digest in (body.get("adapters", {}) or {}).values():
            digest = digest.replace("sha256-", "sha256:", 1)
            if digest not in self.blobs:
                yield _no_blob(digest)
                return
            weights.append(_layer("adapter", self.blobs[digest]))
        license_value = body.get("license", meta["license"])
        meta.update(
            template=body.text("template") or meta["template"],
            system=body.text("system") or meta["system"],
            parameters={**meta["parameters"], **(body.get("parameters", {}) or {})},
            license=[license_value] if isinstance(license_value, str) else list(license_value),
            messages=body.get("messages", meta["messages"]),
        )
        content = _content_layers(
            meta["template"], meta["system"], meta["parameters"], meta["license"], meta["messages"]
        )
        for layer in weights + content:
            verb = "using existing" if layer["digest"] in known else "creating new"
            yield {"status": f"{verb} layer {layer['digest']}"}
        yield {"status": "writing manifest"}
        self.models[key] = _record(
            key,
            weights + content,
            family=details["family"],
            parameter_size=details["parameter_size"],
            quantization_level=details["quantization_level"],
            capabilities=meta["capabilities"],
            template=meta["template"],
            system=meta["system"],
            parameters=meta["parameters"],
            license=meta["license"],
            messages=meta["messages"],
        )
        yield {"status": "success"}

    # -- blobs -----------------------------------------------------------------------------

    def _blob(self, request: RecordedRequest) -> _Result:
        raw = request.path[len("/api/blobs/") :]
        match = _DIGEST_RE.fullmatch(raw)
        if match is None:
            raise _ApiError(400, "invalid digest format")
        digest = "sha256:" + match.group(1).lower()
        if request.method == "HEAD":
            if digest in self.blobs:
                return _Reply(200, content_type=None)
            return _error(404, f"blob {_q(digest)} not found")
        if digest in self.blobs:
            return _Reply(200, content_type=None)
        actual = "sha256:" + hashlib.sha256(request.body).hexdigest()
        if actual != digest:
            raise _ApiError(400, f"digest mismatch, expected {_q(digest)}, got {_q(actual)}")
        self.blobs[digest] = request.body
        return _Reply(201, content_type=None)


_ROUTES: dict[str, dict[str, str]] = {
    "/": {"GET": "_root", "HEAD": "_root"},
    "/api/version": {"GET": "_version", "HEAD": "_version"},
    "/api/tags": {"GET": "_tags", "HEAD": "_tags"},
    "/api/ps": {"GET": "_ps"},
    "/api/show": {"POST": "_show"},
    "/api/copy": {"POST": "_copy"},
    "/api/delete": {"DELETE": "_delete"},
    "/api/generate": {"POST": "_generate"},
    "/api/chat": {"POST": "_chat"},
    "/api/embed": {"POST": "_embed"},
    "/api/embeddings": {"POST": "_embeddings"},
    "/api/pull": {"POST": "_pull"},
    "/api/push": {"POST": "_push"},
    "/api/create": {"POST": "_create"},
    "/api/blobs/": {"HEAD": "_blob", "POST": "_blob"},
}


def _names(values: list[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    """Serve until killed or until --lifetime expires; prints ``READY <url>`` once listening."""
    parser = argparse.ArgumentParser(description="Ollama-compatible test server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    parser.add_argument("--models", nargs="*", default=["tiny:latest"], help="local models")
    parser.add_argument("--registry-models", nargs="*", default=[], help="pullable models")
    parser.add_argument("--token-count", type=int, default=0, help="reply with N tokens")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds per token")
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args(argv)
    server = OllamaTestServer(
        prefix=args.prefix, token=args.token, lifetime=args.lifetime, port=args.port
    )
    for name in _names(args.models):
        server.add_model(name)
    for name in _names(args.registry_models):
        server.add_registry_model(name, [605_000, 124, 60, 414])
    server.generation.update(token_count=args.token_count, token_delay=args.token_delay)
    server.start()
    print(f"READY {server.url}", flush=True)
    try:
        server._stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
