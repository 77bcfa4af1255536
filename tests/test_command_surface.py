"""The commands as a person meets them: help, a bare call, exit codes, fix texts, side by side
with the Go CLI where it has the same thing (help, create's Modelfile and progress).

The real-tier tests compare with the Go `ollama` CLI of the real server (``real_backend``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import Backend
from tests.fake_ollama import OllamaTestServer
from tests.gateway import Gateway
from tests.helpers import dead_url, on, run_cli
from tests.test_doctor import check_line, fix_after
from tests.test_parity import forget, go, ours

ROOT_HELP = run_cli("--help").stdout


# -- help and a bare call -------------------------------------------------------------------


def test_a_bare_call_prints_the_help_and_exits_0() -> None:
    """As `ollama` with no arguments (exit 0); the help goes to stdout, as --help's does."""
    result = run_cli()
    assert (result.exit_code, result.stdout, result.stderr) == (0, ROOT_HELP, "")


@pytest.mark.parametrize(
    "command",
    [[], ["list"], ["ls"], ["chat"], ["chat", "show"], ["config", "profile", "add"], ["help"]],
)
def test_help_command_prints_what_dash_dash_help_prints(command: list[str]) -> None:
    result = run_cli("help", *command)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == run_cli(*command, "--help").stdout


def test_the_root_help_lists_help_as_a_command() -> None:
    assert "  help  " in ROOT_HELP


@pytest.mark.parametrize("topic", [["nosuch"], ["list", "extra"], ["version", "x"]])
def test_help_on_an_unknown_topic_is_a_usage_error(topic: list[str]) -> None:
    result = run_cli("help", *topic)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        f"Error: unknown help topic {' '.join(topic)!r} (`ollamactl help` lists the commands)\n"
    )


# -- exists: the exit code is the answer ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["tiny"], 0, "tiny is on the server\n"),
        (["nosuch"], 5, "nosuch is not on the server\n"),
        (["bad name!"], 1, "Error: invalid model name\n"),
    ],
)
def test_exists_prints_nothing_but_says_it_with_verbose(
    server: OllamaTestServer, args: list[str], code: int, said: str
) -> None:
    quiet = on(server, "exists", *args)
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (code, "", "")
    verbose = on(server, "exists", "-v", *args)
    assert (verbose.exit_code, verbose.stdout, verbose.stderr) == (code, "", said)


def test_exists_without_a_server_is_exit_3_and_silent() -> None:
    url = dead_url()
    quiet = run_cli("--host", url, "exists", "tiny")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (3, "", "")
    verbose = run_cli("--host", url, "exists", "--verbose", "tiny")
    assert verbose.exit_code == 3
    assert verbose.stderr.startswith(f"Error: could not connect to {url}")


# -- doctor's fixes and the CA bundle -------------------------------------------------------


def test_doctors_fix_does_not_send_the_user_to_doctor(server: OllamaTestServer) -> None:
    wrong_prefix = server.url + "/ollama-api"
    listing = run_cli("--host", wrong_prefix, "list")
    assert "(`ollamactl doctor` checks it)" in listing.stderr  # elsewhere it does
    report = run_cli("--host", wrong_prefix, "doctor")
    assert report.exit_code == 1
    fix = fix_after(report.stdout, "API")
    assert fix.strip().startswith("fix: is the base URL right?") and "doctor" not in fix


#: Whether TLS contexts trust a chain that ends at a certificate of the bundle which is no CA
#: (Python >= 3.13 sets VERIFY_X509_PARTIAL_CHAIN by default, and urllib3 follows it).
PARTIAL_CHAINS_TRUSTED = sys.version_info >= (3, 13)


@pytest.mark.parametrize(
    ("bundle", "problem"),
    [
        ("server_key", "is a private key, not a CA certificate"),
        (
            "server_cert",
            "holds no CA certificate, only the certificate of '127.0.0.1'"
            " that 'ollamactl test CA' issued",
        ),
    ],
)
def test_a_ca_cert_that_is_no_ca_says_what_the_file_is(
    gateway: Gateway, bundle: str, problem: str
) -> None:
    path = getattr(gateway.certs, bundle)
    listing = run_cli(*gateway.args(), "--ca-cert", str(path), "list")
    if bundle == "server_cert" and PARTIAL_CHAINS_TRUSTED:
        # Python 3.13 (and urllib3 with it) trusts a partial chain: the server's own
        # certificate pins it, so there is nothing to diagnose
        assert listing.exit_code == 0
        return
    assert listing.exit_code == 2
    assert listing.stderr == (
        f"Error: the CA bundle {path} {problem} (--ca-cert, OLLAMACTL_CA_CERT or a profile's"
        " ca_cert takes the PEM certificate of the CA that signed the server's certificate)\n"
    )
    report = run_cli(*gateway.args(), "--ca-cert", str(path), "doctor")
    assert report.exit_code == 2
    assert f"{path} {problem} (the CA bundle from --ca-cert)" in check_line(report.stdout, "TLS")
    assert run_cli(*gateway.args(), "--ca-cert", str(gateway.certs.ca), "list").exit_code == 0


def test_a_ca_bundle_in_der_form_is_named_so(gateway: Gateway, tmp_path: Path) -> None:
    import ssl

    der = tmp_path / "ca.der"
    der.write_bytes(ssl.PEM_cert_to_DER_cert(gateway.certs.ca.read_text()))
    listing = run_cli(*gateway.args(), "--ca-cert", str(der), "list")
    assert listing.exit_code == 2
    assert f"the CA bundle {der} is in DER (binary) form, not PEM" in listing.stderr


# -- create: the Modelfile as the Go CLI reads it, its progress, the server's version -------


def dry_run(tmp_path: Path, text: bytes, *args: str) -> dict[str, object]:
    modelfile = tmp_path / "Modelfile"
    modelfile.write_bytes(text)
    result = run_cli("create", "m", "-f", str(modelfile), "--dry-run", *args)
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_a_crlf_modelfile_keeps_crlf_inside_values_over_several_lines(tmp_path: Path) -> None:
    """Go's parser: line ends inside an open quote are the value's, a one-line value ends at CR."""
    body = dry_run(
        tmp_path,
        b'FROM tiny\r\nSYSTEM """line one\r\nline two"""\r\nTEMPLATE one line\r\n'
        b'LICENSE "a\rb"\r\nPARAMETER stop x\r\n',
    )
    assert body["system"] == "line one\r\nline two"
    assert body["template"] == "one line"
    assert body["license"] == ["a\rb"]
    assert body["parameters"] == {"stop": ["x"]}


def test_an_error_in_a_crlf_modelfile_names_the_line_as_an_editor_counts_it(
    tmp_path: Path,
) -> None:
    modelfile = tmp_path / "Modelfile"
    modelfile.write_bytes(b'FROM tiny\r\nSYSTEM """a\r\nb"""\r\nBOGUS x\r\n')
    result = run_cli("create", "m", "-f", str(modelfile))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {modelfile}:4:1: unknown command 'BOGUS'")


def test_create_from_a_model_says_gathering_model_components(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    (tmp_path / "Modelfile").write_text("FROM tiny\nSYSTEM Be brief.\n")
    result = on(server, "create", "brief", "-f", str(tmp_path / "Modelfile"), "--progress", "plain")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "gathering model components" and lines[-1] == "success"


@pytest.mark.parametrize(
    ("version", "lines", "refused"),
    [
        ("0.9.3", "RENDERER qwen3\nPARSER qwen3\n", "RENDERER and PARSER"),
        ("0.11.10", "REQUIRES 0.12.0\n", "REQUIRES"),
        ("0.12.0", "RENDERER qwen3\nREQUIRES 0.14.0\n", "REQUIRES"),
        ("0.29.1", "DRAFT ./draft.gguf\n", "DRAFT"),
    ],
)
def test_create_refuses_commands_the_servers_version_would_drop(
    server: OllamaTestServer, tmp_path: Path, version: str, lines: str, refused: str
) -> None:
    server.version = version
    (tmp_path / "draft.gguf").write_bytes(b"GGUF")
    (tmp_path / "Modelfile").write_text("FROM tiny\n" + lines)
    result = on(server, "create", "new", "-f", str(tmp_path / "Modelfile"))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: the server (Ollama {version}) does not know {refused}:"
        " it would create the model without it (Ollama "
    )
    assert not [r for r in server.requests if r.path.startswith(("/api/create", "/api/blobs"))]


@pytest.mark.parametrize("version", ["0.14.0", "0.0.0", "unknown"])
def test_create_sends_what_the_server_knows(
    server: OllamaTestServer, tmp_path: Path, version: str
) -> None:
    """0.0.0 is a development build and a version that does not parse says nothing."""
    server.version = version
    (tmp_path / "Modelfile").write_text("FROM tiny\nRENDERER qwen3\nREQUIRES 0.14.0\n")
    result = on(server, "create", "new", "-f", str(tmp_path / "Modelfile"))
    assert result.exit_code == 0, result.stderr
    created = [r for r in server.requests if r.path == "/api/create"]
    assert created[-1].json["renderer"] == "qwen3"


def test_a_dry_run_does_not_ask_the_servers_version(tmp_path: Path) -> None:
    body = dry_run(tmp_path, b"FROM tiny\nRENDERER qwen3\n", "--progress", "none")
    assert body["renderer"] == "qwen3"


# -- side by side with the Go CLI -------------------------------------------------------------


@pytest.mark.real
def test_a_crlf_modelfile_makes_the_same_model_as_the_go_cli(
    real_backend: Backend, tmp_path: Path
) -> None:
    (tmp_path / "Modelfile").write_bytes(
        f"FROM {real_backend.model}\r\n".encode()
        + b'SYSTEM """line one\r\nline two"""\r\nLICENSE """a\r\nb"""\r\nPARAMETER stop "<x>"\r\n'
    )
    shown = {}
    for client in (go, ours):
        name = real_backend.unique_name("parity-crlf")
        made = client(real_backend, "create", name, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        assert "gathering model components" in made.stderr
        shown[client] = ours(real_backend, "show", name, "--json")
        forget(real_backend, name)
    theirs, mine = (json.loads(shown[client].stdout) for client in (go, ours))
    assert mine["system"] == theirs["system"] == "line one\r\nline two"
    assert mine["license"] == theirs["license"] and mine["template"] == theirs["template"]
    in_any_order = [sorted(str(model.get("parameters")).splitlines()) for model in (mine, theirs)]
    assert in_any_order[0] == in_any_order[1]


@pytest.mark.real
@pytest.mark.parametrize("args", [[], ["help"], ["help", "list"]])
def test_help_and_a_bare_call_exit_0_as_with_the_go_cli(
    real_backend: Backend, args: list[str]
) -> None:
    """Without --host too: the Go CLI has no such option, so the call is really bare."""
    theirs = go(real_backend, *args)
    mine = subprocess.run(
        [sys.executable, "-m", "ollamactl", *args], capture_output=True, text=True, timeout=60
    )
    assert (theirs.returncode, mine.returncode) == (0, 0)
    assert mine.stdout.startswith("Usage: ollamactl") and not mine.stderr
