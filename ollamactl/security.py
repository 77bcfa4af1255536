"""``doctor --security``: the server's exposure, how it is reached, and published advisories.

:func:`review` probes the API once without any credential (what anyone who finds the address
gets), looks at the transport settings, and compares ``/api/version`` with the fixed versions
in :data:`ADVISORIES`. Each finding has a severity, one line and a hint; ``info`` findings
are not problems.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ollamactl.config import Settings

if TYPE_CHECKING:
    from ollamactl.app import App

HIGH, MEDIUM, LOW, INFO = "high", "medium", "low", "info"
#: When ADVISORIES was last compared with its sources (the Go vulnerability database first).
ADVISORIES_AS_OF = "2026-11-28"
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?(-\S+)?")


@dataclass(frozen=True)
class Advisory:
    """A published vulnerability of the Ollama server that a version fixes."""

    id: str
    summary: str
    fixed: str
    published: str
    url: str
    severity: str


#: Advisories with a fixed version, as published (date: the CVE's, or the Go vulnerability
#: database's where that came first). Advisories without a fixed version are not listed: no
#: version check can clear them (mitigation: do not expose /api/create, /api/pull, /api/push).
ADVISORIES: tuple[Advisory, ...] = (
    Advisory(
        "CVE-2024-28224",
        "DNS rebinding lets a web page use the whole API",
        "0.1.29",
        "2024-04-08",
        "https://pkg.go.dev/vuln/GO-2024-2699",
        HIGH,
    ),
    Advisory(
        "CVE-2024-37032",
        "unchecked digests: path traversal, code execution through a crafted pull (Probllama)",
        "0.1.34",
        "2024-06-13",
        "https://pkg.go.dev/vuln/GO-2024-2901",
        HIGH,
    ),
    Advisory(
        "CVE-2025-44779",
        "arbitrary file deletion through /api/pull",
        "0.1.34",
        "2025-08-11",
        "https://pkg.go.dev/vuln/GO-2025-3851",
        HIGH,
    ),
    Advisory(
        "CVE-2024-39721",
        "/api/create with a device path spins forever (denial of service)",
        "0.1.34",
        "2024-10-31",
        "https://osv.dev/vulnerability/CVE-2024-39721",
        MEDIUM,
    ),
    Advisory(
        "CVE-2024-39720",
        "a 4-byte GGUF crashes the server through /api/create (denial of service)",
        "0.1.46",
        "2024-10-31",
        "https://pkg.go.dev/vuln/GO-2024-3245",
        MEDIUM,
    ),
    Advisory(
        "CVE-2024-39722",
        "path traversal in /api/push reveals which files exist on the server",
        "0.1.46",
        "2024-10-31",
        "https://www.oligo.security/blog/more-models-more-probllms",
        MEDIUM,
    ),
    Advisory(
        "CVE-2024-45436",
        "ZIP extraction writes outside its folder",
        "0.1.47",
        "2024-12-12",
        "https://pkg.go.dev/vuln/GO-2024-3104",
        HIGH,
    ),
    Advisory(
        "CVE-2024-12886",
        "a crafted GZIP answer exhausts the server (denial of service)",
        "0.4.0",
        "2025-03-27",
        "https://pkg.go.dev/vuln/GO-2025-3548",
        MEDIUM,
    ),
    Advisory(
        "CVE-2025-51471",
        "a registry's auth realm on another host receives the server's signed token",
        "0.14.3",
        "2025-07-29",
        "https://www.gecko.security/blog/cve-2025-51471",
        MEDIUM,
    ),
    Advisory(
        "CVE-2026-7482",
        "heap out-of-bounds read in the GGUF loader leaks memory through /api/push"
        " (Bleeding Llama)",
        "0.17.1",
        "2026-05-04",
        "https://pkg.go.dev/vuln/GO-2026-5748",
        HIGH,
    ),
)
#: No authentication on model management, by design: what an exposed API means.
UNAUTHENTICATED_ADVISORY = "CVE-2025-63389 (https://pkg.go.dev/vuln/GO-2025-4251)"


@dataclass(frozen=True)
class Finding:
    """One result of the review."""

    severity: str
    check: str
    message: str
    hint: str = ""

    @property
    def problem(self) -> bool:
        """True unless the finding is for information only."""
        return self.severity != INFO


@dataclass(frozen=True)
class Probe:
    """What the API answered to a request without any credential."""

    answered: bool
    detail: str


@dataclass(frozen=True)
class Review:
    """Every finding about one server."""

    base_url: str
    server_version: str
    findings: list[Finding]

    @property
    def problems(self) -> list[Finding]:
        """The findings that are not for information only."""
        return [finding for finding in self.findings if finding.problem]

    def as_dict(self) -> dict[str, Any]:
        """The review for ``--json``."""
        return {
            "base_url": self.base_url,
            "server_version": self.server_version,
            "advisories_as_of": ADVISORIES_AS_OF,
            "findings": [asdict(finding) for finding in self.findings],
            "problems": len(self.problems),
        }


def parse_version(text: str) -> tuple[int, int, int, int] | None:
    """A version as a sortable tuple; a pre-release sorts before its release.

    >>> parse_version("0.9.3") < parse_version("0.14.3-rc1") < parse_version("v0.14.3")
    True
    >>> parse_version("unknown") is None
    True
    """
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    return int(major), int(minor), int(patch or 0), 0 if pre else 1


def _fixed(advisory: Advisory) -> tuple[int, int, int, int]:
    parsed = parse_version(advisory.fixed)
    assert parsed is not None, advisory.id
    return parsed


def version_findings(version: str) -> list[Finding]:
    """One finding per advisory the version is older than the fix of (or why none can be told).

    >>> [f.message.split(" ")[0] for f in version_findings("0.14.0")]
    ['CVE-2025-51471', 'CVE-2026-7482']
    >>> version_findings("0.17.1")[0].severity
    'info'
    """
    parsed = parse_version(version)
    if parsed is None or parsed[:3] == (0, 0, 0):
        return [Finding(INFO, "version", f"cannot compare the server's version {version!r}")]
    applies = [a for a in ADVISORIES if parsed < _fixed(a)]
    if not applies:
        text = f"Ollama {version}: no published advisory with a fix applies"
        return [Finding(INFO, "version", f"{text} (as of {ADVISORIES_AS_OF})")]
    newest = max(applies, key=_fixed).fixed
    return [
        Finding(
            a.severity,
            "version",
            f"{a.id} ({a.published}): {a.summary}; fixed in {a.fixed}, the server runs {version}",
            f"upgrade Ollama to {newest} or later; {a.url}",
        )
        for a in applies
    ]


def exposure_findings(settings: Settings, probe: Probe) -> list[Finding]:
    """Whether the API answers without credentials, and what that means for this host."""
    where = settings.base_url
    if not probe.answered:
        return [Finding(INFO, "exposure", f"without credentials, {where} {probe.detail}")]
    if settings.host.is_loopback:
        return [
            Finding(
                INFO,
                "exposure",
                f"{where} answers without credentials ({probe.detail}), on loopback only: fine",
                "unless the server also listens on other addresses (OLLAMA_HOST=0.0.0.0):"
                " check with `ss -ltnp | grep ollama` on the server",
            )
        ]
    source = settings.credential_source()
    if source:
        message = (
            f"{where} answers without credentials ({probe.detail}) although you send {source}:"
            " whoever finds it can use it without them"
        )
        hint = "make the gateway refuse requests without the token, on every path"
    else:
        message = (
            f"{where} answers without credentials ({probe.detail}): usable by anyone who finds"
            f" it (pull, push, create, delete models; {UNAUTHENTICATED_ADVISORY})"
        )
        hint = (
            "bind Ollama to 127.0.0.1 and put an HTTPS gateway that checks a token in front,"
            " or firewall the port"
        )
    return [Finding(HIGH, "exposure", message, hint)]


def transport_findings(settings: Settings) -> list[Finding]:
    """Credentials or traffic in clear text, and TLS certificates not verified."""
    findings = []
    host = settings.host
    source = settings.credential_source()
    if host.scheme == "http" and not host.is_loopback:
        if source:
            findings.append(
                Finding(
                    HIGH,
                    "transport",
                    f"{source} travels in clear text over http:// to {host.host}",
                    "use https:// (a TLS gateway) or an SSH tunnel to a loopback port",
                )
            )
        else:
            findings.append(
                Finding(
                    LOW,
                    "transport",
                    f"prompts and answers travel in clear text over http:// to {host.host}",
                    "use https:// (a TLS gateway) or an SSH tunnel to a loopback port",
                )
            )
    if settings.insecure_tls:
        origin = settings.sources.get("insecure_tls", "a setting")
        findings.append(
            Finding(
                MEDIUM,
                "tls",
                f"TLS certificates are not verified (--insecure-tls, from {origin})",
                "give the CA that signed the server's certificate with --ca-cert PATH instead",
            )
        )
    return findings


def probe_without_credentials(settings: Settings) -> Probe:
    """GET ``/api/tags`` with no token, header, basic auth or cookie, and say what came back.

    A redirect (to a login page?) is not the API. The TLS settings (CA bundle, verification)
    and the environment's proxy still apply: they are how this machine reaches the server.
    """
    from ollamactl.client import Client
    from ollamactl.errors import AuthFailed, OllamactlError

    client = Client(settings, credentials=False)
    try:
        response, body = client.probe("/api/tags", idle=min(settings.read_timeout, 30.0))
    except AuthFailed as e:
        return Probe(False, f"is refused (HTTP {e.status})")
    except OllamactlError as e:
        if e.status is not None:
            return Probe(False, f"does not answer the API (HTTP {e.status})")
        return Probe(False, f"gave no answer: {e.message}")
    finally:
        client.session.close()
    if response.is_redirect:
        return Probe(False, f"redirects to {response.headers.get('Location', '?')}")
    try:
        models = json.loads(body).get("models") if response.status_code == 200 else None
    except (ValueError, AttributeError):
        models = None
    if isinstance(models, list):
        return Probe(True, f"HTTP 200, {len(models)} model{'' if len(models) == 1 else 's'}")
    return Probe(False, f"does not answer the API (HTTP {response.status_code})")


def review(app: App) -> Review:
    """Review the server of ``app``: its version first (errors end the review), then the rest."""
    settings = app.settings
    version = str(app.client.version().get("version", "unknown"))
    findings = [
        *exposure_findings(settings, probe_without_credentials(settings)),
        *transport_findings(settings),
        *version_findings(version),
    ]
    return Review(settings.base_url, version, findings)


def render(result: Review) -> str:
    """The review as text: a title, then a line per finding and its hint."""
    title = f"Security review of {result.base_url} (Ollama {result.server_version};"
    lines = [f"{title} advisories as of {ADVISORIES_AS_OF})"]
    for finding in result.findings:
        lines.append(f"  {finding.severity:<6} {finding.check:<9} {finding.message}")
        if finding.hint:
            lines.append(f"  {'':<6} {'':<9} hint: {finding.hint}")
    return "\n".join(lines)
