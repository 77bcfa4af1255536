"""Sending a request to an Ollama server: retries, deadlines, redirects and trust.

:class:`Transport` carries out the policy of docs/remote.md ("Deadlines and retries") for
:class:`~ollamactl.client.Client`, over the session the client owns: GET and HEAD tried again
with backoff (``Retry-After`` obeyed up to a bound), a watchdog that bounds the wait for an
answer, redirects that keep credentials to the configured origin, the CAs trusted by default,
and NDJSON streams that must reach their endpoint's last event. Bodies are read by
:mod:`ollamactl.bodies`. It never prints and never imports click.
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
from collections.abc import Callable, Iterator
from contextlib import suppress
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter

from ollamactl import bodies, http_errors, mtls
from ollamactl.bodies import JSON
from ollamactl.config import Settings
from ollamactl.errors import ConnectionFailed, OllamactlError, ServerTimeout, TLSFailed

log = logging.getLogger("ollamactl.http")

#: The longest ``Retry-After`` obeyed: a server that asks for more gets no retry.
MAX_RETRY_AFTER_SECONDS = 30.0
#: Seconds before the second try of a GET or HEAD; doubles at each further try.
RETRY_BACKOFF_SECONDS = 0.25
#: Methods tried again (--retries) after a failure worth it; POSTs never are.
IDEMPOTENT = frozenset({"GET", "HEAD"})
#: Statuses of a busy server or gateway, tried again when the method allows it.
RETRIED_STATUSES = frozenset({429, 502, 503, 504})


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), parts.port or default


class OriginBoundSession(requests.Session):
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


class Deadline:
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
        deadline: Deadline | None = getattr(_watching, "deadline", None)
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


class Adapter(HTTPAdapter):
    """requests' adapter: connections watched by their request's deadline, the default trust
    of :func:`default_trust`, no retries (:meth:`Transport.request` decides those)."""

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


def _backoff(attempt: int) -> float:
    """Seconds to wait after try number ``attempt`` (from 1) before the next one."""
    return RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1)


def _worth_retrying(error: OllamactlError) -> bool:
    """A failure that another try of an idempotent request may not meet again."""
    return isinstance(error, ConnectionFailed) and not isinstance(error, TLSFailed)


class Transport:
    """Requests to one server over ``session``, by the policy of ``settings``.

    ``credentials=False``: redirects are answers, not followed.
    """

    def __init__(self, session: requests.Session, settings: Settings, credentials: bool) -> None:
        self.session = session
        self.settings = settings
        self.base_url = settings.base_url
        self.credentials = credentials

    def request(
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
        url = self.base_url + path
        idle = self.settings.read_timeout if idle is None else idle
        seconds = min(self.settings.read_timeout, idle)
        tries = 1 + (self.settings.retries if method in IDEMPOTENT else 0)
        for attempt in range(1, tries + 1):
            deadline = Deadline(seconds)
            try:
                response = self._attempt(method, url, body, data, idle, deadline)
                if stream and response.status_code < 400:
                    return response, b""
                with response:
                    content = bodies.read(response, self.base_url, idle, deadline)
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
        deadline: Deadline,
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

    def call(
        self, method: str, path: str, body: Any = None, *, data: Iterator[bytes] | None = None
    ) -> Any:
        """A request answered by one JSON value (None for an empty body).

        An answer ``{"error": ...}`` is that error, whatever the status.
        """
        response, content = self.request(method, path, body, data=data)
        if not content.strip():
            return None
        try:
            value = json.loads(content)
        except ValueError:
            raise http_errors.not_json(response, content, self.base_url) from None
        if isinstance(value, dict) and value.get("error") is not None:
            raise http_errors.api_error(str(value["error"]), url=response.url)
        return value

    def stream(
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
        response, _ = self.request("POST", path, body, idle=read_timeout, stream=True)
        url = response.url
        idle = self.settings.read_timeout if read_timeout is None else read_timeout
        done = False
        with response:
            for line in bodies.lines(response, self.base_url, idle):
                event = bodies.event(line, url)
                done = done or finished(event)
                yield event
        if not done:
            raise http_errors.cut_short(url, self.base_url)
