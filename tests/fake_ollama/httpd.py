"""HTTP plumbing and fault injection: a threaded HTTP/1.1 server on 127.0.0.1 that records
every request, checks the prefix and credentials, routes to the endpoint methods of its
subclasses and misbehaves on demand (``add_fault``).
"""

from __future__ import annotations

import base64
import fnmatch
import select
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Generator
from contextlib import closing, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, ClassVar, TypeVar
from urllib.parse import urlsplit

from tests.fake_ollama.wire import (
    JSON_TYPE,
    NDJSON_TYPE,
    ApiError,
    RecordedRequest,
    Reply,
    Result,
    Stream,
    error_reply,
    line,
    text_reply,
    try_json,
)

#: An endpoint: a method of the server that answers one request.
Handler = Callable[[Any, RecordedRequest], Result]
_Server = TypeVar("_Server", bound="FakeHTTPServer")


@dataclass
class Fault:
    """How to misbehave on matching requests (see :meth:`FakeHTTPServer.add_fault`)."""

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


class FakeHTTPServer:
    """Serves the endpoints in ``ROUTES`` on 127.0.0.1 (a random port unless ``port``).

    ``prefix`` puts the API under a path, ``token``/``basic_auth`` require credentials, and
    the server stops by itself after ``lifetime`` seconds. ``requests`` lists what arrived.
    """

    #: path (a glob) -> HTTP method -> endpoint.
    ROUTES: ClassVar[dict[str, dict[str, Handler]]] = {}

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
        #: Every request received, oldest first (also those refused or broken by a fault).
        self.requests: list[RecordedRequest] = []
        #: Set when a client hangs up on a stalled answer (see ``add_fault(stall_after_lines=)``).
        self.stall_released = threading.Event()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL to give a client, including the prefix."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def start(self: _Server) -> _Server:
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

    def wait_until_stopped(self) -> None:
        """Block until ``stop`` runs (at the end of the lifetime at the latest)."""
        self._stopping.wait()

    def __enter__(self: _Server) -> _Server:
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

    # -- what arrived ----------------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """The requests to ``path`` (a glob, as for ``add_fault``), oldest first."""
        return [
            request
            for request in self.requests
            if method in (None, request.method) and fnmatch.fnmatchcase(request.path, path)
        ]

    def last_request(self, path: str = "*") -> RecordedRequest:
        """The latest request to ``path`` (a glob); fails the test when there was none."""
        matching = self.requests_to(path)
        assert matching, f"no request to {path} (received: {[r.path for r in self.requests]})"
        return matching[-1]

    def json_bodies(self, path: str) -> list[Any]:
        """The JSON bodies sent to ``path`` (a glob), oldest first."""
        return [request.json for request in self.requests_to(path)]

    # -- faults ----------------------------------------------------------------------------

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
        fault = Fault(
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

    def _take_fault(self, request: RecordedRequest) -> Fault | None:
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

    # -- answering -------------------------------------------------------------------------

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

    def _dispatch(self, request: RecordedRequest) -> Result:
        """Call the endpoint for the request's path and method (404/405 when there is none)."""
        methods = next(
            (m for route, m in self.ROUTES.items() if fnmatch.fnmatchcase(request.path, route)),
            None,
        )
        if methods is None:
            return text_reply(404, "404 page not found")
        endpoint = methods.get(request.method)
        if endpoint is None:
            return text_reply(405, "405 method not allowed")
        try:
            return endpoint(self, request)
        except ApiError as exc:
            return exc.reply
        except Exception as exc:
            traceback.print_exc()
            return error_reply(500, f"test server error: {exc!r}")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, app: FakeHTTPServer, port: int) -> None:
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
            self._send_reply(text_reply(400, "400 Bad Request"), None)
            return
        raw_path = urlsplit(self.path).path
        path = app._strip_prefix(raw_path)
        request = RecordedRequest(
            self.command,
            raw_path if path is None else path,
            dict(self.headers.items()),
            body,
            try_json(body),
        )
        app.requests.append(request)
        fault = None if path is None else app._take_fault(request)
        if fault is not None and fault.delay > 0:
            app._pause(fault.delay)
        result: Result
        if path is None:
            result = text_reply(404, "404 page not found")
        elif fault is not None and fault.status is not None:
            result = Reply(fault.status, fault.body, fault.content_type)
        elif not app._authorized(self.headers.get("Authorization", "")):
            result = error_reply(401, "unauthorized")
            if app.basic_auth is not None:
                result.headers = (("WWW-Authenticate", 'Basic realm="ollama"'),)
        else:
            result = app._dispatch(request)
        if isinstance(result, Stream):
            self._send_stream(result.lines, fault)
        else:
            self._send_reply(result, fault)

    def _send_reply(self, reply: Reply, fault: Fault | None) -> None:
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

    def _send_stream(self, lines: Generator[bytes, None, None], fault: Fault | None) -> None:
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
            for chunk in lines:
                if (drop is not None and sent >= drop) or (stall is not None and sent >= stall):
                    break
                write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += 1
                if sent > 1 or fault is None:
                    continue
                if fault.error_line is not None:
                    error = line({"error": fault.error_line})
                    write(b"%x\r\n%s\r\n" % (len(error), error))
                    break
                if fault.malformed_line:
                    following = next(lines, chunk)
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
