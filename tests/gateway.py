"""A real HTTPS gateway for tests: nginx in front of the local Ollama test server.

The gateway is what people put in front of a remote Ollama: TLS with a certificate from a
private CA (generated here, valid for 127.0.0.1 and localhost), the API under the path prefix
``/ollama-api``, a bearer token checked by nginx itself, and streams passed through unbuffered.
A third TLS port also requires a client certificate from the same CA (``ssl_verify_client on``).
Besides the API it serves nginx's own HTML error pages (``/bad-gateway`` answers 502: its
upstream port is closed; ``/slow-gateway`` answers 504: its upstream accepts and never replies),
two misconfigurations (``/misrouted`` forwards to Ollama's ``/api/``, so requests arrive as
``/api/api/...``; ``/login`` answers an HTML sign-in page) and a second TLS port whose
certificate names another host.

nginx runs as a non-daemon child with its prefix, temp dirs and logs under the test's tmp dir,
is stopped at fixture teardown, and kills itself after a bounded lifetime in any case. The
``gateway`` fixture (registered by conftest.py, which also marks its tests ``gateway``)::

    def test_list(gateway: Gateway) -> None:
        result = run_cli(*gateway.args(), "list")

Tests skip when nginx is not installed, except with ``OLLAMACTL_TEST_STRICT`` set (as
``.ci/run`` does; it installs nginx), where they fail.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import free_port, require_program, seed

PREFIX = "/ollama-api"
TOKEN = "gw-canary-token-7f3a9c"
LIFETIME_SECONDS = 300
START_TIMEOUT_SECONDS = 10.0
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


@dataclass(frozen=True)
class Certificates:
    """PEM files of a throwaway CA, two server certificates and a client certificate it issued."""

    ca: Path
    server_cert: Path
    server_key: Path
    #: A certificate for another host name (``other.invalid``), for hostname-mismatch tests.
    other_cert: Path
    other_key: Path
    #: A certificate for client authentication (mutual TLS), its key, and that key encrypted.
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path


def make_certificates(folder: Path) -> Certificates:
    """Generate a CA, certificates for 127.0.0.1/localhost and ``other.invalid``, and a client."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ollamactl tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    def write(path: Path, data: bytes) -> Path:
        path.write_bytes(data)
        return path

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("ollamactl test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        common_name: str,
        alt_names: list[x509.GeneralName],
        usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
    ) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=60))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), key

    server_pem, server_key = leaf(
        "127.0.0.1",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    other_pem, other_key = leaf("other.invalid", [x509.DNSName("other.invalid")])
    client_pem, client_key = leaf(
        "ollamactl test client", [x509.DNSName("client.invalid")], ExtendedKeyUsageOID.CLIENT_AUTH
    )
    encrypted = client_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"test-password"),
    )
    return Certificates(
        ca=write(folder / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM)),
        server_cert=write(folder / "server.pem", server_pem),
        server_key=write(folder / "server.key", pem_key(server_key)),
        other_cert=write(folder / "other.pem", other_pem),
        other_key=write(folder / "other.key", pem_key(other_key)),
        client_cert=write(folder / "client.pem", client_pem),
        client_key=write(folder / "client.key", pem_key(client_key)),
        client_key_encrypted=write(folder / "client-encrypted.key", encrypted),
    )


def find_nginx() -> str | None:
    """The nginx binary, also where /usr/sbin is not on PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in NGINX_CANDIDATES if os.access(path, os.X_OK)), None)


def _nginx_conf(
    root: Path, certs: Certificates, upstream: int, ports: dict[str, int], token: str
) -> str:
    temp = {name: root / "temp" / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    api = f"""
        location {PREFIX}/ {{
            if ($http_authorization != "Bearer {token}") {{
                return 401;
            }}
            proxy_pass http://127.0.0.1:{upstream}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 60s;
        }}"""
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} info;
events {{ worker_connections 128; }}
http {{
    access_log {root / "access.log"};
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    client_max_body_size 0;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {{
        listen 127.0.0.1:{ports["https"]} ssl;
        server_name localhost 127.0.0.1;
        ssl_certificate {certs.server_cert};
        ssl_certificate_key {certs.server_key};
        {api}
        location /misrouted/ {{
            proxy_pass http://127.0.0.1:{upstream}/api/;
        }}
        location /login/ {{
            default_type text/html;
            return 200 "<html><head><title>Sign in</title></head><body>SSO</body></html>";
        }}
        location /bad-gateway/ {{
            proxy_pass http://127.0.0.1:{ports["closed"]}/;
        }}
        location /slow-gateway/ {{
            proxy_pass http://127.0.0.1:{ports["silent"]}/;
            proxy_connect_timeout 2s;
            proxy_read_timeout 300ms;
        }}
    }}
    server {{
        listen 127.0.0.1:{ports["mismatch"]} ssl;
        ssl_certificate {certs.other_cert};
        ssl_certificate_key {certs.other_key};
        {api}
    }}
    server {{
        listen 127.0.0.1:{ports["mtls"]} ssl;
        ssl_certificate {certs.server_cert};
        ssl_certificate_key {certs.server_key};
        ssl_client_certificate {certs.ca};
        ssl_verify_client on;
        ssl_verify_depth 2;
        {api}
    }}
}}
"""


@dataclass
class Gateway:
    """A running nginx gateway in front of ``upstream`` (see the module docstring)."""

    upstream: OllamaTestServer
    certs: Certificates
    port: int
    mismatch_port: int
    mtls_port: int
    error_log: Path
    token: str = TOKEN

    @property
    def url(self) -> str:
        """The base URL of the API behind the gateway."""
        return f"https://127.0.0.1:{self.port}{PREFIX}"

    @property
    def localhost_url(self) -> str:
        """The same API, reached by host name."""
        return f"https://localhost:{self.port}{PREFIX}"

    @property
    def mismatch_url(self) -> str:
        """The API on a port whose certificate is for ``other.invalid``."""
        return f"https://127.0.0.1:{self.mismatch_port}{PREFIX}"

    @property
    def mtls_url(self) -> str:
        """The API on a port that also requires a client certificate (``certs.client_cert``)."""
        return f"https://127.0.0.1:{self.mtls_port}{PREFIX}"

    @property
    def bad_gateway_url(self) -> str:
        """A base URL where nginx answers its HTML 502 page."""
        return f"https://127.0.0.1:{self.port}/bad-gateway"

    @property
    def gateway_timeout_url(self) -> str:
        """A base URL where nginx answers its HTML 504 page (after 0.3 s)."""
        return f"https://127.0.0.1:{self.port}/slow-gateway"

    @property
    def misrouted_url(self) -> str:
        """A base URL that nginx maps onto Ollama's ``/api/`` (requests arrive as /api/api/...)."""
        return f"https://127.0.0.1:{self.port}/misrouted"

    @property
    def login_url(self) -> str:
        """A base URL where nginx answers every path with an HTML sign-in page (HTTP 200)."""
        return f"https://127.0.0.1:{self.port}/login"

    @property
    def ca_cert(self) -> str:
        """The CA bundle that verifies the gateway's certificate."""
        return str(self.certs.ca)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of nginx's error log, for failure messages."""
        return _read(self.error_log)[-chars:]

    def args(self, *, url: str | None = None) -> list[str]:
        """Global CLI options that reach the API through the gateway."""
        return ["--host", url or self.url, "--ca-cert", self.ca_cert, "--api-key", self.token]


def _wait_until_listening(process: subprocess.Popen[bytes], ports: list[int]) -> bool:
    """True once every port accepts connections; False if nginx exited or the time ran out."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    pending = list(ports)
    while pending and time.monotonic() < deadline and process.poll() is None:
        with closing(socket.socket()) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", pending[0])) == 0:
                pending.pop(0)
                continue
        time.sleep(0.02)
    return not pending


def start_nginx(
    root: Path, certs: Certificates, upstream_port: int, silent_port: int
) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    """Start nginx (three tries against port races); returns the process and its ports."""
    nginx = find_nginx()
    require_program(nginx, "nginx is not installed (apt-get install nginx; .ci/run installs it)")
    assert nginx is not None
    root.mkdir(parents=True, exist_ok=True)
    error_log = root / "error.log"
    bounded = [shutil.which("timeout") or "", "--kill-after=5", str(LIFETIME_SECONDS)]
    for _ in range(3):
        ports = {
            "https": free_port(),
            "mismatch": free_port(),
            "mtls": free_port(),
            "closed": free_port(),
            "silent": silent_port,
        }
        conf = root / "nginx.conf"
        conf.write_text(_nginx_conf(root, certs, upstream_port, ports, TOKEN))
        command = [nginx, "-p", str(root), "-c", str(conf), "-e", str(error_log)]
        process = subprocess.Popen(
            [*bounded, *command] if bounded[0] else command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not bounded[0]:  # no `timeout` program: a timer kills nginx at the end of its lifetime
            lifetime = threading.Timer(LIFETIME_SECONDS, process.kill)
            lifetime.daemon = True
            lifetime.start()
        if _wait_until_listening(process, [ports["https"], ports["mismatch"], ports["mtls"]]):
            return process, ports
        stop_process(process)
        if "Address already in use" not in _read(error_log):
            break
    pytest.fail(f"nginx did not start; its error log says:\n{_read(error_log)[-2000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child process and reap it (kill it if it does not stop in time)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def _certificates(session_dir: Path) -> Certificates:
    """A throwaway CA and server certificates, made once per test session."""
    return make_certificates(session_dir / "gateway-certs")


def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """The session's throwaway CA and server certificates."""
    return _certificates(tmp_path_factory.getbasetemp())


@contextmanager
def serving_gateway(
    upstream: OllamaTestServer, root: Path, certs: Certificates
) -> Iterator[Gateway]:
    """Run nginx (prefix dir ``root``) in front of a started ``upstream`` until the block ends."""
    with closing(socket.socket()) as silent:
        silent.bind(("127.0.0.1", 0))  # accepts connections (the kernel's backlog), never answers
        silent.listen(64)
        process, ports = start_nginx(root, certs, upstream.port, silent.getsockname()[1])
        try:
            yield Gateway(
                upstream=upstream,
                certs=certs,
                port=ports["https"],
                mismatch_port=ports["mismatch"],
                mtls_port=ports["mtls"],
                error_log=root / "error.log",
            )
        finally:
            stop_process(process)


@pytest.fixture(name="gateway")
def gateway_fixture(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The seeded test server behind a real nginx TLS gateway (see the module docstring)."""
    certs, root = certificates(tmp_path_factory), tmp_path / "nginx"
    with seed(OllamaTestServer()) as upstream, serving_gateway(upstream, root, certs) as gateway:
        yield gateway


#: Every command as a user runs it against the seeded server (after :func:`prepare`);
#: ``{modelfile}`` stands for the path of a Modelfile that :func:`prepare` writes.
EVERY_COMMAND: tuple[tuple[str, ...], ...] = (
    ("list",),
    ("ls", "-q"),
    ("ps",),
    ("show", "tiny"),
    ("cp", "tiny", "tiny-copy"),
    ("rm", "-y", "gemma3:12b"),
    ("stop", "tiny"),
    ("version",),
    ("wait", "--timeout", "0.3", "--interval", "0.1"),
    ("exists", "-v", "tiny"),  # -v: without it, exists prints no error
    ("pull", "fresh", "--retries", "0"),
    ("push", "tiny", "--retries", "0"),
    ("create", "made", "-f", "{modelfile}"),
    ("run", "tiny", "Say hello"),
    ("chat", "tiny", "Name a river"),
    ("embed", "nomic-embed-text", "hello"),
)


def prepare(server: OllamaTestServer, folder: Path) -> dict[str, str]:
    """Give a seeded server what EVERY_COMMAND needs; returns the values of its placeholders."""
    server.add_registry_model("fresh:latest", [4_000, 120])
    modelfile = folder / "Modelfile"
    modelfile.write_text("FROM tiny\nPARAMETER temperature 0.5\nSYSTEM You are terse.\n")
    return {"modelfile": str(modelfile)}


def command_params(commands: tuple[tuple[str, ...], ...] = EVERY_COMMAND) -> list[object]:
    """``commands`` as pytest params, named after the command."""
    return [pytest.param(args, id=" ".join(args[:1])) for args in commands]


def fill(args: tuple[str, ...], values: dict[str, str]) -> list[str]:
    """Replace the ``{placeholders}`` of a command line by their values."""
    return [arg.format(**values) for arg in args]


def assert_one_clean_error(stderr: str, *fragments: str) -> str:
    """Exactly one ``Error:`` line, containing every fragment, and no traceback; returns it."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def read_until(pipe: IO[bytes], marker: bytes, timeout: float = 15.0) -> bytes:
    """Read a subprocess's pipe until ``marker`` arrives (fail after ``timeout`` seconds)."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        left = deadline - time.monotonic()
        ready = select.select([pipe], [], [], max(left, 0))[0]
        if not ready:
            pytest.fail(f"{marker!r} did not arrive within {timeout:g}s; got {data!r}")
        chunk = os.read(pipe.fileno(), 65536)
        if not chunk:
            pytest.fail(f"the output ended before {marker!r}; got {data!r}")
        data += chunk
    return data


@contextmanager
def ollamactl(*args: str, **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m ollamactl ARGS`` with pipes, in the test's environment; killed at exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ollamactl", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )
    with process:  # closes the pipes and reaps the process
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


def finish(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    """Wait (20 s at most) for a process started by :func:`ollamactl`: code, stdout, stderr."""
    out, err = process.communicate(timeout=20)
    return process.returncode, out.decode(), err.decode()
