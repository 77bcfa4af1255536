"""``ollamactl doctor`` against the real nginx gateway, the test server and broken setups."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ollamactl.config import config_path
from tests.fake_ollama import OllamaTestServer
from tests.gateway import PREFIX, Gateway
from tests.helpers import free_port, run_cli


def check_line(stdout: str, name: str) -> str:
    """The report line of one check (``  ok    TLS       ...``)."""
    (line,) = [row for row in stdout.splitlines() if re.match(rf"  \S+\s+{name}\s", row)]
    return line


def fix_after(stdout: str, name: str) -> str:
    """The ``fix:`` line printed under a check."""
    lines = stdout.splitlines()
    following = lines[lines.index(check_line(stdout, name)) + 1]
    assert following.strip().startswith("fix: "), following
    return following


def test_everything_passes_through_the_gateway(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(), "doctor")
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith(f"Base URL  {gateway.url}\n")
    assert re.search(r"\n  api_key +set \(hidden\) +--api-key\n", out)
    assert re.search(rf"\n  ca_cert +{re.escape(gateway.ca_cert)} +--ca-cert\n", out)
    assert "Proxy     none\n" in out
    assert check_line(out, "DNS").split()[:2] == ["ok", "DNS"]
    assert "connected to 127.0.0.1 port" in check_line(out, "TCP")
    tls = check_line(out, "TLS")
    assert tls.split()[0] == "ok"
    assert "issued by 'ollamactl test CA'" in tls and "expires 20" in tls
    assert "verified with the CA bundle from --ca-cert" in tls
    assert f"Ollama 0.9.3 answers at {gateway.url}/api/version" in check_line(out, "API")
    assert "sent the API key from --api-key" in check_line(out, "Auth")
    assert gateway.token not in out + result.stderr
    assert result.stderr == ""


def test_json_report_has_every_check_and_the_exit_code(gateway: Gateway) -> None:
    result = run_cli("--host", gateway.url, "--ca-cert", gateway.ca_cert, "doctor", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == report["exit_code"] == 4
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert statuses == {"DNS": "ok", "TCP": "ok", "TLS": "ok", "API": "FAIL", "Auth": "skip"}
    api = report["checks"][3]
    assert "HTTP 401" in api["detail"] and "no credentials were sent" in api["suggestion"]
    assert report["base_url"] == gateway.url


def test_an_unknown_ca_fails_tls_and_suggests_ca_cert(gateway: Gateway) -> None:
    result = run_cli("--host", gateway.url, "--api-key", gateway.token, "doctor")
    assert result.exit_code == 3
    tls = check_line(result.stdout, "TLS")
    assert tls.split()[0] == "FAIL" and "unable to get local issuer certificate" in tls
    assert "issued by 'ollamactl test CA'" in tls  # the details of the refused certificate
    assert "--ca-cert PATH" in fix_after(result.stdout, "TLS")
    assert check_line(result.stdout, "API").split()[0] == "skip"
    assert result.stderr == "Error: 1 check(s) failed: TLS\n"


def test_a_hostname_mismatch_names_the_certificates_host(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(url=gateway.mismatch_url), "doctor")
    assert result.exit_code == 3
    assert "certificate for other.invalid" in check_line(result.stdout, "TLS")
    assert "does not name '127.0.0.1'" in fix_after(result.stdout, "TLS")


def test_a_wrong_token_names_where_it_came_from(gateway: Gateway) -> None:
    result = run_cli(
        "--host",
        gateway.url,
        "--ca-cert",
        gateway.ca_cert,
        "doctor",
        env={"OLLAMA_API_KEY": "nope"},
    )
    assert result.exit_code == 4
    assert "HTTP 401" in check_line(result.stdout, "API")
    assert "the API key from OLLAMA_API_KEY" in fix_after(result.stdout, "API")


def test_a_missing_prefix_suggests_the_prefixed_base_url(gateway: Gateway) -> None:
    root = gateway.url.removesuffix(PREFIX)
    result = run_cli(*gateway.args(url=root), "doctor")
    assert result.exit_code == 1
    assert 'HTTP 404 with an HTML page ("404 Not Found")' in check_line(result.stdout, "API")
    assert f"e.g. {root}/ollama-api" in fix_after(result.stdout, "API")


def test_a_gateway_that_maps_onto_api_is_diagnosed_as_a_doubled_prefix(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(url=gateway.misrouted_url), "doctor")
    assert result.exit_code == 1
    fix = fix_after(result.stdout, "API")
    assert "requests arrive as /api/api/" in fix and "forward to the server root" in fix


def test_an_html_page_where_json_was_expected(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(url=gateway.login_url), "doctor")
    assert result.exit_code == 1
    assert 'HTTP 200 with an HTML page ("Sign in")' in check_line(result.stdout, "API")
    assert "leads to a web page" in fix_after(result.stdout, "API")


def test_a_502_names_the_gateway(gateway: Gateway) -> None:
    result = run_cli(*gateway.args(url=gateway.bad_gateway_url), "--retries", "0", "doctor")
    assert result.exit_code == 1
    assert "HTTP 502 Bad Gateway" in check_line(result.stdout, "API")
    assert "the gateway cannot reach Ollama" in fix_after(result.stdout, "API")


def test_an_empty_403_suggests_the_host_header(server: OllamaTestServer) -> None:
    server.add_fault("/api/*", status=403, body="", content_type="", times=-1)
    result = run_cli("--host", server.url, "doctor")
    assert result.exit_code == 4
    assert check_line(result.stdout, "TLS").split()[:2] == ["skip", "TLS"]  # plain http
    assert "Host: localhost:11434" in fix_after(result.stdout, "API")


def test_connection_refused_fails_tcp() -> None:
    port = free_port()
    result = run_cli("--host", f"127.0.0.1:{port}", "doctor")
    assert result.exit_code == 3
    assert f"cannot connect to port {port}" in check_line(result.stdout, "TCP")
    assert "Connection refused" in check_line(result.stdout, "TCP")


def test_dns_failure_and_the_plain_http_credential_warning() -> None:
    result = run_cli("--host", "http://no-such-host.invalid", "--api-key", "k-1234", "doctor")
    assert result.exit_code == 3
    assert "'no-such-host.invalid' does not resolve" in check_line(result.stdout, "DNS")
    assert [check_line(result.stdout, n).split()[0] for n in ("TCP", "API")] == ["skip", "skip"]
    assert "credentials are sent over plain http:// to no-such-host.invalid" in result.stderr


def test_the_proxy_in_use_is_probed_and_shown_without_its_password(
    server: OllamaTestServer,
) -> None:
    port = free_port()
    proxy = {"HTTP_PROXY": f"http://proxyuser:proxy-pass-5c1@127.0.0.1:{port}"}
    result = run_cli("--host", "http://lab.example:11434", "doctor", env=proxy)
    assert f"Proxy     http://127.0.0.1:{port} (from HTTP_PROXY" in result.stdout
    assert "proxy 127.0.0.1 -> 127.0.0.1" in check_line(result.stdout, "DNS")
    assert result.exit_code == 3  # the proxy port is closed
    assert "proxy-pass-5c1" not in result.stdout + result.stderr
    bypassed = run_cli("--host", server.url, "doctor", env={**proxy, "NO_PROXY": "127.0.0.1"})
    assert bypassed.exit_code == 0, bypassed.stdout
    assert "Proxy     none: HTTP_PROXY is set, but NO_PROXY excludes this host" in bypassed.stdout


def test_sources_name_the_profile_and_the_environment(server: OllamaTestServer) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text(
        f'default_profile = "lab"\n[profiles.lab]\nhost = "{server.url}"\nread_timeout = 900\n'
    )
    result = run_cli("doctor", env={"OLLAMA_API_KEY": "env-token-1"})
    assert result.exit_code == 0, result.stdout
    out = result.stdout
    assert re.search(
        rf"\n  host +{re.escape(server.url)} +profile 'lab' \(default_profile\)\n", out
    )
    assert re.search(r"\n  read_timeout +900s +profile 'lab' \(default_profile\)\n", out)
    assert re.search(r"\n  api_key +set \(hidden\) +OLLAMA_API_KEY\n", out)
    assert re.search(r"\n  retries +2 +default\n", out)
    assert "env-token-1" not in out


def test_basic_auth_in_the_url_is_shown_without_the_password(server: OllamaTestServer) -> None:
    url = server.url.replace("http://", "http://admin:pw-canary-77@")
    result = run_cli("--host", url, "doctor")
    assert result.exit_code == 0
    assert f"{server.url} (basic auth as 'admin', password hidden)" in result.stdout
    assert "pw-canary-77" not in result.stdout + result.stderr


def test_a_broken_config_is_the_first_failure() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('default_profile = "lab"\n[profiles.lab\nhost = 1\n')
    result = run_cli("doctor")
    assert result.exit_code == 2
    line = check_line(result.stdout, "Settings")
    assert str(path) in line and "line 2" in line


def test_a_ca_bundle_that_is_not_pem_is_a_usage_error_not_a_crash(
    gateway: Gateway, tmp_path: Path
) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    result = run_cli(*gateway.args(), "--ca-cert", str(garbage), "doctor")
    assert result.exit_code == 2  # what every other command exits with
    assert f"the CA bundle {garbage} holds no PEM certificate (the CA bundle from --ca-cert)" in (
        check_line(result.stdout, "TLS")
    )
    assert "PEM certificate of the CA" in fix_after(result.stdout, "TLS")
    listing = run_cli(*gateway.args(), "--ca-cert", str(garbage), "list")
    assert listing.exit_code == 2
    assert f"the CA bundle {garbage} holds no PEM certificate" in listing.stderr
