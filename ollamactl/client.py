"""The HTTP layer: one ``requests.Session``, one typed method per Ollama endpoint.

This is the only module that speaks HTTP, and the only one that builds request bodies:
each endpoint method takes typed keyword arguments (as Go's ``api/client.go`` takes its
request structs) and leaves out what is not set. It never prints and never imports click
or tqdm; it returns parsed JSON, or iterators of parsed NDJSON events, and raises the
errors of :mod:`ollamactl.errors`, which :mod:`ollamactl.http_errors` words.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ollamactl import __version__, http_errors
from ollamactl.config import Settings
from ollamactl.errors import BadResponse, ModelNotFound

if TYPE_CHECKING:
    from ollamactl.params import Format, KeepAlive, Think

log = logging.getLogger("ollamactl.http")

JSON = dict[str, Any]
#: Ollama's own scanner refuses longer lines; so do we (a broken server cannot exhaust memory).
MAX_LINE_BYTES = 8_000_000
READ_CHUNK = 65536
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
        data: IO[bytes] | Iterator[bytes] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        url = self.url(path)
        timeout = timeout or self.timeout
        log.debug("%s %s", method, url)
        try:
            response = self.session.request(
                method,
                url,
                json=body,
                data=data,
                stream=stream,
                timeout=timeout,
                allow_redirects=True,
                # Per request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE beat session.verify.
                verify=self.session.verify,
            )
        except requests.RequestException as e:
            error = http_errors.transport_error(e, url, self.base_url, timeout[1])
            raise error from http_errors.shown_cause(e)
        log.debug("%s %s -> HTTP %s", method, url, response.status_code)
        if response.status_code >= 400:
            try:
                self._body_text(response)  # read now, so that a cut-off body is StreamBroken
                source = self.settings.credential_source()
                raise http_errors.status_error(response, self.base_url, source)
            finally:
                response.close()
        return response

    def _body_text(self, response: requests.Response) -> str:
        """The whole body as text; a connection that breaks while it arrives is StreamBroken."""
        try:
            return response.text
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ConnectionError,
        ) as e:
            raise http_errors.broken(response.url, self.base_url) from e
        except requests.exceptions.ContentDecodingError as e:
            raise http_errors.undecodable(response.url, self.base_url) from e

    def _json(self, response: requests.Response) -> Any:
        with response:
            text = self._body_text(response)
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise http_errors.not_json(response, self.base_url) from None

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return self._json(self._send(method, path, body))

    def _stream(self, path: str, body: JSON, read_timeout: float | None = None) -> Iterator[JSON]:
        """POST ``body`` and yield every NDJSON event as it arrives.

        Every line is checked for ``{"error": ...}``; a broken connection, an idle
        server and a malformed line each raise a distinct error. ``read_timeout``
        replaces the idle timeout for this request (e.g. a pull's stall timeout).
        """
        timeout = (self.timeout[0], self.timeout[1] if read_timeout is None else read_timeout)
        response = self._send("POST", path, body, stream=True, timeout=timeout)
        url = response.url
        with response:
            pending = b""
            for chunk in self._chunks(response, timeout[1]):
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

    def _chunks(self, response: requests.Response, read_timeout: float) -> Iterator[bytes]:
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
            raise http_errors.idle_timeout(url, self.base_url, read_timeout) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise http_errors.broken(url, self.base_url) from e

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
        return self._stream("/api/generate", body)

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
        return self._stream("/api/chat", body)

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
        """``POST /api/embed`` (``embeddings`` checked to be a list of vectors)."""
        body = {
            "model": model,
            "input": inputs if isinstance(inputs, str) else list(inputs),
            **_set(truncate=truncate, dimensions=dimensions or None, keep_alive=keep_alive),
            **_set(options=dict(options or {})),
        }
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

    def create(self, model: str, **fields: Any) -> Iterator[JSON]:
        """``POST /api/create``: progress events; ``fields`` are those of :func:`create_request`."""
        return self._stream("/api/create", create_request(model, **fields))

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

        self._send("POST", f"/api/blobs/{digest}", data=chunks()).close()


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
