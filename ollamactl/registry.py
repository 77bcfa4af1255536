"""A model's manifest in its registry: is the server's copy the one the registry serves now?

No click and no printing: :class:`Registry` fetches manifests, :func:`compare` says what a
server's ``/api/tags`` digest means next to one. Facts it relies on (Ollama 0.9.3 and later):

- a name ``[host/][namespace/]model[:tag]`` lives at
  ``https://host/v2/namespace/model/manifests/tag`` (``http://`` for an insecure registry,
  as ``ollama pull --insecure``, but never for registry.ollama.ai: ``outdated --insecure``
  asks about every model at once); registries answer 400 without the Accept header below;
- the ``/api/tags`` digest is the sha256 of the manifest file on the server. A pull by
  Ollama >= 0.19 keeps the registry's bytes; older servers write Go's re-encoding of them,
  and ``create`` Go's re-encoding plus a newline. All three forms count as the same manifest,
  so the body is fetched (GET, not HEAD: it is about a kilobyte) and hashed each way.

Only the registry is asked, with requests' defaults for trust (certifi, or the environment's
``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``) and proxies: ``--ca-cert``, ``--insecure-tls``,
tokens and headers belong to the Ollama server and are never sent to a registry (a private CA
bundle would also replace the public roots a public registry needs). Registries that require
a sign-in (HTTP 401) are reported, not signed in to: only the Ollama server's key can.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ollamactl import __version__
from ollamactl.names import DEFAULT_REGISTRY, split_name

if TYPE_CHECKING:
    import requests

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
#: Connect and read timeouts of a manifest request, in seconds.
TIMEOUT = (5.0, 10.0)
#: Larger answers are not a manifest (registries refuse manifests over 4 MiB).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Digest headers a registry may send: distribution's, and ollama.com's own.
DIGEST_HEADERS = ("Docker-Content-Digest", "Ollama-Content-Digest")

CURRENT, OUTDATED, LOCAL_ONLY, UNREACHABLE = "current", "outdated", "local-only", "unreachable"
#: Go's json.Marshal escapes these for HTML safety; Python's json.dumps does not.
_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


@dataclass(frozen=True)
class Reference:
    """Where a model name points: registry host, namespace, repository and tag."""

    host: str
    namespace: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, name: str) -> Reference:
        """The reference of a model name, with Ollama's defaults.

        >>> Reference.parse("tiny").manifest_url()
        'https://registry.ollama.ai/v2/library/tiny/manifests/latest'
        >>> Reference.parse("127.0.0.1:5000/me/tiny:v1").manifest_url(insecure=True)
        'http://127.0.0.1:5000/v2/me/tiny/manifests/v1'
        """
        return cls(*split_name(name))

    def manifest_url(self, *, insecure: bool = False) -> str:
        """The manifest's URL: https, or plain http for an insecure registry (never ollama's)."""
        scheme = "http" if insecure and self.host != DEFAULT_REGISTRY else "https"
        path = f"v2/{self.namespace}/{self.repository}/manifests/{self.tag}"
        return f"{scheme}://{self.host}/{path}"

    @property
    def in_default_library(self) -> bool:
        """True under ``registry.ollama.ai/library``, where ``create`` and ``cp`` put bare names."""
        return self.host == DEFAULT_REGISTRY and self.namespace == "library"


@dataclass(frozen=True)
class Answer:
    """What a registry said about one manifest.

    ``digest`` is the registry's digest of it (None when it has none, or was not asked),
    ``forms`` every digest a server's copy of it may have; ``missing`` means a 404.
    """

    url: str
    digest: str | None = None
    forms: frozenset[str] = frozenset()
    missing: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Comparison:
    """A server's model next to its registry's manifest."""

    name: str
    status: str
    local_digest: str
    remote_digest: str | None
    reason: str
    url: str


def bare_digest(digest: str) -> str:
    """A digest without its ``sha256:`` prefix, lower-cased.

    >>> bare_digest("sha256:ABC"), bare_digest("abc")
    ('abc', 'abc')
    """
    text = digest.strip().lower()
    return text[len("sha256:") :] if text.startswith("sha256:") else text


def _go_layer(value: Any) -> dict[str, Any]:
    layer = value if isinstance(value, dict) else {}
    encoded = {
        "mediaType": layer.get("mediaType", ""),
        "digest": layer.get("digest", ""),
        "size": layer.get("size", 0),
    }
    encoded.update((key, layer[key]) for key in ("from", "name") if layer.get(key))
    return encoded


def go_encoding(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as Ollama < 0.19 stores a pulled one: Go's ``json.Marshal`` of its struct.

    Keys in the struct's order, unknown keys dropped, empty ``from``/``name`` omitted, compact,
    with Go's HTML escapes.

    >>> go_encoding({"layers": [{"size": 1, "digest": "d", "mediaType": "m<", "x": 0}]})
    b'{"schemaVersion":0,"mediaType":"","config":{"mediaType":"","digest":"","size":0},\
"layers":[{"mediaType":"m\\\\u003c","digest":"d","size":1}]}'
    """
    layers = manifest.get("layers")
    value = {
        "schemaVersion": manifest.get("schemaVersion", 0),
        "mediaType": manifest.get("mediaType", ""),
        "config": _go_layer(manifest.get("config")),
        "layers": [_go_layer(layer) for layer in layers] if isinstance(layers, list) else None,
    }
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escape in _GO_ESCAPES.items():
        text = text.replace(char, escape)
    return text.encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _origin(url: str) -> str:
    """``scheme://host`` of a manifest URL."""
    return url.split("/v2/", 1)[0]


def manifest_answer(url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
    """The answer of a 200: the registry's digest and the forms a server's copy may have."""
    try:
        manifest = json.loads(body)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or "layers" not in manifest:
        return Answer(url, reason=f"{_origin(url)} answered something that is not a manifest")
    announced = [bare_digest(headers[name]) for name in DIGEST_HEADERS if headers.get(name)]
    encoded = go_encoding(manifest)
    raw = _sha256(body)
    forms = {raw, _sha256(encoded), _sha256(encoded + b"\n"), *announced}
    return Answer(url, digest=(announced or [raw])[0], forms=frozenset(forms))


def _error_codes(body: bytes) -> str:
    """The ``code`` fields of a registry's JSON error body, e.g. ``MANIFEST_UNKNOWN``."""
    try:
        errors = json.loads(body).get("errors")
        return ", ".join(str(error["code"]) for error in errors)
    except (ValueError, AttributeError, TypeError, KeyError):
        return ""


def refusal_answer(url: str, status: int, body: bytes) -> Answer:
    """The answer of an HTTP error status."""
    codes = _error_codes(body)
    detail = f"HTTP {status}" + (f" {codes}" if codes else "")
    if status == 404:
        return Answer(url, missing=True, reason=f"not in the registry ({detail})")
    if status in (401, 403):
        reason = f"{_origin(url)} requires a sign-in ({detail}); only the Ollama server can"
        return Answer(url, reason=reason)
    return Answer(url, reason=f"{_origin(url)} answered {detail}")


def failure_answer(url: str, error: requests.RequestException, read_timeout: float) -> Answer:
    """The answer when no HTTP answer came (worded as for the Ollama server's own requests)."""
    import requests

    from ollamactl.http_errors import is_plain_http_port, transport_error

    origin = _origin(url)
    reason = transport_error(error, origin, origin, read_timeout).message
    if isinstance(error, requests.exceptions.ProxyError):
        reason += " (through the proxy of HTTPS_PROXY/HTTP_PROXY)"
    elif isinstance(error, requests.exceptions.SSLError) and is_plain_http_port(error):
        reason += "; for a plain-http registry, use --insecure"
    return Answer(url, reason=reason)


class Registry:
    """Fetches manifests, through a session of its own (no credentials of the Ollama server)."""

    def __init__(self, *, insecure: bool = False, timeout: tuple[float, float] = TIMEOUT) -> None:
        import requests

        self.insecure = insecure
        self.timeout = timeout
        self.session: requests.Session = requests.Session()
        self.session.headers["User-Agent"] = f"ollamactl/{__version__}"
        self.session.headers["Accept"] = MANIFEST_TYPE

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch(self, reference: Reference) -> Answer:
        """GET the manifest; never raises for what the network or the registry does."""
        import requests

        url = reference.manifest_url(insecure=self.insecure)
        try:
            with self.session.get(url, timeout=self.timeout, stream=True) as response:
                body = _read_at_most(response, MAX_MANIFEST_BYTES)
        except requests.RequestException as error:
            return failure_answer(url, error, self.timeout[1])
        if body is None:
            return Answer(url, reason="the answer is larger than any manifest")
        if response.status_code != 200:
            return refusal_answer(url, response.status_code, body)
        return manifest_answer(url, body, response.headers)


def _read_at_most(response: requests.Response, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` bytes (a hostile server's)."""
    body = b""
    for chunk in response.iter_content(65536):
        body += chunk
        if len(body) > limit:
            return None
    return body


def compare(
    name: str, local_digest: str, answer: Answer, parent_model: Callable[[], str]
) -> Comparison:
    """Say whether the server's model is the registry's current manifest.

    A manifest the registry lacks (404) means the model was made on the server: local-only.
    So does a different manifest under ``registry.ollama.ai/library`` when the model has a
    parent (``parent_model()``, the ``/api/show`` detail, asked only then): ``create`` and
    ``cp`` to a bare name put it there, and models pulled from ollama.com have no parent.
    """
    local = bare_digest(local_digest)

    def result(status: str, reason: str = "") -> Comparison:
        return Comparison(name, status, local, answer.digest, reason or answer.reason, answer.url)

    if answer.missing:
        return result(LOCAL_ONLY)
    if answer.digest is None:
        return result(UNREACHABLE)
    if local in answer.forms:
        return result(CURRENT)
    if Reference.parse(name).in_default_library:
        parent = parent_model()
        if parent:
            return result(LOCAL_ONLY, f"made on the server from {parent}; the registry's differs")
    return result(OUTDATED)
