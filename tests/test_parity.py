"""Parity with the Go `ollama` CLI: both clients against the same real server.

What a user sees must be the same: tables (columns, headers, padding, sizes, times),
`show` and each of its views, the one-line results of cp/rm, and error wording (our exit
codes may be more specific). Every comparison runs both clients within a moment; the one
field that changes by itself (a relative time crossing a unit boundary) is retried.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.backends import Backend

pytestmark = pytest.mark.real

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def go(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    assert backend.go_cli
    env = {**os.environ, "OLLAMA_HOST": backend.url}
    return subprocess.run(
        [backend.go_cli, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def ours(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OLLAMACTL_"))}
    return subprocess.run(
        [sys.executable, "-m", "ollamactl", "--host", backend.url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def same_output(
    backend: Backend, args: list[str], normalize: Callable[[str], str] = lambda text: text
) -> tuple[str, str]:
    """Run both clients (up to 3 times, for relative times that tick over) and compare stdout."""
    for _ in range(3):
        theirs, mine = go(backend, *args), ours(backend, *args)
        if normalize(theirs.stdout) == normalize(mine.stdout):
            break
    assert normalize(mine.stdout) == normalize(theirs.stdout), args
    return theirs.stdout, mine.stdout


def error_line(text: str) -> str:
    """The `Error: ...` line of a client's stderr, without spinner escape codes."""
    lines = [line for line in ANSI.sub("", text).splitlines() if line.startswith("Error:")]
    return lines[-1] if lines else ""


def sorted_parameters(text: str) -> str:
    """The server lists parameters from a Go map, in random order: compare them sorted."""
    head, found, rest = text.partition("  Parameters\n")
    if not found:
        return text
    block, blank, tail = rest.partition("\n\n")
    return head + found + "\n".join(sorted(block.splitlines())) + blank + tail


@pytest.fixture
def loaded(real_backend: Backend) -> Backend:
    """The real server with its model loaded, so that `ps` has a row."""
    assert (
        ours(real_backend, "run", real_backend.model, "").returncode == 0
        or go(real_backend, "run", real_backend.model, "").returncode == 0
    )
    return real_backend


def test_list_is_identical(real_backend: Backend) -> None:
    theirs, _ = same_output(real_backend, ["list"])
    assert theirs.startswith("NAME ")


def test_list_prefix_filter_is_identical(real_backend: Backend) -> None:
    same_output(real_backend, ["list", real_backend.model.upper()[:2]])


def test_ps_is_identical(loaded: Backend) -> None:
    theirs, _ = same_output(loaded, ["ps"])
    assert loaded.model in theirs


@pytest.mark.parametrize(
    "view", [[], ["--modelfile"], ["--parameters"], ["--template"], ["--system"], ["--license"]]
)
def test_show_views_are_identical(real_backend: Backend, view: list[str]) -> None:
    same_output(real_backend, ["show", real_backend.model, *view], normalize=sorted_parameters)


def test_show_verbose_is_identical(real_backend: Backend) -> None:
    theirs, _ = same_output(
        real_backend, ["show", "-v", real_backend.model], normalize=sorted_parameters
    )
    assert "  Metadata\n" in theirs


def test_cp_and_rm_say_the_same(real_backend: Backend) -> None:
    model = real_backend.model
    for client in (go, ours):
        copied = client(real_backend, "cp", model, "parity-copy:v1")
        assert copied.stdout == f"copied '{model}' to 'parity-copy:v1'\n"
        removed = client(real_backend, "rm", "parity-copy:v1")
        assert removed.stdout == "deleted 'parity-copy:v1'\n", removed.stderr


@pytest.mark.parametrize(
    ("args", "our_code"),
    [
        (["show", "nope-model"], 5),
        (["rm", "nope-model"], 5),
        (["cp", "nope-model", "x"], 5),
        (["stop", "nope-model"], 5),
        (["pull", "bad name!!"], 1),
    ],
)
def test_errors_have_the_same_wording(
    real_backend: Backend, args: list[str], our_code: int
) -> None:
    theirs, mine = go(real_backend, *args), ours(real_backend, *args)
    assert theirs.returncode == 1
    assert mine.returncode == our_code
    assert error_line(mine.stderr) == error_line(theirs.stderr) != ""
