"""The HTTP layer: one ``requests.Session``, one typed method per Ollama endpoint.

This module and :mod:`ollamactl.transport` (retries, deadlines, redirects, trust), which
sends its requests, are the only ones that speak HTTP; this is the only one that builds
request bodies:
each endpoint method takes typed keyword arguments (as Go's ``api/client.go`` takes its
request structs) and leaves out what is not set. It never prints and never imports click
or tqdm; it returns parsed JSON, or iterators of parsed NDJSON events, and raises the
errors of :mod:`ollamactl.errors`, which :mod:`ollamactl.http_errors` words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import requests
import urllib3

from ollamactl import __version__, bodies, transport
from ollamactl.bodies import JSON
from ollamactl.config import Settings
from ollamactl.errors import BadResponse, ModelNotFound

if TYPE_CHECKING:
    from ollamactl.params import Format, KeepAlive, Think

#: Values of an optional field that mean "not set" (``None`` too).
_UNSET: tuple[Any, ...] = ("", [], {})


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
        session = transport.OriginBoundSession(self.base_url, custom)
        session.headers["User-Agent"] = f"ollamactl/{__version__}"
        session.headers["Accept"] = "application/json"
        session.headers["Accept-Encoding"] = "gzip, deflate"  # what bodies.inflate decodes
        if credentials:
            _add_credentials(session, settings)
        else:
            session.auth = _no_auth  # else requests would send credentials from ~/.netrc
        if settings.ca_cert:
            session.verify = settings.ca_cert
        if settings.insecure_tls:
            session.verify = False
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        adapter = transport.Adapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session
        self._transport = transport.Transport(session, settings, credentials)

    def url(self, path: str) -> str:
        """The full URL of an API path such as ``/api/tags``."""
        return self.base_url + path

    # -- endpoints ------------------------------------------------------------------------

    def probe(self, path: str, idle: float) -> tuple[requests.Response, bytes]:
        """``GET path`` for a diagnosis: the answer below HTTP 400 (a redirect too) and its body."""
        response, _ = self._transport.request("GET", path, idle=idle, stream=True)
        with response:  # a redirect's body is not read: requests closed it already
            body = b"" if response.is_redirect else bodies.read(response, self.base_url, idle)
            return response, body

    def get_json(self, path: str) -> Any:
        """``GET`` any path under the base URL and parse its JSON (for diagnostics)."""
        return self._transport.call("GET", path)

    def version(self) -> JSON:
        """``GET /api/version``."""
        return _expect_dict(self._transport.call("GET", "/api/version"), "/api/version")

    def tags(self) -> list[JSON]:
        """``GET /api/tags``: the models on the server."""
        return _models_of(self._transport.call("GET", "/api/tags"), "/api/tags")

    def ps(self) -> list[JSON]:
        """``GET /api/ps``: the models loaded in memory."""
        return _models_of(self._transport.call("GET", "/api/ps"), "/api/ps")

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
        return _expect_dict(self._transport.call("POST", "/api/show", body), "/api/show")

    def copy(self, source: str, destination: str) -> None:
        """``POST /api/copy``."""
        self._transport.call("POST", "/api/copy", {"source": source, "destination": destination})

    def delete(self, model: str) -> None:
        """``DELETE /api/delete``."""
        self._transport.call("DELETE", "/api/delete", {"model": model})

    def load(self, model: str, keep_alive: KeepAlive | None = None) -> JSON:
        """Load a model into memory (an empty ``/api/generate``)."""
        body = {"model": model, "stream": False, **_set(keep_alive=keep_alive)}
        return _expect_dict(self._transport.call("POST", "/api/generate", body), "/api/generate")

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
        return self._transport.stream("/api/generate", body, _done)

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
        return self._transport.stream("/api/chat", body, _done)

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
        answer = _expect_dict(self._transport.call("POST", "/api/embed", body), "/api/embed")
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
        return self._transport.stream("/api/pull", body, _succeeded, read_timeout)

    def push(
        self, model: str, *, insecure: bool = False, read_timeout: float | None = None
    ) -> Iterator[JSON]:
        """``POST /api/push``: progress events (``read_timeout``: longest silence allowed)."""
        body = {"model": model, "insecure": insecure}
        return self._transport.stream("/api/push", body, _succeeded, read_timeout)

    def create(self, model: str, **fields: Any) -> Iterator[JSON]:
        """``POST /api/create``: progress events; ``fields`` are those of :func:`create_request`."""
        return self._transport.stream("/api/create", create_request(model, **fields), _succeeded)

    def blob_exists(self, digest: str) -> bool:
        """``HEAD /api/blobs/<digest>``."""
        try:
            self._transport.request("HEAD", f"/api/blobs/{digest}")
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

        self._transport.call("POST", f"/api/blobs/{digest}", data=chunks())


def _done(event: JSON) -> bool:
    """The last event of a generation (``/api/generate``, ``/api/chat``)."""
    return event.get("done") is True


def _succeeded(event: JSON) -> bool:
    """The last event of a pull, push or create."""
    return event.get("status") == "success"


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
