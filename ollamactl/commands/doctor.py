"""``ollamactl doctor``: where the settings come from and which step of a connection fails.

The checks run in order (settings, proxy, DNS, TCP, TLS, API, auth); a check whose
prerequisite failed is skipped. DNS, TCP and TLS are probed with the standard library's
sockets, so that a failure names the exact step; every HTTP request goes through the
client, exactly as the other commands send it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from ollamactl import render
from ollamactl.app import App, pass_app
from ollamactl.config import Settings
from ollamactl.errors import BadResponse, CommandFailed, ExitCode, OllamactlError
from ollamactl.http_errors import is_plain_http_port
from ollamactl.options import json_option

if TYPE_CHECKING:
    import ssl

    from ollamactl.client import Client

OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"
EXPIRY_WARNING_DAYS = 14
_SETTING_NAMES = (
    "host",
    "api_key",
    "headers",
    "ca_cert",
    "insecure_tls",
    "connect_timeout",
    "read_timeout",
    "retries",
)


@dataclass
class Check:
    """The outcome of one diagnostic step."""

    name: str
    status: str
    detail: str
    suggestion: str | None = None
    exit_code: int = 0

    @property
    def failed(self) -> bool:
        """True when the step failed (a warning is not a failure)."""
        return self.status == FAIL


@dataclass
class Target:
    """Where the probes connect: the server itself, or the proxy in front of it."""

    host: str
    port: int
    via_proxy: str | None


def _fail(name: str, detail: str, suggestion: str | None, code: int) -> Check:
    from ollamactl.http_errors import DOCTOR_CHECKS_IT  # a hint that sends the user here

    return Check(name, FAIL, detail, suggestion and suggestion.replace(DOCTOR_CHECKS_IT, ""), code)


def _skip(name: str, why: str) -> Check:
    return Check(name, SKIP, why)


# -- settings and proxy ---------------------------------------------------------------------


def _setting_rows(settings: Settings) -> list[dict[str, str]]:
    """Each setting with its value (secrets hidden) and the flag/env/profile it came from."""
    shown: dict[str, str] = {
        "host": settings.base_url,
        "api_key": "set (hidden)" if settings.api_key else "none",
        "headers": ", ".join(sorted(settings.headers)) or "none",
        "ca_cert": settings.ca_cert or "none",
        "insecure_tls": "yes" if settings.insecure_tls else "no",
        "connect_timeout": f"{settings.connect_timeout:g}s",
        "read_timeout": f"{settings.read_timeout:g}s",
        "retries": str(settings.retries),
    }
    if settings.host.username is not None:
        shown["host"] += f" (basic auth as {settings.host.username!r}, password hidden)"
    rows = [
        {"setting": name, "value": shown[name], "source": settings.sources.get(name, "default")}
        for name in _SETTING_NAMES
    ]
    rows.append({"setting": "profile", "value": settings.profile or "none", "source": ""})
    return rows


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc).geturl()


def _proxy(settings: Settings) -> tuple[str | None, str]:
    """The proxy URL the client will use for the base URL (or None), and a description."""
    import urllib.request

    from requests.utils import get_environ_proxies

    scheme = settings.host.scheme
    applied = get_environ_proxies(settings.base_url)
    proxy = applied.get(scheme) or applied.get("all")
    if proxy:
        return proxy, f"{_without_userinfo(proxy)} (from {scheme.upper()}_PROXY or ALL_PROXY)"
    if urllib.request.getproxies().get(scheme):
        return None, f"none: {scheme.upper()}_PROXY is set, but NO_PROXY excludes this host"
    return None, "none"


def _target(settings: Settings, proxy: str | None) -> Target:
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        default = 443 if parts.scheme == "https" else 80
        try:
            port = parts.port or default
        except ValueError:  # a malformed port: the TCP check will say it cannot connect
            port = default
        return Target(parts.hostname or "", port, proxy)
    default = 443 if settings.host.scheme == "https" else 80
    return Target(settings.host.host, settings.host.port or default, None)


# -- DNS, TCP, TLS --------------------------------------------------------------------------


def _dns(target: Target) -> tuple[Check, list[str]]:
    label = "proxy " if target.via_proxy else ""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        detail = f"the {label}host name {target.host!r} does not resolve: {e}"
        suggestion = "check the spelling of the host, or the DNS/VPN this machine uses"
        return _fail("DNS", detail, suggestion, ExitCode.CONNECTION), []
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return Check("DNS", OK, f"{label}{target.host} -> {', '.join(addresses)}"), addresses


def _tcp(target: Target, addresses: list[str], timeout: float) -> Check:
    errors = []
    for address in addresses:
        try:
            with socket.create_connection((address, target.port), timeout=timeout):
                return Check("TCP", OK, f"connected to {address} port {target.port}")
        except OSError as e:
            errors.append(f"{address}: {e.strerror or e}")
    suggestion = (
        "is the server (or the gateway) running and listening on that port?"
        " a firewall may also drop the connection"
    )
    detail = f"cannot connect to port {target.port}: {'; '.join(errors)}"
    return _fail("TCP", detail, suggestion, ExitCode.CONNECTION)


def _trust(settings: Settings) -> tuple[str | None, str]:
    """The CA bundle requests will verify with, and where that choice came from."""
    if settings.ca_cert:
        return settings.ca_cert, f"the CA bundle from {settings.sources.get('ca_cert')}"
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(variable):
            return os.environ[variable], f"the CA bundle from {variable}"
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    return DEFAULT_CA_BUNDLE_PATH, "the default CA bundle (certifi)"


def _name_of(cert: dict[str, Any], field: str) -> str:
    pairs = dict(pair for rdn in cert.get(field, ()) for pair in rdn)
    return str(pairs.get("commonName") or pairs.get("organizationName") or "?")


def _decode_der(der: bytes) -> dict[str, Any]:
    """Decode an unverified certificate with the stdlib (no third-party parser needed)."""
    import ssl
    import tempfile

    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cert.pem"
        path.write_text(ssl.DER_cert_to_PEM_cert(der))
        try:
            return dict(decode(str(path)))
        except (ssl.SSLError, ValueError):
            return {}


def _handshake(
    host: str, address: str, port: int, context: ssl.SSLContext, timeout: float
) -> tuple[dict[str, Any], str]:
    """Shake hands; returns the server certificate (decoded) and the TLS version."""
    raw = socket.create_connection((address, port), timeout=timeout)
    with raw, context.wrap_socket(raw, server_hostname=host) as tls:
        cert = tls.getpeercert() or _decode_der(tls.getpeercert(binary_form=True) or b"")
        return cert, str(tls.version())


def _describe_cert(cert: dict[str, Any]) -> tuple[str, float | None]:
    import ssl

    if not cert:
        return "certificate details unavailable", None
    names = [
        value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "IP Address")
    ]
    subject = ", ".join(names) or _name_of(cert, "subject")
    expires = ssl.cert_time_to_seconds(cert["notAfter"]) if cert.get("notAfter") else None
    text = f"certificate for {subject} issued by {_name_of(cert, 'issuer')!r}"
    if expires is not None:
        day = time.strftime("%Y-%m-%d", time.gmtime(expires))
        left = expires - time.time()
        when = f"in {render.human_duration(left)}" if left > 0 else "EXPIRED"
        text += f", expires {day} ({when})"
    return text, expires


def _tls(settings: Settings, target: Target, addresses: list[str], timeout: float) -> Check:
    if settings.host.scheme != "https":
        return _skip("TLS", "plain http:// (nothing is encrypted)")
    if target.via_proxy:
        return _skip("TLS", "through the proxy: the API check below covers it")
    import ssl

    from ollamactl.http_errors import CA_BUNDLE_HINT, ca_bundle_problem

    host, address = settings.host.host, addresses[0]
    bundle, trust = _trust(settings)
    context = ssl.create_default_context()
    if settings.insecure_tls:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        problem = ca_bundle_problem(bundle) if bundle else None
        if problem:
            return _fail("TLS", f"{problem} ({trust})", CA_BUNDLE_HINT, ExitCode.USAGE)
        location = {"capath" if bundle and os.path.isdir(bundle) else "cafile": bundle}
        try:
            context.load_verify_locations(**location)
        except (OSError, ssl.SSLError) as e:
            suggestion = "the CA bundle must be a PEM file of CA certificates"
            return _fail(
                "TLS", f"cannot use {trust} ({bundle}): {e}", suggestion, ExitCode.CONNECTION
            )
    try:
        cert, version = _handshake(host, address, target.port, context, timeout)
    except ssl.SSLCertVerificationError as e:
        return _tls_failure(settings, target, address, str(e.verify_message), timeout)
    except ssl.SSLError as e:
        plain = is_plain_http_port(e)
        suggestion = "does the port speak TLS? try http://" if plain else None
        return _fail(
            "TLS", f"the TLS handshake failed: {e.reason}", suggestion, ExitCode.CONNECTION
        )
    except OSError as e:
        return _fail(
            "TLS", f"the connection failed during the handshake: {e}", None, ExitCode.CONNECTION
        )
    text, expires = _describe_cert(cert)
    if settings.insecure_tls:
        return Check("TLS", WARN, f"{version}; {text}; NOT verified (--insecure-tls)")
    if expires is not None and expires - time.time() < EXPIRY_WARNING_DAYS * 86400:
        return Check("TLS", WARN, f"{version}; {text}; verified with {trust}", "renew it soon")
    return Check("TLS", OK, f"{version}; {text}; verified with {trust}")


def _tls_failure(
    settings: Settings, target: Target, address: str, reason: str, timeout: float
) -> Check:
    """Explain a failed certificate check, with the certificate's details where possible."""
    import ssl

    unverified = ssl.create_default_context()
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    try:
        cert, _ = _handshake(settings.host.host, address, target.port, unverified, timeout)
    except OSError:
        cert = {}
    text, _ = _describe_cert(cert)
    if "mismatch" in reason:
        suggestion = (
            f"the certificate does not name {settings.host.host!r}: connect with a name it"
            " lists, or fix the gateway's certificate"
        )
    elif "expired" in reason:
        suggestion = "the certificate has expired: renew it on the server or gateway"
    else:
        suggestion = (
            "the certificate's issuer is not trusted here: pass --ca-cert PATH (the CA's"
            " PEM file) or set REQUESTS_CA_BUNDLE; --insecure-tls skips verification (unsafe)"
        )
    return _fail(
        "TLS", f"certificate verify failed: {reason}; {text}", suggestion, ExitCode.CONNECTION
    )


# -- HTTP: version and auth -----------------------------------------------------------------


def _api(client: Client, settings: Settings) -> Check:
    try:
        version = client.version().get("version", "unknown")
    except OllamactlError as e:
        return _fail("API", e.message, _api_suggestion(client, settings, e), int(e.exit_code))
    return Check("API", OK, f"Ollama {version} answers at {settings.base_url}/api/version")


def _api_suggestion(client: Client, settings: Settings, error: OllamactlError) -> str | None:
    """What to change when ``/api/version`` is not the Ollama API."""
    if not isinstance(error, BadResponse):
        return error.hint
    if error.status == 200:
        return (
            "the base URL leads to a web page (a login page or a web UI?), not the Ollama API:"
            f" use the URL that {settings.base_url}/api/version answers JSON under"
        )
    if error.status == 404:
        try:
            doubled = isinstance(client.get_json("/version"), dict)
        except OllamactlError:
            doubled = False
        if doubled:
            return (
                f"{settings.base_url}/version answers: the gateway forwards its prefix to"
                " Ollama's /api/, so requests arrive as /api/api/...; make it forward to the"
                " server root instead (nginx: proxy_pass http://ollama:11434/;)"
            )
    return error.hint


def _auth(client: Client, settings: Settings) -> Check:
    source = settings.credential_source()
    sent = f"sent {source}" if source else "no credentials sent"
    try:
        models = client.tags()
    except OllamactlError as e:
        return _fail("Auth", e.message, e.hint, int(e.exit_code))
    return Check(
        "Auth",
        OK,
        f"/api/tags answered with {len(models)} model{'' if len(models) == 1 else 's'}; {sent}",
    )


# -- the command ----------------------------------------------------------------------------


def diagnose(app: App) -> tuple[dict[str, Any], list[Check]]:
    """Run every check; returns the effective configuration and the checks in order."""
    try:
        settings = app.settings
    except OllamactlError as e:
        return {}, [_fail("Settings", e.message, e.hint, int(e.exit_code))]
    client = app.client  # warns now about --insecure-tls or credentials over plain http://
    proxy, proxy_text = _proxy(settings)
    config = {
        "base_url": settings.base_url,
        "settings": _setting_rows(settings),
        "proxy": proxy_text,
    }
    target = _target(settings, proxy)
    dns, addresses = _dns(target)
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("TCP", lambda: _tcp(target, addresses, settings.connect_timeout)),
        ("TLS", lambda: _tls(settings, target, addresses, settings.connect_timeout)),
        ("API", lambda: _api(client, settings)),
        ("Auth", lambda: _auth(client, settings)),
    ]
    checks = [dns]
    for name, run in steps:
        failed = next((check for check in checks if check.failed), None)
        checks.append(_skip(name, f"the {failed.name} check failed") if failed else run())
    return config, checks


def _report(config: dict[str, Any], checks: list[Check]) -> str:
    lines = []
    if config:
        lines.append(f"Base URL  {config['base_url']}")
        rows = [[row["setting"], row["value"], row["source"]] for row in config["settings"]]
        lines.append("Settings (value, where it came from)")
        lines += ["  " + line.rstrip() for line in render.table(rows).splitlines()]
        lines.append(f"Proxy     {config['proxy']}")
    lines.append("Checks")
    for check in checks:
        lines.append(f"  {check.status:<5} {check.name:<9} {check.detail}")
        if check.suggestion and check.status in (FAIL, WARN):
            lines.append(f"  {'':<5} {'':<9} fix: {check.suggestion}")
    return "\n".join(lines)


@click.command()
@json_option("the report")
@click.option(
    "--security",
    is_flag=True,
    help="Review exposure, credentials, TLS and the server's version against advisories.",
)
@pass_app
def doctor(app: App, as_json: bool, security: bool) -> None:
    """Diagnose the connection to the server, step by step.

    Prints the effective base URL (credentials hidden), where each setting
    came from (flag, environment, profile), the proxy in use, then checks DNS,
    TCP, TLS (issuer, expiry, verification), /api/version and authentication,
    with a suggested fix for each failure. Exits 0 when every check passes,
    else with the exit code of the first failure (3 network/TLS, 4 auth, ...).

    With --security, reviews the server instead: whether its API answers a
    request without credentials (fine on loopback only), credentials over plain
    http://, TLS verification turned off, and its version against published
    advisories. Exits 1 when it finds a problem.

    \b
    Examples:
      ollamactl doctor
      ollamactl --profile gpu doctor --json | jq '.checks[] | select(.status == "FAIL")'
      ollamactl --profile gpu doctor --security
    """
    if security:
        from ollamactl import security as review

        result = review.review(app)
        report = render.to_json(result.as_dict()) if as_json else review.render(result)
        click.echo(app.redact(report))
        if result.problems:
            raise CommandFailed(f"{len(result.problems)} security problem(s) found")
        return
    config, checks = diagnose(app)
    failed = [check for check in checks if check.failed]
    code = failed[0].exit_code if failed else 0
    if as_json:
        report = {**config, "checks": [asdict(check) for check in checks], "exit_code": code}
        click.echo(app.redact(render.to_json(report)))
    else:
        click.echo(app.redact(_report(config, checks)))
    if failed:
        names = ", ".join(check.name for check in failed)
        raise CommandFailed(f"{len(failed)} check(s) failed: {names}", code)
