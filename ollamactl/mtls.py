"""Client certificates (mutual TLS): the files checked up front, and a server's refusal worded.

:func:`check_client_certificate` runs when the settings are resolved, before any request, so a
wrong path, a file that is not PEM, a key of another certificate or an encrypted key (requests
cannot ask for its password) is a usage error (exit 2). :func:`refusal` recognises a server
that wants a certificate, or refuses the one sent: nginx answers HTTP 400 with its own page,
other servers abort the handshake with a TLS alert. Both are an authentication failure (exit 4):
the connection works, the credential does not. No requests here; ``ssl`` only when checking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ollamactl.errors import AuthFailed, UsageError

if TYPE_CHECKING:
    from ollamactl.config import Settings

#: What nginx (HTTP 400 page title) or a TLS alert says when no certificate was sent.
_NOT_SENT = ("No required SSL certificate was sent", "ALERT_CERTIFICATE_REQUIRED")
#: ... and when the certificate sent was refused (untrusted CA, expired, wrong purpose).
_REFUSED = (
    "The SSL certificate error",
    "ALERT_BAD_CERTIFICATE",
    "ALERT_UNSUPPORTED_CERTIFICATE",
    "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_CERTIFICATE_EXPIRED",
    "ALERT_CERTIFICATE_REVOKED",
    "ALERT_UNKNOWN_CA",
)
_HOW_TO_GIVE = (
    "give one with --client-cert PATH --client-key PATH, OLLAMACTL_CLIENT_CERT and"
    " OLLAMACTL_CLIENT_KEY, or a profile's client_cert and client_key"
)
_WHAT_SERVERS_CHECK = (
    "the server must trust the CA that issued it, and it must be valid now and made for"
    " client authentication (extendedKeyUsage clientAuth)"
)


class _Encrypted(Exception):
    """Raised by the password callback: the key is encrypted."""


def _refuse_password() -> str:
    raise _Encrypted


def _read(path: str, what: str, source: str) -> str:
    try:
        with open(path, "rb") as file:
            return file.read().decode("latin-1")
    except OSError as e:
        raise UsageError(
            f"cannot read the {what} {path!r} (from {source}): {e.strerror or e}"
        ) from None


def check_client_certificate(cert: str | None, key: str | None, sources: Mapping[str, str]) -> None:
    """Check that ``cert`` (and ``key``, or the key inside ``cert``) can be used; UsageError if not.

    ``sources`` says where each came from (``client_cert``/``client_key``), for the messages.
    """
    if cert is None:
        if key is not None:
            raise UsageError(
                f"a client key (from {sources.get('client_key')}) needs a client certificate",
                hint="give it with --client-cert PATH",
            )
        return
    cert_source = sources.get("client_cert", "--client-cert")
    key_source = sources.get("client_key", "--client-key") if key else cert_source
    if "-----BEGIN CERTIFICATE-----" not in _read(cert, "client certificate", cert_source):
        raise UsageError(
            f"the client certificate {cert!r} (from {cert_source}) is not a PEM certificate",
            hint="convert DER with `openssl x509 -inform der -in FILE -out cert.pem`",
        )
    key_text = _read(key or cert, "client key", key_source)
    if "PRIVATE KEY-----" not in key_text:
        raise UsageError(
            f"{key!r} (from {key_source}) is not a PEM private key"
            if key
            else f"the client certificate {cert!r} (from {cert_source}) holds no private key",
            hint=None if key else "give the key with --client-key PATH",
        )
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, _refuse_password)
    except _Encrypted:
        shown = key or cert
        raise UsageError(
            f"the client key {shown!r} (from {key_source}) is encrypted, and ollamactl cannot"
            " ask for its password",
            hint=f"use a decrypted copy only you can read: openssl pkey -in {shown}"
            " -out client.key && chmod 600 client.key",
        ) from None
    except ssl.SSLError as e:
        if e.reason == "KEY_VALUES_MISMATCH":
            raise UsageError(
                f"the client key (from {key_source}) is not the key of the certificate"
                f" {cert!r} (from {cert_source})"
            ) from None
        raise UsageError(
            f"cannot use the client certificate {cert!r} (from {cert_source}): {e.reason or e}"
        ) from None


def refusal(text: str, settings: Settings, *, how: str) -> AuthFailed | None:
    """The error for a server that wants a client certificate or refuses ours, else ``None``.

    ``text`` is what the server said (an HTML error page, or a TLS error's message); ``how``
    names the channel for the message ("HTTP 400", "TLS alert").
    """
    where = f"the server at {settings.base_url}"
    source = settings.sources.get("client_cert")
    if any(marker in text for marker in _NOT_SENT):
        hint = (
            f"one was configured ({source}) but not sent; check the files"
            if settings.client_cert
            else _HOW_TO_GIVE
        )
        return AuthFailed(f"{where} requires a client certificate ({how})", hint=hint)
    if any(marker in text for marker in _REFUSED):
        sent = f"the client certificate from {source}" if source else "the client certificate"
        return AuthFailed(f"{where} refused {sent} ({how})", hint=_WHAT_SERVERS_CHECK)
    return None
