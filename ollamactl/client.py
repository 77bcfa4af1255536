"""The HTTP layer: one ``requests.Session``, one typed method per Ollama endpoint.

This is the only module that speaks HTTP, and the only one that builds request bodies:
each endpoint method takes typed keyword arguments (as Go's ``api/client.go`` takes its
request structs) and leaves out what is not set. It never prints and never imports click
or tqdm; it returns parsed JSON, or iterators of parsed NDJSON events, and raises the
errors of :mod:`ollamactl.errors`, which :mod:`ollamactl.http_errors` words.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from email.utils import parsedate_to_datetime
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter

from ollamactl import __version__, http_errors, mtls
from ollamactl.config import Settings
from ollamactl.errors import (
    BadResponse,
    ConnectionFailed,
    ModelNotFound,
    OllamactlError,
    ServerTimeout,
    TLSFailed,
)

if TYPE_CHECKING:
    from ollamactl.params import Format, KeepAlive, Think

log = logging.getLogger("ollamactl.http")

JSON = dict[str, Any]
#: Ollama's own scanner refuses longer lines; so do we (a broken server cannot exhaust memory).
MAX_LINE_BYTES = 8_000_000
READ_CHUNK = 65536
#: The largest answer read whole (a JSON answer or an error), after decompression.
MAX_BODY_BYTES = 64 << 20
#: The longest ``Retry-After`` obeyed: a server that asks for more gets no retry.
MAX_RETRY_AFTER_SECONDS = 30.0
#: Seconds before the second try of a GET or HEAD; doubles at each further try.
RETRY_BACKOFF_SECONDS = 0.25
#: Methods tried again (--retries) after a failure worth it; POSTs never are.
IDEMPOTENT = frozenset({"GET", "HEAD"})
#: Statuses of a busy server or gateway, tried again when the method allows it.
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
#: Values of an optional field that mean "not set" (``None`` too).
_UNSET: tuple[Any, ...] = ("", [], {})


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), parts.port or default


def _set(**fields: Any) -> JSON:
    """The fields that are set: ``None``, empty text and empty lists or tables are left out.

    >>> _set(system="", images=[], options={}, think=False, keep_alive=0, format=None)
    {'think': False, 'keep_alive': 0}
    """
    return {
        k: v for k, v in fields.items() if v is not None and not (v == "" or v == [] or v == {})
    }


def _streaming(stream: bool) -> JSON:
    """``stream: false`` when a single answer is wanted (streaming is the server's default)."""
    return {} if stream else {"stream": False}


def create_request(
    model: str,
    *,
    from_model: str | None = None,
    files: Mapping[str, str] | None = None,
    adapters: Mapping[str, str] | None = None,
    draft_files: Mapping[str, str] | None = None,
    quantize: str | None = None,
    draft_quantize: str | None = None,
    template: str | None = None,
    system: str | None = None,
    license: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    renderer: str | None = None,
    parser: str | None = None,
    requires: str | None = None,
) -> JSON:
    """The ``/api/create`` body (files by name -> ``sha256:`` digest), as ``create --dry-run``
    prints it and :meth:`Client.create` sends it."""
    return {
        "model": model,
        **_set(
            quantize=quantize,
            draft_quantize=draft_quantize,
            files=dict(files or {}),
            adapters=dict(adapters or {}),
            draft_files=dict(draft_files or {}),
        ),
        **_set(
            **{"from": from_model},
            template=template,
            system=system,
            license=list(license or []),
            parameters=dict(parameters or {}),
            messages=list(messages or []),
            renderer=renderer,
            parser=parser,
            requires=requires,
        ),
    }


class _OriginBoundSession(requests.Session):
    """A session that drops every credential when a redirect leaves the configured origin.

    requests already strips ``Authorization`` on a host change; this also strips
    custom headers (which may carry tokens) and treats an http->https hop or a
    port change as another origin. A redirect from https to plain http is refused.
    """

    def __init__(self, base_url: str, credential_headers: set[str]) -> None:
        super().__init__()
        self._origin = _origin(base_url)
        self._credential_headers = credential_headers

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target:
            resp.close()  # requests would read the redirect's body, of any size; nobody needs it
            absolute = urljoin(resp.url, target)
            if resp.url.startswith("https:") and absolute.startswith("http:"):
                raise http_errors.downgrade(resp.url, absolute)
        return target

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        if _origin(prepared_request.url) != self._origin:
            for name in ("Authorization", *self._credential_headers):
                prepared_request.headers.pop(name, None)
            return
        super().rebuild_auth(prepared_request, response)


# -- deadlines and trust ------------------------------------------------------------------------

_watching = threading.local()


class _Deadline:
    """How long the answer to one request may take, once the request is sent.

    A watchdog shuts the connection's socket when the time is up: a server that sends a byte
    now and then never trips the idle timeout, which each read restarts. It waits GRACE
    longer, so that a server that sent nothing at all trips the idle timeout (the same
    number of seconds) first, and is reported as silent.
    """

    GRACE = 0.25

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._at: float | None = None
        self._timer: threading.Timer | None = None

    def watch(self, sock: Any) -> None:
        """Arm the watchdog on ``sock`` (again after a redirect: the time left counts)."""
        now = time.monotonic()
        if self._at is None:
            self._at = now + self.seconds + self.GRACE
        self.stop()
        self._timer = threading.Timer(max(self._at - now, 0.0), self._expire, (sock,))
        self._timer.daemon = True
        self._timer.start()

    def _expire(self, sock: Any) -> None:
        self.expired = True
        raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
        if isinstance(raw, socket.socket):
            with suppress(OSError):  # the socket's own shutdown: an SSLSocket's would unwrap
                socket.socket.shutdown(raw, socket.SHUT_RDWR)

    def stop(self) -> None:
        """Disarm the watchdog (the answer arrived, or the request failed)."""
        if self._timer is not None:
            self._timer.cancel()


class _Watched:
    """A connection whose wait for an answer is bounded by the current request's deadline
    (the TLS handshake already is by the connect timeout: CPython counts it as a whole)."""

    sock: Any

    def connect(self) -> None:
        try:
            super().connect()  # type: ignore[misc]
        except socket.timeout as e:  # in the TLS handshake, which urllib3 calls a read timeout
            raise urllib3.exceptions.ConnectTimeoutError(self, f"TLS handshake: {e}") from e

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline: _Deadline | None = getattr(_watching, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline.watch(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


@functools.cache
def _watched(connection_class: type) -> type:
    """``connection_class`` (urllib3's HTTP, HTTPS or SOCKS connection) with a deadline."""
    if issubclass(connection_class, _Watched):
        return connection_class
    return type(f"Watched{connection_class.__name__}", (_Watched, connection_class), {})


@functools.lru_cache(maxsize=8)
def default_trust(cert_file: str | None, cert_dir: str | None, cert: Any = None) -> ssl.SSLContext:
    """The CAs trusted when neither --ca-cert nor a CA bundle variable names any.

    The system's store as OpenSSL finds it, which ``SSL_CERT_FILE``/``SSL_CERT_DIR`` replace
    (as for curl and Go; ``cert_file``/``cert_dir`` are their values), and certifi's bundle
    too when neither is set. ``cert`` (a client certificate) keeps contexts apart.
    """
    context = ssl.create_default_context()
    if not (cert_file or cert_dir):
        context.load_verify_locations(certifi.where())
    return context


def _watch_pool(pool: Any) -> Any:
    """A connection pool whose connections are watched by their request's deadline."""
    pool.ConnectionCls = _watched(pool.ConnectionCls)
    return pool


class _Adapter(HTTPAdapter):
    """requests' adapter: connections watched by their request's deadline, the default trust
    of :func:`default_trust`, no retries (:meth:`Client._request` decides those)."""

    def __init__(self) -> None:
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        return _watch_pool(super().get_connection_with_tls_context(*args, **kwargs))

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """What requests < 2.32.2 (setup.cfg allows 2.31) asks for instead of the above."""
        return _watch_pool(super().get_connection(*args, **kwargs))

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        if verify is True and url.lower().startswith("https:"):
            conn.ca_certs = conn.ca_cert_dir = None
            env = os.environ
            trust = default_trust(env.get("SSL_CERT_FILE"), env.get("SSL_CERT_DIR"), cert)
            conn.conn_kw["ssl_context"] = trust


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number or an HTTP date), if any.

    >>> retry_after("3600"), retry_after(None), retry_after("soon")
    (3600.0, None, None)
    >>> retry_after("Thu, 01 Jan 1970 00:00:00 GMT")
    0.0
    """
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _inflate(chunks: Iterator[bytes], encoding: str, url: str, base_url: str) -> Iterator[bytes]:
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


def _add_credentials(session: requests.Session, settings: Settings) -> None:
    """The token, basic auth, custom headers and client certificate of ``settings``."""
    if settings.api_key:
        session.headers["Authorization"] = f"Bearer {settings.api_key}"
    if settings.host.username is not None:
        session.auth = (settings.host.username, settings.host.password or "")
    session.headers.update(settings.headers)
    if settings.client_cert:
        session.cert = (settings.client_cert, settings.client_key or settings.client_cert)


def _no_auth(request: Any) -> Any:
    return request


class Client:
    """A thin client for the Ollama REST API at one base URL.

    ``credentials=False`` (``doctor --security``'s probe): no token, header, basic auth, client
    certificate or ~/.netrc, and redirects are answers, not followed.
    """

    def __init__(self, settings: Settings, *, credentials: bool = True) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        self.credentials = credentials
        custom = set(settings.headers)
        session = _OriginBoundSession(self.base_url, custom)
        session.headers["User-Agent"] = f"ollamactl/{__version__}"
        session.headers["Accept"] = "application/json"
        session.headers["Accept-Encoding"] = "gzip, deflate"  # what _inflate decodes
        if credentials:
            _add_credentials(session, settings)
        else:
            session.auth = _no_auth  # else requests would send credentials from ~/.netrc
        if settings.ca_cert:
            session.verify = settings.ca_cert
        if settings.insecure_tls:
            session.verify = False
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        adapter = _Adapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session

    # -- plumbing -------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The full URL of an API path such as ``/api/tags``."""
        return self.base_url + path

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: Iterator[bytes] | None = None,
        idle: float | None = None,
        stream: bool = False,
    ) -> tuple[requests.Response, bytes]:
        """Send a request; return its answer and, unless ``stream``, its whole body.

        The policy of docs/remote.md ("Deadlines and retries"): the answer must come within
        --read-timeout of the request (its head only, when ``stream``; ``idle`` is then the
        longest silence while it streams, --read-timeout unless given); a body is at most
        MAX_BODY_BYTES; GET and HEAD are tried again up to --retries times after a failed
        connection, a timeout or a busy server (429, 502-504; Retry-After obeyed up to
        MAX_RETRY_AFTER_SECONDS).
        """
        url = self.url(path)
        idle = self.settings.read_timeout if idle is None else idle
        seconds = min(self.settings.read_timeout, idle)
        tries = 1 + (self.settings.retries if method in IDEMPOTENT else 0)
        for attempt in range(1, tries + 1):
            deadline = _Deadline(seconds)
            try:
                response = self._attempt(method, url, body, data, idle, deadline)
                if stream and response.status_code < 400:
                    return response, b""
                with response:
                    content = self._read(response, idle, deadline)
            except ConnectionFailed as e:
                if attempt == tries or not _worth_retrying(e):
                    if isinstance(e, ServerTimeout) and attempt > 1:  # say how long all took
                        raise http_errors.no_answer(url, self.base_url, seconds, attempt) from e
                    raise
                wait = _backoff(attempt)
            else:
                if response.status_code < 400:
                    return response, content
                wait = self._status(response, content, attempt, last=attempt == tries)
            finally:
                deadline.stop()
            log.debug("%s %s: try %d of %d in %.2fs", method, url, attempt + 1, tries, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        method: str,
        url: str,
        body: Any,
        data: Iterator[bytes] | None,
        idle: float,
        deadline: _Deadline,
    ) -> requests.Response:
        """One try of a request, up to the head of its answer."""
        log.debug("%s %s", method, url)
        _watching.deadline = deadline
        try:
            response = self.session.request(
                method,
                url,
                json=body,
                data=data,
                stream=True,
                timeout=(self.settings.connect_timeout, idle),
                allow_redirects=self.credentials,
                # Per request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE beat session.verify.
                verify=self.session.verify,
            )
        except requests.RequestException as e:
            if deadline.expired:
                raise http_errors.too_slow(url, self.base_url, deadline.seconds) from None
            error = http_errors.transport_error(e, url, self.base_url, idle)
            if isinstance(e, requests.exceptions.SSLError):
                error = mtls.refusal(str(e), self.settings, how="TLS alert") or error
            raise error from http_errors.shown_cause(e)
        finally:
            _watching.deadline = None
        log.debug("%s %s -> HTTP %s", method, url, response.status_code)
        return response

    def _status(
        self, response: requests.Response, content: bytes, attempt: int, *, last: bool
    ) -> float:
        """The seconds to wait before trying again after an HTTP error status, or its error."""
        status = response.status_code
        asked = retry_after(response.headers.get("Retry-After"))
        if not last and status in RETRIED_STATUSES:
            if asked is None:
                return _backoff(attempt)
            if asked <= MAX_RETRY_AFTER_SECONDS:
                return asked
            raise http_errors.busy(response, self.base_url, asked, MAX_RETRY_AFTER_SECONDS)
        source = self.settings.credential_source()
        error = http_errors.status_error(response, content, self.base_url, source, asked)
        if status == 400:
            page = content.decode("utf-8", "replace")
            error = mtls.refusal(page, self.settings, how="HTTP 400") or error
        raise error

    def _read(
        self, response: requests.Response, idle: float, deadline: _Deadline | None = None
    ) -> bytes:
        """The whole body, decompressed: at most MAX_BODY_BYTES, by the deadline."""
        parts: list[bytes] = []
        size = 0
        for piece in self._body(response, idle, deadline):
            size += len(piece)
            if size > MAX_BODY_BYTES:
                raise http_errors.too_large(response.url, self.base_url, MAX_BODY_BYTES)
            parts.append(piece)
        return b"".join(parts)

    def _body(
        self, response: requests.Response, idle: float, deadline: _Deadline | None = None
    ) -> Iterator[bytes]:
        """The body's bytes, decompressed, as soon as they arrive."""
        encoding = response.headers.get("Content-Encoding", "")
        raw_chunks = self._chunks(response, idle, deadline)
        return _inflate(raw_chunks, encoding, response.url, self.base_url)

    def _chunks(
        self, response: requests.Response, idle: float, deadline: _Deadline | None
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
                raise http_errors.too_slow(url, self.base_url, deadline.seconds) from None
            if isinstance(e, urllib3.exceptions.ReadTimeoutError):
                raise http_errors.idle_timeout(url, self.base_url, idle) from e
            raise http_errors.broken(url, self.base_url) from e

    def _call(
        self, method: str, path: str, body: Any = None, *, data: Iterator[bytes] | None = None
    ) -> Any:
        """A request answered by one JSON value (None for an empty body).

        An answer ``{"error": ...}`` is that error, whatever the status.
        """
        response, content = self._request(method, path, body, data=data)
        if not content.strip():
            return None
        try:
            value = json.loads(content)
        except ValueError:
            raise http_errors.not_json(response, content, self.base_url) from None
        if isinstance(value, dict) and value.get("error") is not None:
            raise http_errors.api_error(str(value["error"]), url=response.url)
        return value

    def _stream(
        self,
        path: str,
        body: JSON,
        finished: Callable[[JSON], bool],
        read_timeout: float | None = None,
    ) -> Iterator[JSON]:
        """POST ``body`` and yield every NDJSON event as it arrives.

        Every line is checked for ``{"error": ...}``; a broken connection, an idle
        server and a malformed line each raise a distinct error, and so does a stream
        that ends before an event that ``finished`` accepts (the endpoint's last one).
        ``read_timeout`` replaces the idle timeout for this request (e.g. a pull's stall
        timeout).
        """
        response, _ = self._request("POST", path, body, idle=read_timeout, stream=True)
        url = response.url
        idle = self.settings.read_timeout if read_timeout is None else read_timeout
        done = False
        with response:
            for line in self._lines(response, idle):
                event = self._event(line, url)
                done = done or finished(event)
                yield event
        if not done:
            raise http_errors.cut_short(url, self.base_url)

    def _lines(self, response: requests.Response, idle: float) -> Iterator[bytes]:
        """The body's non-blank lines; one longer than MAX_LINE_BYTES is an error."""
        url = response.url
        pending = b""
        for chunk in self._body(response, idle):
            pending += chunk
            if b"\n" not in chunk:
                if len(pending) > MAX_LINE_BYTES:
                    raise BadResponse(f"a line from {url} is longer than 8 MB", url=url)
                continue
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield line
        if pending.strip():
            yield pending

    def _event(self, line: bytes, url: str) -> JSON:
        try:
            event = json.loads(line)
        except ValueError:
            shown = line[:80].decode("utf-8", "replace")
            raise BadResponse(
                f"the server at {url} sent a line that is not JSON: {shown!r}"
            ) from None
        if not isinstance(event, dict):
            raise BadResponse(f"the server at {url} sent an unexpected line: {event!r}"[:200])
        error = event.get("error")
        if error is not None:
            raise http_errors.api_error(str(error), url=url)
        return event

    # -- endpoints ------------------------------------------------------------------------

    def probe(self, path: str, idle: float) -> tuple[requests.Response, bytes]:
        """``GET path`` for a diagnosis: the answer below HTTP 400 (a redirect too) and its body."""
        response, _ = self._request("GET", path, idle=idle, stream=True)
        with response:  # a redirect's body is not read: requests closed it already
            return response, b"" if response.is_redirect else self._read(response, idle)

    def get_json(self, path: str) -> Any:
        """``GET`` any path under the base URL and parse its JSON (for diagnostics)."""
        return self._call("GET", path)

    def version(self) -> JSON:
        """``GET /api/version``."""
        return _expect_dict(self._call("GET", "/api/version"), "/api/version")

    def tags(self) -> list[JSON]:
        """``GET /api/tags``: the models on the server."""
        return _models_of(self._call("GET", "/api/tags"), "/api/tags")

    def ps(self) -> list[JSON]:
        """``GET /api/ps``: the models loaded in memory."""
        return _models_of(self._call("GET", "/api/ps"), "/api/ps")

    def show(
        self,
        model: str,
        *,
        verbose: bool = False,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> JSON:
        """``POST /api/show`` (``system``/``options``: a session's, rendered into the Modelfile)."""
        body = {
            "model": model,
            **_set(verbose=verbose or None, system=system, options=dict(options or {})),
        }
        return _expect_dict(self._call("POST", "/api/show", body), "/api/show")

    def copy(self, source: str, destination: str) -> None:
        """``POST /api/copy``."""
        self._call("POST", "/api/copy", {"source": source, "destination": destination})

    def delete(self, model: str) -> None:
        """``DELETE /api/delete``."""
        self._call("DELETE", "/api/delete", {"model": model})

    def load(self, model: str, keep_alive: KeepAlive | None = None) -> JSON:
        """Load a model into memory (an empty ``/api/generate``)."""
        body = {"model": model, "stream": False, **_set(keep_alive=keep_alive)}
        return _expect_dict(self._call("POST", "/api/generate", body), "/api/generate")

    def unload(self, model: str) -> JSON:
        """Unload a model (an empty ``/api/generate`` with ``keep_alive: 0``)."""
        return self.load(model, keep_alive=0)

    def generate(
        self,
        model: str,
        prompt: str,
        *,
        system: str | None = None,
        images: Sequence[str] = (),
        format: Format | None = None,
        options: Mapping[str, Any] | None = None,
        think: Think | None = None,
        keep_alive: KeepAlive | None = None,
        raw: bool | None = None,
        stream: bool = True,
    ) -> Iterator[JSON]:
        """``POST /api/generate``: the answer's events (one event when ``stream`` is false)."""
        body = {
            "model": model,
            "prompt": prompt,
            **_set(system=system, images=list(images), raw=raw),
            **_set(format=format, options=dict(options or {}), keep_alive=keep_alive, think=think),
            **_streaming(stream),
        }
        return self._stream("/api/generate", body, _done)

    def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        format: Format | None = None,
        options: Mapping[str, Any] | None = None,
        think: Think | None = None,
        keep_alive: KeepAlive | None = None,
        stream: bool = True,
    ) -> Iterator[JSON]:
        """``POST /api/chat``: the answer's events (one event when ``stream`` is false)."""
        body = {
            "model": model,
            "messages": list(messages),
            **_set(format=format, options=dict(options or {}), keep_alive=keep_alive, think=think),
            **_streaming(stream),
            **({} if tools is None else {"tools": list(tools)}),
        }
        return self._stream("/api/chat", body, _done)

    def embed(
        self,
        model: str,
        inputs: str | Sequence[str],
        *,
        truncate: bool | None = None,
        dimensions: int | None = None,
        keep_alive: KeepAlive | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> JSON:
        """``POST /api/embed`` (``embeddings`` checked to be one vector per input)."""
        body = {
            "model": model,
            "input": inputs if isinstance(inputs, str) else list(inputs),
            **_set(truncate=truncate, dimensions=dimensions or None, keep_alive=keep_alive),
            **_set(options=dict(options or {})),
        }
        answer = _expect_dict(self._call("POST", "/api/embed", body), "/api/embed")
        vectors = answer.get("embeddings")
        if not (isinstance(vectors, list) and all(isinstance(v, list) for v in vectors)):
            raise BadResponse("/api/embed answered no list of vectors ('embeddings')")
        count = 1 if isinstance(inputs, str) else len(inputs)
        if len(vectors) != count:
            raise BadResponse(f"/api/embed answered {len(vectors)} vectors for {count} inputs")
        return answer

    def pull(
        self, model: str, *, insecure: bool = False, read_timeout: float | None = None
    ) -> Iterator[JSON]:
        """``POST /api/pull``: progress events (``read_timeout``: longest silence allowed)."""
        body = {"model": model, "insecure": insecure}
        return self._stream("/api/pull", body, _succeeded, read_timeout)

    def push(
        self, model: str, *, insecure: bool = False, read_timeout: float | None = None
    ) -> Iterator[JSON]:
        """``POST /api/push``: progress events (``read_timeout``: longest silence allowed)."""
        body = {"model": model, "insecure": insecure}
        return self._stream("/api/push", body, _succeeded, read_timeout)

    def create(self, model: str, **fields: Any) -> Iterator[JSON]:
        """``POST /api/create``: progress events; ``fields`` are those of :func:`create_request`."""
        return self._stream("/api/create", create_request(model, **fields), _succeeded)

    def blob_exists(self, digest: str) -> bool:
        """``HEAD /api/blobs/<digest>``."""
        try:
            self._request("HEAD", f"/api/blobs/{digest}")
        except ModelNotFound:
            return False
        except BadResponse as e:
            if e.status == 404:
                return False
            raise
        return True

    def upload_blob(
        self, digest: str, stream: IO[bytes], on_bytes: Callable[[int], None] | None = None
    ) -> None:
        """``POST /api/blobs/<digest>``: upload a file, reporting bytes sent to ``on_bytes``."""

        def chunks() -> Iterator[bytes]:
            while block := stream.read(1 << 20):
                if on_bytes:
                    on_bytes(len(block))
                yield block

        self._call("POST", f"/api/blobs/{digest}", data=chunks())


def _done(event: JSON) -> bool:
    """The last event of a generation (``/api/generate``, ``/api/chat``)."""
    return event.get("done") is True


def _succeeded(event: JSON) -> bool:
    """The last event of a pull, push or create."""
    return event.get("status") == "success"


def _backoff(attempt: int) -> float:
    """Seconds to wait after try number ``attempt`` (from 1) before the next one."""
    return RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1)


def _worth_retrying(error: OllamactlError) -> bool:
    """A failure that another try of an idempotent request may not meet again."""
    return isinstance(error, ConnectionFailed) and not isinstance(error, TLSFailed)


def _expect_dict(value: Any, path: str) -> JSON:
    if value is None:
        raise BadResponse(f"{path} answered an empty body where a JSON object was expected")
    if not isinstance(value, dict):
        raise BadResponse(f"{path} answered {type(value).__name__}, not a JSON object")
    return value


def _models_of(value: Any, path: str) -> list[JSON]:
    models = _expect_dict(value, path).get("models")
    if models is None:
        return []
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise BadResponse(f"{path} answered an unexpected 'models' field")
    return models
