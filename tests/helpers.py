"""Helpers shared by the test modules: running the CLI, seeding the fake server, terminals.

Import them from here (``from tests.helpers import on, run_cli``); fixtures live in
conftest.py, the fake Ollama in tests/fake_ollama/.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from contextlib import closing
from typing import Any, Callable

import pexpect
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from ollamactl.cli import cli
from tests.fake_ollama import OllamaTestServer

WAIT_SECONDS = 10.0
#: Set by CI (.ci/run): a test whose program (nginx, zsh, a real Ollama) is missing fails there
#: instead of skipping. Read at import: the ``isolated_env`` fixture hides OLLAMACTL_* variables.
STRICT = bool(os.environ.get("OLLAMACTL_TEST_STRICT"))
#: A terminal escape sequence (CSI: colours, cursor movement, erasing).
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: The smallest file that ollamactl takes for a PNG image (the signature, then anything).
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
#: nginx's own 502 page, as a gateway in front of a stopped Ollama answers.
NGINX_502 = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
#: The exit codes ollamactl documents (130, for Ctrl-C, only where a test interrupts).
DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5}
#: Hypothesis settings of every property test: the same examples in every run (CI never flakes
#: on a new one), no example database, no time limit per example.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def seed(server: OllamaTestServer) -> OllamaTestServer:
    """Give a test server the models most tests expect."""
    server.add_model("tiny:latest", size=605_814, parameter_size="148K")
    server.add_model(
        "gemma3:12b",
        size=8_149_190_253,
        family="gemma3",
        parameter_size="12.2B",
        quantization_level="Q4_K_M",
        capabilities=["completion", "vision"],
    )
    server.add_model(
        "nomic-embed-text:latest",
        size=274_302_450,
        family="nomic-bert",
        parameter_size="137M",
        quantization_level="F16",
        capabilities=["embedding"],
    )
    return server


def cli_runner() -> CliRunner:
    """A CliRunner that keeps stderr apart from stdout (click 8.1, for Python 3.9, mixes them)."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2: always separate
        return CliRunner()


def run_cli(
    *args: str, input: str | None = None, env: dict[str, str] | None = None, **kwargs: Any
) -> Result:
    """Run the real CLI in-process; stdout and stderr stay separate."""
    return cli_runner().invoke(
        cli,
        list(args),
        input=input,
        env=env,
        prog_name="ollamactl",
        catch_exceptions=False,
        **kwargs,
    )


def on(
    server: OllamaTestServer,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """Run the CLI against ``server``; off a terminal, nothing may write escape codes."""
    result = run_cli("--host", server.url, *args, input=input, env=env)
    assert "\x1b" not in result.stdout + result.stderr, "escape codes off a terminal"
    return result


def require_program(found: object, reason: str) -> None:
    """Skip the test when a program it drives is missing (``found`` is falsy); fail if STRICT."""
    if found:
        return
    if STRICT:
        pytest.fail(f"{reason}; OLLAMACTL_TEST_STRICT is set, so this is a failure")
    pytest.skip(reason)


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    """Poll ``condition`` until it holds; fail the test if it still does not after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {timeout:g}s: {condition}")
        time.sleep(0.02)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dead_url() -> str:
    """The URL of a port on 127.0.0.1 where nothing listens (connections are refused)."""
    return f"http://127.0.0.1:{free_port()}"


def spawn(
    server: OllamaTestServer, *args: str, dimensions: tuple[int, int] = (24, 100), **env: str
) -> pexpect.spawn:
    """Start ``python -m ollamactl --host SERVER ARGS`` in a pseudo-terminal (an xterm)."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "ollamactl", "--host", server.url, *args],
        env={**os.environ, "TERM": "xterm", **env},
        encoding="utf-8",
        timeout=10,
        dimensions=dimensions,
    )


#: What a terminal receives, in the pieces ``screen`` tells apart.
_SCREEN_PIECES = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z]|\r\n|\r|\n)")


def screen(output: str) -> list[str]:
    """The lines a terminal shows for ``output`` (a pseudo-terminal's bytes, decoded).

    Line ends, carriage returns, the cursor moving up, down, left and right, and erasing to
    the end of the line are followed; other escape codes (colours, modes) change nothing.
    The terminal has no width: nothing wraps.
    """
    lines, row, column = [""], 0, 0
    for piece in filter(None, _SCREEN_PIECES.split(output)):
        move = re.fullmatch(r"\x1b\[(\d*)([ABCDK])", piece)
        if piece in ("\r\n", "\n"):
            row, column = row + 1, 0
            lines += [""] * (row + 1 - len(lines))
        elif piece == "\r":
            column = 0
        elif move:
            count, kind = int(move.group(1) or 1), move.group(2)
            if kind == "K":
                lines[row] = lines[row][:column]
            elif kind in "AB":
                row = max(row - count, 0) if kind == "A" else row + count
                lines += [""] * (row + 1 - len(lines))
            else:
                column = column + count if kind == "C" else max(column - count, 0)
        elif not piece.startswith("\x1b"):
            line = lines[row].ljust(column)
            lines[row] = line[:column] + piece + line[column + len(piece) :]
            column += len(piece)
    return lines


def saved_chats() -> list[dict[str, Any]]:
    """The conversations ``chat`` saved (in the test's data dir), oldest file name first."""
    from ollamactl.conversations import data_dir

    folder = data_dir() / "chats"
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def verbose_stats(stderr: str) -> list[tuple[str, str]]:
    """The ``--verbose`` statistics block, as (label, value) pairs, in order.

    Escape sequences and carriage returns become line breaks and spinner frames are dropped:
    the Go CLI's spinner, erased before the block, leaves no residue.
    """
    text = ANSI.sub("\n", stderr).replace("\r", "\n")
    return re.findall(r"^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ]*([a-z ]+:) +(\S.*)$", text, re.MULTILINE)
