"""A fault-injecting HTTP proxy on 127.0.0.1, and a bounded runner of the real CLI.

The proxy sits in front of the local Ollama test server (or answers alone) and misbehaves as
hostile networks and servers do: a stream that ends cleanly too early or breaks off, response
headers that drip in a byte at a time, 429/503 with ``Retry-After``, a gzip bomb, a 401 whose
body echoes the request headers, redirects to another origin or scheme, and any canned answer
(terminal escapes in an error, a 200 holding ``{"error": ...}``). Optionally it speaks TLS.
Every loop in it is bounded and it stops by itself after ``lifetime`` seconds::

    with FaultProxy(server.url) as proxy:
        proxy.add_fault("/api/pull", cut_after_lines=3)
        outcome = run_ollamactl("--host", proxy.url, "pull", "fresh")

:func:`run_ollamactl` runs ``python -m ollamactl`` in a subprocess with 1 GB of address space
(a client that swallows a bomb dies instead of the machine) and kills it after ``bound``
seconds: an outcome whose ``code`` is ``None`` is a command that was still running.
"""

from __future__ import annotations

import fnmatch
import functools
import http.client
import json
import os
import resource
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any, Union
from urllib.parse import urlsplit

import pytest

from tests.gateway import Certificates, assert_one_clean_error, certificates

#: Seconds between two bytes of a drip.
DRIP_SECONDS = 0.4
#: Longest a held request waits for the others (see ``Fault.hold_until``).
HOLD_SECONDS = 10.0
#: Longest the proxy waits for the upstream server.
UPSTREAM_TIMEOUT_SECONDS = 30.0
#: Address space of a CLI subprocess: enough for Python, too little for a swallowed bomb.
MEMORY_LIMIT_BYTES = 1 << 30
#: Longest a CLI subprocess may run; a correct client ends every test case far sooner.
BOUND_SECONDS = 6.0
JSON_TYPE = "application/json; charset=utf-8"
#: Hop-by-hop and framing headers the proxy sets itself.
_OWN_HEADERS = {"connection", "content-length", "transfer-encoding", "keep-alive"}
Stdio = Union[int, IO[Any], None]
#: The classes of defects of issue 13, by number.
ISSUE_13 = {
    1: "a stream that ends cleanly before done counts as success",
    2: "waiting has no bound",
    3: "secrets printed when a value cannot be parsed",
    4: "values never validated crash later",
    5: "streams and files not what they seem",
    6: "concurrent writers lose data",
    7: "unbounded memory",
    8: "untrusted text reaches the terminal raw",
    9: "trust and transport",
    10: "partial answers, stray files, short or mislabelled answers",
}


def known_failure(*numbers: int) -> pytest.MarkDecorator:
    """The xfail marker of a test that fails today because of these classes of issue 13.

    Strict: once the product is fixed the test passes, pytest reports that, and the marker goes.
    """
    classes = "; ".join(ISSUE_13[number] for number in numbers)
    return pytest.mark.xfail(reason=f"issue 13: {classes}", strict=True)


@dataclass
class Fault:
    """How to misbehave on the requests to ``path`` (a glob); see :meth:`FaultProxy.add_fault`."""

    path: str = "*"
    times: int = -1
    status: int | None = None
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    echo_request: bool = False
    redirect: str | None = None
    gzip_bomb: int = 0
    cut_after_lines: int | None = None
    abort_after_lines: int | None = None
    drip_bytes: int = 0
    hold_until: int = 0

    @property
    def answers(self) -> bool:
        """True when the proxy answers itself instead of asking the upstream server."""
        return self.status is not None or self.echo_request or bool(self.redirect or self.gzip_bomb)


@dataclass
class ProxiedRequest:
    """A request as the proxy received it (the client's view of the wire)."""

    method: str
    path: str
    headers: dict[str, str]


@functools.lru_cache(maxsize=4)
def gzip_bomb(expanded_bytes: int) -> bytes:
    """A gzip body of ``{``, ``expanded_bytes`` spaces and ``}``: valid JSON (an empty object)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    parts = [compressor.compress(b"{")]
    left = expanded_bytes
    while left > 0:
        parts.append(compressor.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts += [compressor.compress(b"}"), compressor.flush()]
    return b"".join(parts)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A threaded server (a plain TCPServer: no reverse DNS lookup of its address)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up are the point of this proxy: keep quiet about them."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Do not log each request to stderr."""

    def do_GET(self) -> None:
        self.close_connection = True
        proxy = self.server.proxy
        body = self._read_body()
        request = ProxiedRequest(self.command, urlsplit(self.path).path, dict(self.headers))
        fault = proxy._record(request)
        if body is None:
            self._send(501, [("Content-Type", JSON_TYPE)], [b'{"error":"chunked upload"}'], None)
            return
        if fault is not None and fault.hold_until:
            proxy._hold(fault.hold_until)
        if fault is not None and fault.answers:
            status, headers, payload = proxy._answer(fault, request)
            self._send(status, headers, [payload] if payload else [], fault)
        elif proxy.upstream is None:
            self._send(502, [("Content-Type", JSON_TYPE)], [b'{"error":"no upstream"}'], None)
        else:
            self._forward(body, fault)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _read_body(self) -> bytes | None:
        """The request's body; None for a chunked one (uploads are not relayed)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _forward(self, body: bytes, fault: Fault | None) -> None:
        """Ask the upstream server and relay its answer, line by line, through ``fault``."""
        upstream = urlsplit(self.server.proxy.upstream or "")
        connection = http.client.HTTPConnection(
            upstream.hostname or "127.0.0.1", upstream.port, timeout=UPSTREAM_TIMEOUT_SECONDS
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _OWN_HEADERS}
        headers["Host"] = upstream.netloc
        try:
            connection.request(self.command, self.path, body or None, headers)
            response = connection.getresponse()
            relayed = [(k, v) for k, v in response.getheaders() if k.lower() not in _OWN_HEADERS]
            lines = iter(response.readline, b"") if self.command != "HEAD" else iter(())
            self._send(response.status, relayed, lines, fault)
        finally:
            connection.close()

    def _send(
        self,
        status: int,
        headers: list[tuple[str, str]],
        pieces: Iterator[bytes] | list[bytes],
        fault: Fault | None,
    ) -> None:
        """Write the answer chunked, one chunk per piece; a fault drips, cuts or aborts it."""
        reason = self.responses.get(status, ("",))[0]
        head = f"HTTP/1.1 {status} {reason}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers)
        head += "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        self._drip(head.encode("latin-1"), fault.drip_bytes if fault else 0)
        cut = fault.cut_after_lines if fault else None
        abort = fault.abort_after_lines if fault else None
        for sent, piece in enumerate(pieces):
            if sent in (cut, abort):
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        else:
            abort = None
        if abort is not None:
            self.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk
        elif self.command != "HEAD":
            self.wfile.write(b"0\r\n\r\n")  # a clean end, even after a cut

    def _drip(self, head: bytes, drip_bytes: int) -> None:
        """Send the first ``drip_bytes`` bytes of ``head`` one every DRIP_SECONDS, then the rest."""
        stopping = self.server.proxy._stopping
        for index in range(min(drip_bytes, len(head))):
            self.wfile.write(head[index : index + 1])
            if stopping.wait(DRIP_SECONDS):
                return
        self.wfile.write(head[drip_bytes:])


class FaultProxy:
    """The proxy: ``url`` to give the client, ``requests`` as received, ``add_fault`` to misbehave.

    ``upstream`` is the base URL of the server to relay to (None: answer faults only, and 502
    otherwise); ``certificate`` is a (cert, key) pair of PEM files to serve https.
    """

    def __init__(
        self,
        upstream: str | None = None,
        *,
        certificate: tuple[Path, Path] | None = None,
        lifetime: float = 120.0,
    ) -> None:
        self.upstream = upstream
        self.requests: list[ProxiedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.Condition()
        self._arrived = 0
        self._stopping = threading.Event()
        context = None
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
        self.scheme = "https" if context else "http"
        self._server = _Server(self)
        if context is not None:  # the handshake runs in the handler's thread, not in accept
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        """The base URL of the proxy."""
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving; drips and holds end at once."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
            self._lock.notify_all()
        self._timer.cancel()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def add_fault(self, path: str = "*", **how: Any) -> None:
        """Misbehave on the next ``times`` requests to ``path`` (a glob; ``times=-1``: always).

        Answered by the proxy itself: ``status`` (with ``body``, ``content_type`` and extra
        ``headers``, e.g. ``Retry-After``); ``echo_request`` (a 401 whose error repeats every
        request header); ``redirect`` (a 307 to that base URL plus the request's path);
        ``gzip_bomb`` (a 200 that expands to that many bytes). Applied to the upstream's answer:
        ``cut_after_lines`` (then a clean end: the terminating chunk), ``abort_after_lines``
        (then the socket closes), ``drip_bytes`` (the first bytes of the response head one
        every DRIP_SECONDS), ``hold_until`` (hold each request until that many have arrived).
        """
        if isinstance(how.get("body"), str):
            how["body"] = how["body"].encode()
        with self._lock:
            self._faults.append(Fault(path, **how))

    def _record(self, request: ProxiedRequest) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            matching = (f for f in self._faults if fnmatch.fnmatchcase(request.path, f.path))
            fault = next(matching, None)
            if fault is not None:
                fault.times -= 1  # from -1 it never reaches 0: always
                if fault.times == 0:
                    self._faults.remove(fault)
        return fault

    def _hold(self, count: int) -> None:
        """Wait until ``count`` held requests have arrived (HOLD_SECONDS at most)."""
        with self._lock:
            self._arrived += 1
            self._lock.notify_all()
            self._lock.wait_for(
                lambda: self._arrived >= count or self._stopping.is_set(), HOLD_SECONDS
            )

    def _answer(
        self, fault: Fault, request: ProxiedRequest
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The proxy's own answer for ``fault``: status, headers, body."""
        headers = list(fault.headers)
        if fault.redirect:
            return 307, [("Location", fault.redirect + request.path), *headers], b""
        if fault.gzip_bomb:
            encoded = [("Content-Type", JSON_TYPE), ("Content-Encoding", "gzip")]
            return 200, encoded + headers, gzip_bomb(fault.gzip_bomb)
        body = fault.body
        if fault.echo_request:
            echoed = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
            body = json.dumps({"error": f"unauthorized, request was: {echoed}"}).encode()
        return fault.status or 401, [("Content-Type", fault.content_type), *headers], body


@pytest.fixture(name="proxy")
def proxy_fixture(server: Any) -> Iterator[FaultProxy]:
    """A FaultProxy in front of the ``server`` fixture (import this with ``# noqa: F401``)."""
    with FaultProxy(server.url) as proxy:
        yield proxy


@pytest.fixture(name="certs")
def certs_fixture(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """The session's throwaway CA and its certificate for 127.0.0.1 (as the gateway's)."""
    return certificates(tmp_path_factory)


@pytest.fixture(name="tls_proxy")
def tls_proxy_fixture(server: Any, certs: Certificates) -> Iterator[FaultProxy]:
    """A FaultProxy speaking https (a certificate of ``certs.ca``) in front of ``server``."""
    with FaultProxy(server.url, certificate=(certs.server_cert, certs.server_key)) as proxy:
        yield proxy


# -- the real CLI, bounded ----------------------------------------------------------------------


@dataclass
class Outcome:
    """How a CLI subprocess ended: ``code`` is None when it still ran at the bound."""

    args: tuple[str, ...]
    code: int | None
    stdout: str
    stderr: str

    def __str__(self) -> str:
        ended = "still running at the bound" if self.code is None else f"exit {self.code}"
        return f"{' '.join(self.args)!r}: {ended}\nstdout: {self.stdout[-800:]!r}\n" + (
            f"stderr: {self.stderr[-1500:]!r}"
        )


def limit_memory(close: tuple[int, ...] = ()) -> None:
    """A preexec_fn body: cap the address space at MEMORY_LIMIT_BYTES; close the fds ``close``."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    for fd in close:
        os.close(fd)


def start_ollamactl(
    *args: str,
    stdin: Stdio = subprocess.DEVNULL,
    stdout: Stdio = subprocess.PIPE,
    stderr: Stdio = subprocess.PIPE,
    close: tuple[int, ...] = (),
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start ``python -m ollamactl ARGS`` with limited memory (``close``: fds to close in it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ollamactl", *args],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=functools.partial(limit_memory, close),
        **popen,
    )


def wait_bounded(
    process: subprocess.Popen[bytes],
    args: tuple[str, ...],
    bound: float = BOUND_SECONDS,
    data: bytes | None = None,
) -> Outcome:
    """Wait for ``process`` (``bound`` seconds at most, then kill it) and collect its output."""
    try:
        out, err = process.communicate(data, timeout=bound)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        code = None
    decode = functools.partial(bytes.decode, encoding="utf-8", errors="replace")
    return Outcome(args, code, decode(out or b""), decode(err or b""))


def run_ollamactl(
    *args: str, data: bytes | None = None, bound: float = BOUND_SECONDS, **start: Any
) -> Outcome:
    """Run the CLI to its end (``data``: its stdin) or to the bound; see :func:`start_ollamactl`."""
    if data is not None:
        start.setdefault("stdin", subprocess.PIPE)
    return wait_bounded(start_ollamactl(*args, **start), args, bound, data)


def assert_clean_error(outcome: Outcome, codes: set[int], *fragments: str) -> str:
    """Ended with one of ``codes`` and one clean ``Error:`` line holding ``fragments``."""
    assert outcome.code in codes, str(outcome)
    return assert_one_clean_error(outcome.stderr, *fragments)
