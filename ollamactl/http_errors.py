"""Why a request failed, in words a user can act on: transport errors and HTTP statuses.

Each function turns what requests or the server gave (an exception, a status and its body)
into one of the errors of :mod:`ollamactl.errors`, with a hint and so an exit code. No
printing and no click: the client raises what these return.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from ollamactl.errors import (
    APIError,
    AuthFailed,
    BadResponse,
    ConnectionFailed,
    ConnectTimeout,
    ModelNotFound,
    OllamactlError,
    ServerTimeout,
    StreamBroken,
    TLSFailed,
    UsageError,
)

_NOT_FOUND_MARKERS = ("not found", "file does not exist", "no such file or directory")
_HOST_MISMATCH = "the certificate is not valid for this host name"
_HOST_MISMATCH_HINT = "use the host name the certificate was issued for, or --insecure-tls"
#: Sends the user to ``doctor`` for a step-by-step check (doctor leaves it out of its fixes).
DOCTOR_CHECKS_IT = " (`ollamactl doctor` checks it)"
CA_BUNDLE_HINT = (
    "--ca-cert, OLLAMACTL_CA_CERT or a profile's ca_cert takes the PEM certificate of the CA"
    " that signed the server's certificate"
)
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


def is_not_found(message: str) -> bool:
    """Whether a server's error message means that the model (or a file of it) is missing."""
    lowered = message.lower()
    return any(marker in lowered for marker in _NOT_FOUND_MARKERS)


def is_invalid_name(message: str) -> bool:
    """Whether the server refused a model name (``/save``, ``create``, ``cp``)."""
    return "invalid model name" in message


def is_upstream_error(message: str) -> bool:
    """Whether a generation failed upstream of the server (a cloud model's provider)."""
    return "upstream error" in message


def is_push_denied(message: str) -> bool:
    """Whether the registry refused a push to the namespace (the Go CLI rewords it)."""
    lowered = message.lower()
    return "access denied" in lowered or "unauthorized" in lowered


def is_old_server_create(message: str) -> bool:
    """Whether a server too old for the blob-based ``/api/create`` refused the request."""
    return "path or Modelfile are required" in message


def is_plain_http_port(error: BaseException) -> bool:
    """Whether a TLS handshake failed because the port speaks plain HTTP."""
    return "WRONG_VERSION" in str(error)


def api_error(message: str, *, url: str, status: int | None = None) -> APIError | ModelNotFound:
    """The error of a server's ``{"error": ...}``: ModelNotFound when it says so."""
    if is_not_found(message) and status in (None, 404):
        return ModelNotFound(message, url=url, status=status)
    return APIError(message, url=url, status=status)


def transport_error(
    error: requests.RequestException, url: str, base_url: str, read_timeout: float
) -> OllamactlError:
    """What a request that got no HTTP answer means: TLS, timeouts, refused, DNS, ..."""
    if isinstance(error, requests.exceptions.SSLError):
        reason = _tls_reason(error)
        problem = _bundle_problem(error) if reason in _CA_REASONS else None
        if problem:
            return UsageError(problem, hint=CA_BUNDLE_HINT)
        return TLSFailed(
            f"TLS error talking to {url}: {reason}",
            url=url,
            hint=_HOST_MISMATCH_HINT if reason == _HOST_MISMATCH else _UNTRUSTED_CERT_HINT,
        )
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return ConnectTimeout(
            f"timed out connecting to {base_url}",
            url=url,
            hint="check --host/OLLAMA_HOST and the network; --connect-timeout raises the limit",
        )
    if isinstance(error, requests.exceptions.ReadTimeout):
        return idle_timeout(url, base_url, read_timeout)
    if isinstance(error, requests.exceptions.InvalidURL):
        return ConnectionFailed(f"invalid URL {url}: {error}", url=url)
    if isinstance(error, requests.exceptions.InvalidHeader):
        return UsageError(
            "a header value cannot be sent (a line break or a leading space?)",
            hint="check --api-key/OLLAMA_API_KEY, -H and the profile's headers",
        )
    if isinstance(error, requests.exceptions.ConnectionError):
        if _gave_up_after_read_timeouts(error):  # requests reports those as ConnectionError
            return idle_timeout(url, base_url, read_timeout)
        return ConnectionFailed(
            f"could not connect to {base_url}: {_connection_reason(error)}",
            url=url,
            hint="is the server running and is --host/OLLAMA_HOST right?",
        )
    if isinstance(error, requests.exceptions.TooManyRedirects):
        return BadResponse(
            f"the server at {base_url} redirects in a loop",
            url=url,
            hint="check the base URL's scheme (http/https) and path prefix, and the gateway",
        )
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return broken(url, base_url)
    if isinstance(error, requests.exceptions.ContentDecodingError):
        return undecodable(url, base_url)
    return ConnectionFailed(f"the request to {url} failed: {type(error).__name__}", url=url)


def shown_cause(error: requests.RequestException) -> BaseException | None:
    """The exception to chain to the translated one: none where its text may hold a secret."""
    return None if isinstance(error, requests.exceptions.InvalidHeader) else error


def broken(url: str, base_url: str) -> StreamBroken:
    """The connection closed in the middle of a response."""
    return StreamBroken(
        f"the connection to {base_url} broke in the middle of the response",
        url=url,
        hint="the server or a gateway closed it; what arrived was kept, run it again",
    )


def undecodable(url: str, base_url: str) -> BadResponse:
    """A body whose gzip/deflate encoding is broken."""
    return BadResponse(
        f"the server at {base_url} sent a body that does not decode"
        " (a broken gzip/deflate encoding)",
        url=url,
    )


def idle_timeout(url: str, base_url: str, seconds: float) -> ServerTimeout:
    """The server sent nothing for ``seconds``."""
    return ServerTimeout(
        f"the server at {base_url} sent nothing for {seconds:g}s",
        url=url,
        hint="raise --read-timeout for slow model loads",
    )


def too_slow(url: str, base_url: str, seconds: float) -> ServerTimeout:
    """The answer kept arriving, too slowly to be complete within ``seconds``."""
    return ServerTimeout(
        f"the server at {base_url} did not complete its answer within {seconds:g}s",
        url=url,
        hint="it trickled in; raise --read-timeout if the server or the network is that slow",
    )


def no_answer(url: str, base_url: str, seconds: float, tries: int) -> ServerTimeout:
    """Every one of ``tries`` tries timed out (after ``seconds`` each)."""
    return ServerTimeout(
        f"no answer from the server at {base_url} after {tries} tries of {seconds:g}s",
        url=url,
        hint="raise --read-timeout for slow model loads, or --retries",
    )


def cut_short(url: str, base_url: str) -> StreamBroken:
    """A stream that ended cleanly before its last event (``done``, ``success``)."""
    return StreamBroken(
        f"the server at {base_url} closed the stream before the answer was complete",
        url=url,
        hint="the server or a gateway ended it early; what arrived was kept, run it again",
    )


def too_large(url: str, base_url: str, limit: int) -> BadResponse:
    """A body larger than ``limit`` bytes once decompressed."""
    return BadResponse(
        f"the answer of the server at {base_url} is larger than {limit >> 20} MiB"
        " (once decompressed); ollamactl reads no more",
        url=url,
    )


def downgrade(url: str, target: str) -> ConnectionFailed:
    """A redirect from https to plain http (the request would travel in clear text)."""
    parts = urlsplit(target)
    return ConnectionFailed(
        f"{url} redirects to plain http://{parts.hostname or ''}"
        f"{f':{parts.port}' if parts.port else ''}: a redirect from https to http is not followed",
        url=url,
        hint="the request and its credentials would travel unencrypted; fix the server's"
        " redirect, or give the http:// URL as --host if you mean it",
    )


def busy(response: requests.Response, base_url: str, asked: float, longest: float) -> APIError:
    """A busy server (429, 503, ...) that asks to wait longer than ``longest`` seconds."""
    return APIError(
        f"the server at {base_url} is busy (HTTP {response.status_code}) and asks to wait"
        f" {asked:g}s before trying again, longer than ollamactl waits ({longest:g}s)",
        url=response.url,
        status=response.status_code,
        hint="try again later",
    )


def status_error(
    response: requests.Response,
    body: bytes,
    base_url: str,
    credential_source: str | None,
    retry_after: float | None = None,
) -> OllamactlError:
    """What an HTTP status of 400 or more with ``body`` means.

    ``retry_after``: the seconds a busy server asked to wait (its ``Retry-After``).
    """
    status, url = response.status_code, response.url
    message = _error_message(body)
    if status in (401, 403):
        if status == 403 and not body:  # Ollama's allowed-hosts check
            hint = (
                "an empty 403 is Ollama refusing a foreign Host header: a server bound to"
                " loopback behind a proxy needs the proxy to send Host: localhost:11434"
            )
        elif credential_source:
            hint = f"sent {credential_source}; check that it is valid for this server"
        else:
            hint = "no credentials were sent: use --api-key/OLLAMA_API_KEY, -H or a profile"
        detail = f": {message}" if message else ""
        return AuthFailed(
            f"the server at {base_url} refused the request (HTTP {status}){detail}",
            url=url,
            status=status,
            hint=hint,
        )
    if message is None and status in _GATEWAY_ERRORS:
        title, hint = _GATEWAY_ERRORS[status]
        error: OllamactlError = BadResponse(
            f"the gateway at {base_url} answered HTTP {status} {title}"
            f" with {_body_kind(response, body)}, not the Ollama API",
            url=url,
            status=status,
            hint=hint,
        )
    elif message is None:
        error = BadResponse(
            f"the server at {url} answered HTTP {status} with {_body_kind(response, body)}",
            url=url,
            status=status,
            hint=base_url_hint(base_url),
        )
    else:
        error = api_error(message, url=url, status=status)
    if retry_after is not None and status in (429, 503):
        asked = f"the server asks to wait {retry_after:g}s before trying again"
        error.hint = f"{error.hint}; {asked}" if error.hint else asked
    return error


def not_json(response: requests.Response, body: bytes, base_url: str) -> BadResponse:
    """A successful answer that is not JSON (a web page where the API was expected)."""
    return BadResponse(
        f"the server at {response.url} answered HTTP {response.status_code}"
        f" with {_body_kind(response, body)} where JSON was expected",
        url=response.url,
        status=response.status_code,
        hint=base_url_hint(base_url),
    )


def base_url_hint(base_url: str) -> str:
    """Suggest how to fix a base URL that does not lead to the Ollama API."""
    parts = urlsplit(base_url)
    if not parts.path:
        return (
            "is the base URL right? behind a gateway it usually has a path prefix,"
            f" e.g. {parts.scheme}://{parts.netloc}/ollama-api{DOCTOR_CHECKS_IT}"
        )
    return (
        f"is the base URL right? {base_url}/api/tags should be the Ollama API;"
        f" check the path prefix{DOCTOR_CHECKS_IT}"
    )


def _error_message(body: bytes) -> str | None:
    """The ``error`` of a JSON error body, or ``None`` when the body is not Ollama's JSON."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        return str(value["error"])
    return None


def _body_kind(response: requests.Response, body: bytes) -> str:
    """Describe a body that is not Ollama's JSON: an HTML page (with its title), text, nothing."""
    try:
        text = body.decode(response.encoding or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        text = body.decode("utf-8", "replace")
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
        return _NO_CERTIFICATE
    if is_plain_http_port(error):
        return "the server does not speak TLS (try http://)"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        if any(m in text for m in ("unable to get local issuer", "self-signed", "self signed")):
            return _UNKNOWN_CA
        if "expired" in text:
            return "certificate verify failed (the certificate has expired)"
        return "certificate verify failed"
    return "the TLS handshake failed"


_NO_CERTIFICATE = "the CA bundle holds no certificate (is it a PEM file?)"
_UNKNOWN_CA = "certificate verify failed (unknown certificate authority)"
#: TLS failures that a wrong CA bundle causes: then the bundle is looked at.
_CA_REASONS = (_NO_CERTIFICATE, _UNKNOWN_CA)
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----")


def _bundle_problem(error: requests.exceptions.SSLError) -> str | None:
    """What is wrong with the CA bundle the failed request verified with, if anything."""
    pool = getattr(error.args[0] if error.args else None, "pool", None)
    bundle = getattr(pool, "ca_certs", None)
    return ca_bundle_problem(str(bundle)) if bundle else None


def ca_bundle_problem(path: str) -> str | None:
    """Why the file ``path`` cannot verify a server, or None when it may.

    A private key, a certificate request, a DER file or any file without a PEM
    certificate cannot; nor can a server's own certificate that a CA issued (a file
    without any CA certificate), while a self-signed one may stand for itself. A folder
    (OpenSSL's hashed CA directory) and a file that cannot be read are left to the TLS
    layer, which says so.
    """
    import ssl

    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not _PEM_CERTIFICATE.search(data):
        if b"PRIVATE KEY-----" in data:
            what = "is a private key, not a CA certificate"
        elif b"CERTIFICATE REQUEST-----" in data:
            what = "is a certificate request, not a CA certificate"
        elif data[:1] == b"\x30":  # a DER sequence
            what = "is in DER (binary) form, not PEM (`openssl x509 -inform der` converts it)"
        else:
            what = "holds no PEM certificate"
        return f"the CA bundle {path} {what}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except (ssl.SSLError, ValueError) as e:
        return f"the CA bundle {path} is not a valid PEM file of certificates ({e})"
    if context.cert_store_stats().get("x509_ca", 1):
        return None
    first = _first_certificate(path)
    if not first or first.get("subject") == first.get("issuer"):
        return None  # self-signed (or unknown): the certificate may be its own authority
    subject, issuer = (_common_name(first, field) for field in ("subject", "issuer"))
    return (
        f"the CA bundle {path} holds no CA certificate, only the certificate of {subject!r}"
        f" that {issuer!r} issued"
    )


def _common_name(certificate: dict[str, Any], field: str) -> str:
    return str(dict(pair for rdn in certificate.get(field, ()) for pair in rdn).get("commonName"))


def _first_certificate(path: str) -> dict[str, Any]:
    """The first certificate of a PEM file, decoded by the standard library ({} if it cannot)."""
    import ssl

    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    try:
        return dict(decode(path)) if decode else {}
    except (ssl.SSLError, ValueError, OSError):
        return {}
