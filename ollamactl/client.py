"""The HTTP layer: one ``requests.Session``, one method per Ollama endpoint.

This is the only module that speaks HTTP. It never prints and never imports
click or tqdm; it returns parsed JSON, or iterators of parsed NDJSON events,
and raises the exceptions of :mod:`ollamactl.errors`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import IO, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ollamactl import __version__
from ollamactl.config import Settings
from ollamactl.errors import (
    APIError,
    AuthFailed,
    BadResponse,
    ConnectionFailed,
    ConnectTimeout,
    ModelNotFound,
    ServerTimeout,
    StreamBroken,
    TLSFailed,
    UsageError,
)

log = logging.getLogger("ollamactl.http")

JSON = dict[str, Any]
#: Ollama's own scanner refuses longer lines; so do we (a broken server cannot exhaust memory).
MAX_LINE_BYTES = 8_000_000
READ_CHUNK = 65536
_NOT_FOUND_MARKERS = ("not found", "file does not exist", "no such file or directory")
_HOST_MISMATCH = "the certificate is not valid for this host name"
_HOST_MISMATCH_HINT = "use the host name the certificate was issued for, or --insecure-tls"
_UNTRUSTED_CERT_HINT = (
    "pass --ca-cert PATH or set REQUESTS_CA_BUNDLE for a private CA,"
    " or --insecure-tls to skip verification"
)
#: Non-JSON answers that come from a gateway or proxy, not from Ollama: (reason, hint).
_GATEWAY_ERRORS = {
    502: (
        "Bad Gateway",
        "the gateway cannot reach Ollama: is the server behind it running,"
        " and does the proxy point at the right address?",
    ),
    503: ("Service Unavailable", "the gateway or the server is overloaded or starting; retry"),
    504: (
        "Gateway Timeout",
        "the gateway gave up waiting for Ollama (a gateway timeout, not an Ollama error):"
        " raise the proxy's read timeout (nginx: proxy_read_timeout) for slow model loads",
    ),
    524: (
        "A Timeout Occurred",
        "Cloudflare gave up waiting for Ollama (a gateway timeout, not an Ollama error)",
    ),
}


def _is_not_found(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _NOT_FOUND_MARKERS)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), parts.port or default


class _OriginBoundSession(requests.Session):
    """A session that drops every credential when a redirect leaves the configured origin.

    requests already strips ``Authorization`` on a host change; this also strips
    custom headers (which may carry tokens) and treats an http->https hop or a
    port change as another origin.
    """

    def __init__(self, base_url: str, credential_headers: set[str]) -> None:
        super().__init__()
        self._origin = _origin(base_url)
        self._credential_headers = credential_headers

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        if _origin(prepared_request.url) != self._origin:
            for name in ("Authorization", *self._credential_headers):
                prepared_request.headers.pop(name, None)
            return
        super().rebuild_auth(prepared_request, response)


class Client:
    """A thin client for the Ollama REST API at one base URL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        custom = set(settings.headers)
        session = _OriginBoundSession(self.base_url, custom)
        session.headers["User-Agent"] = f"ollamactl/{__version__}"
        session.headers["Accept"] = "application/json"
        if settings.api_key:
            session.headers["Authorization"] = f"Bearer {settings.api_key}"
        if settings.host.username is not None:
            session.auth = (settings.host.username, settings.host.password or "")
        session.headers.update(settings.headers)
        if settings.ca_cert:
            session.verify = settings.ca_cert
        if settings.insecure_tls:
            session.verify = False
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        retry = Retry(
            total=settings.retries,
            connect=settings.retries,
            read=settings.retries,
            status=settings.retries,
            other=0,  # e.g. a failed certificate check: it would fail the same way again
            backoff_factor=0.25,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session
        self.timeout = (settings.connect_timeout, settings.read_timeout)

    # -- plumbing -------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The full URL of an API path such as ``/api/tags``."""
        return self.base_url + path

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        stream: bool = False,
        data: IO[bytes] | bytes | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        url = self.url(path)
        log.debug("%s %s", method, url)
        try:
            response = self.session.request(
                method,
                url,
                json=body,
                data=data,
                stream=stream,
                timeout=timeout or self.timeout,
                allow_redirects=True,
                # Per request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE beat session.verify.
                verify=self.session.verify,
            )
        except requests.exceptions.SSLError as e:
            reason = _tls_reason(e)
            raise TLSFailed(
                f"TLS error talking to {url}: {reason}",
                url=url,
                hint=_HOST_MISMATCH_HINT if reason == _HOST_MISMATCH else _UNTRUSTED_CERT_HINT,
            ) from e
        except requests.exceptions.ConnectTimeout as e:
            raise ConnectTimeout(
                f"timed out connecting to {self.base_url}",
                url=url,
                hint="check --host/OLLAMA_HOST and the network; --connect-timeout raises the limit",
            ) from e
        except requests.exceptions.ReadTimeout as e:
            raise self._idle_timeout(url, (timeout or self.timeout)[1]) from e
        except requests.exceptions.InvalidURL as e:
            raise ConnectionFailed(f"invalid URL {url}: {e}", url=url) from e
        except requests.exceptions.InvalidHeader:
            # requests' message quotes the header's value, which may be a secret
            raise UsageError(
                "a header value cannot be sent (a line break or a leading space?)",
                hint="check --api-key/OLLAMA_API_KEY, -H and the profile's headers",
            ) from None
        except requests.exceptions.ConnectionError as e:
            if _gave_up_after_read_timeouts(e):  # requests reports those as ConnectionError
                raise self._idle_timeout(url, (timeout or self.timeout)[1]) from e
            raise ConnectionFailed(
                f"could not connect to {self.base_url}: {_connection_reason(e)}",
                url=url,
                hint="is the server running and is --host/OLLAMA_HOST right?",
            ) from e
        except requests.exceptions.TooManyRedirects as e:
            raise BadResponse(
                f"the server at {self.base_url} redirects in a loop",
                url=url,
                hint="check the base URL's scheme (http/https) and path prefix, and the gateway",
            ) from e
        except requests.exceptions.ChunkedEncodingError as e:
            raise self._broken(url) from e
        except requests.exceptions.ContentDecodingError as e:
            raise self._undecodable(url) from e
        except requests.RequestException as e:
            raise ConnectionFailed(
                f"the request to {url} failed: {type(e).__name__}", url=url
            ) from e
        log.debug("%s %s -> HTTP %s", method, url, response.status_code)
        if response.status_code >= 400:
            try:
                self._body_text(response)  # read now, so that a cut-off body is StreamBroken
                self._raise_for_status(response)
            finally:
                response.close()
        return response

    def _broken(self, url: str) -> StreamBroken:
        return StreamBroken(
            f"the connection to {self.base_url} broke in the middle of the response",
            url=url,
            hint="the server or a gateway closed it; what arrived was kept, run it again",
        )

    def _body_text(self, response: requests.Response) -> str:
        """The whole body as text; a connection that breaks while it arrives is StreamBroken."""
        try:
            return response.text
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ConnectionError,
        ) as e:
            raise self._broken(response.url) from e
        except requests.exceptions.ContentDecodingError as e:
            raise self._undecodable(response.url) from e

    def _undecodable(self, url: str) -> BadResponse:
        return BadResponse(
            f"the server at {self.base_url} sent a body that does not decode"
            " (a broken gzip/deflate encoding)",
            url=url,
        )

    def _idle_timeout(self, url: str, seconds: float | None = None) -> ServerTimeout:
        seconds = self.timeout[1] if seconds is None else seconds
        return ServerTimeout(
            f"the server at {self.base_url} sent nothing for {seconds:g}s",
            url=url,
            hint="raise --read-timeout for slow model loads",
        )

    def _raise_for_status(self, response: requests.Response) -> None:
        status, url = response.status_code, response.url
        message = _error_message(response)
        if status in (401, 403):
            source = self.settings.credential_source()
            if status == 403 and not response.content:  # Ollama's allowed-hosts check
                hint = (
                    "an empty 403 is Ollama refusing a foreign Host header: a server bound to"
                    " loopback behind a proxy needs the proxy to send Host: localhost:11434"
                )
            elif source:
                hint = f"sent {source}; check that it is valid for this server"
            else:
                hint = "no credentials were sent: use --api-key/OLLAMA_API_KEY, -H or a profile"
            detail = f": {message}" if message else ""
            raise AuthFailed(
                f"the server at {self.base_url} refused the request (HTTP {status}){detail}",
                url=url,
                status=status,
                hint=hint,
            )
        if message is None and status in _GATEWAY_ERRORS:
            title, hint = _GATEWAY_ERRORS[status]
            raise BadResponse(
                f"the gateway at {self.base_url} answered HTTP {status} {title}"
                f" with {_body_kind(response)}, not the Ollama API",
                url=url,
                status=status,
                hint=hint,
            )
        if message is None:
            raise BadResponse(
                f"the server at {url} answered HTTP {status} with {_body_kind(response)}",
                url=url,
                status=status,
                hint=_base_url_hint(self.base_url),
            )
        if status == 404 and _is_not_found(message):
            raise ModelNotFound(message, url=url, status=status)
        raise APIError(message, url=url, status=status)

    def _json(self, response: requests.Response) -> Any:
        with response:
            text = self._body_text(response)
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise BadResponse(
                f"the server at {response.url} answered HTTP {response.status_code}"
                f" with {_body_kind(response)} where JSON was expected",
                url=response.url,
                status=response.status_code,
                hint=_base_url_hint(self.base_url),
            ) from None

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return self._json(self._send(method, path, body))

    def _stream(self, path: str, body: JSON, read_timeout: float | None = None) -> Iterator[JSON]:
        """POST ``body`` and yield every NDJSON event as it arrives.

        Every line is checked for ``{"error": ...}``; a broken connection, an idle
        server and a malformed line each raise a distinct error. ``read_timeout``
        replaces the idle timeout for this request (e.g. a pull's stall timeout).
        """
        timeout = None if read_timeout is None else (self.timeout[0], read_timeout)
        response = self._send("POST", path, body, stream=True, timeout=timeout)
        url = response.url
        with response:
            pending = b""
            for chunk in self._chunks(response, read_timeout):
                pending += chunk
                if b"\n" not in chunk:
                    if len(pending) > MAX_LINE_BYTES:
                        raise BadResponse(f"a line from {url} is longer than 8 MB", url=url)
                    continue
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._event(line, url)
            if pending.strip():
                yield self._event(pending, url)

    def _chunks(
        self, response: requests.Response, read_timeout: float | None = None
    ) -> Iterator[bytes]:
        """The body's bytes as soon as they arrive (one HTTP chunk, or what a read returns)."""
        raw = response.raw
        url = response.url
        try:
            if raw.chunked and raw.supports_chunked_reads():
                yield from raw.read_chunked(READ_CHUNK, decode_content=True)
            else:
                while chunk := raw.read1(READ_CHUNK, decode_content=True):
                    yield chunk
        except urllib3.exceptions.ReadTimeoutError as e:
            raise self._idle_timeout(url, read_timeout) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise self._broken(url) from e

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
            message = str(error)
            if _is_not_found(message):
                raise ModelNotFound(message, url=url)
            raise APIError(message, url=url)
        return event

    # -- endpoints ------------------------------------------------------------------------

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
        options: JSON | None = None,
    ) -> JSON:
        """``POST /api/show`` (``system``/``options``: a session's, rendered into the Modelfile)."""
        body: JSON = {"model": model}
        if verbose:
            body["verbose"] = True
        if system:
            body["system"] = system
        if options:
            body["options"] = options
        return _expect_dict(self._call("POST", "/api/show", body), "/api/show")

    def copy(self, source: str, destination: str) -> None:
        """``POST /api/copy``."""
        self._call("POST", "/api/copy", {"source": source, "destination": destination})

    def delete(self, model: str) -> None:
        """``DELETE /api/delete``."""
        self._call("DELETE", "/api/delete", {"model": model})

    def load(self, model: str, keep_alive: Any = None) -> JSON:
        """Load a model into memory (an empty ``/api/generate``)."""
        body: JSON = {"model": model, "stream": False}
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        return _expect_dict(self._call("POST", "/api/generate", body), "/api/generate")

    def unload(self, model: str) -> JSON:
        """Unload a model (an empty ``/api/generate`` with ``keep_alive: 0``)."""
        return self.load(model, keep_alive=0)

    def generate(self, body: JSON) -> Iterator[JSON]:
        """``POST /api/generate``, streamed (a ``stream: false`` body yields one event)."""
        return self._stream("/api/generate", body)

    def chat(self, body: JSON) -> Iterator[JSON]:
        """``POST /api/chat``, streamed (a ``stream: false`` body yields one event)."""
        return self._stream("/api/chat", body)

    def embed(self, body: JSON) -> JSON:
        """``POST /api/embed`` (``embeddings`` checked to be a list of vectors)."""
        answer = _expect_dict(self._call("POST", "/api/embed", body), "/api/embed")
        vectors = answer.get("embeddings")
        if vectors is not None and not (
            isinstance(vectors, list) and all(isinstance(v, list) for v in vectors)
        ):
            raise BadResponse("/api/embed answered an unexpected 'embeddings' field")
        return answer

    def pull(
        self, model: str, *, insecure: bool = False, read_timeout: float | None = None
    ) -> Iterator[JSON]:
        """``POST /api/pull``: progress events (``read_timeout``: longest silence allowed)."""
        return self._stream("/api/pull", {"model": model, "insecure": insecure}, read_timeout)

    def push(
        self, model: str, *, insecure: bool = False, read_timeout: float | None = None
    ) -> Iterator[JSON]:
        """``POST /api/push``: progress events (``read_timeout``: longest silence allowed)."""
        return self._stream("/api/push", {"model": model, "insecure": insecure}, read_timeout)

    def create(self, body: JSON, *, read_timeout: float | None = None) -> Iterator[JSON]:
        """``POST /api/create``: progress events."""
        return self._stream("/api/create", body, read_timeout)

    def blob_exists(self, digest: str) -> bool:
        """``HEAD /api/blobs/<digest>``."""
        try:
            response = self._send("HEAD", f"/api/blobs/{digest}")
        except ModelNotFound:
            return False
        except BadResponse as e:
            if e.status == 404:
                return False
            raise
        response.close()
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

        self._send("POST", f"/api/blobs/{digest}", data=chunks()).close()  # type: ignore[arg-type]


def _error_message(response: requests.Response) -> str | None:
    """The ``error`` of a JSON error body, or ``None`` when the body is not Ollama's JSON."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return None


def _expect_dict(value: Any, path: str) -> JSON:
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


def _base_url_hint(base_url: str) -> str:
    """Suggest how to fix a base URL that does not lead to the Ollama API."""
    parts = urlsplit(base_url)
    if not parts.path:
        return (
            "is the base URL right? behind a gateway it usually has a path prefix,"
            f" e.g. {parts.scheme}://{parts.netloc}/ollama-api (`ollamactl doctor` checks it)"
        )
    return (
        f"is the base URL right? {base_url}/api/tags should be the Ollama API;"
        " check the path prefix (`ollamactl doctor` checks it)"
    )


def _body_kind(response: requests.Response) -> str:
    """Describe a body that is not Ollama's JSON: an HTML page (with its title), text, nothing."""
    text = response.text if response.content else ""
    if not text.strip():
        return "an empty body"
    if "html" in response.headers.get("Content-Type", "") or text.lstrip().startswith("<"):
        title = re.search(r"<title[^>]*>([^<]{1,80})</title>", text, re.IGNORECASE)
        return f'an HTML page ("{title.group(1).strip()}")' if title else "an HTML page"
    first_line = text.strip().splitlines()[0][:60]
    return f"a non-JSON body ({first_line!r})"


def _gave_up_after_read_timeouts(error: requests.exceptions.ConnectionError) -> bool:
    """True when a read timed out: after urllib3's retries, or while the body arrived."""
    cause = error.args[0] if error.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        cause = cause.reason
    return isinstance(cause, urllib3.exceptions.ReadTimeoutError)


def _connection_reason(error: Exception) -> str:
    text = str(error)
    for marker, reason in (
        ("Name or service not known", "the host name does not resolve (DNS)"),
        ("nodename nor servname", "the host name does not resolve (DNS)"),
        ("Temporary failure in name resolution", "the host name does not resolve (DNS)"),
        ("No address associated", "the host name does not resolve (DNS)"),
        ("Connection refused", "connection refused"),
        ("Network is unreachable", "network is unreachable"),
        ("No route to host", "no route to host"),
        ("Connection reset", "the connection was reset"),
        ("RemoteDisconnected", "the server closed the connection without answering"),
    ):
        if marker in text:
            return reason
    return "the connection failed"


def _tls_reason(error: Exception) -> str:
    text = str(error)
    if "mismatch, certificate is not valid" in text or "doesn't match" in text:
        return _HOST_MISMATCH
    if "NO_CERTIFICATE_OR_CRL_FOUND" in text:
        return "the CA bundle holds no certificate (is it a PEM file?)"
    if "WRONG_VERSION_NUMBER" in text:
        return "the server does not speak TLS (try http://)"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        if any(m in text for m in ("unable to get local issuer", "self-signed", "self signed")):
            return "certificate verify failed (unknown certificate authority)"
        if "expired" in text:
            return "certificate verify failed (the certificate has expired)"
        return "certificate verify failed"
    return "the TLS handshake failed"
