"""Parity with the Go `ollama` CLI: both clients against the same real server.

What a user sees must be the same: tables (columns, headers, padding, sizes, times),
`show` and each of its views, the one-line results of cp/rm, what pull, push and create
report, the `--verbose` statistics, and error wording (our exit codes may be more specific).
Every comparison runs both clients within a moment; the one field that changes by itself (a
relative time crossing a unit boundary) is retried. Progress is compared as the distinct lines
a display showed: the Go CLI's redrawn frames without escape codes, bar glyphs and spinner
frames, against our plain lines; bars only once finished (both show partial bars at moments
of their own).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.backends import Backend
from tests.helpers import ANSI, verbose_stats

pytestmark = pytest.mark.real

BAR = re.compile("\u2595[^\u258f]*\u258f")
SPINNER = "\u280b\u2819\u2839\u2838\u283c\u2834\u2826\u2827\u2807\u280f"
UNFINISHED_BAR = re.compile(r" (?!100%)\d+% ")
GO_DURATION = r"(\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|ms|s)"
#: How the Go CLI writes each `--verbose` statistic.
STAT_VALUE = {
    "total duration:": GO_DURATION,
    "load duration:": GO_DURATION,
    "prompt eval count:": r"\d+ token\(s\)",
    "prompt eval duration:": GO_DURATION,
    "prompt eval rate:": r"\d+\.\d\d tokens/s",
    "eval count:": r"\d+ token\(s\)",
    "eval duration:": GO_DURATION,
    "eval rate:": r"\d+\.\d\d tokens/s",
}


def _client_run(
    argv: list[str], env: dict[str, str], cwd: Path | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL, cwd=cwd
    )


def go(backend: Backend, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The Go `ollama` CLI against the backend."""
    assert backend.go_cli
    return _client_run([backend.go_cli, *args], {**os.environ, "OLLAMA_HOST": backend.url}, cwd)


def ours(backend: Backend, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """ollamactl against the backend, with none of the user's Ollama settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OLLAMACTL_"))}
    argv = [sys.executable, "-m", "ollamactl", "--host", backend.url, *args]
    return _client_run(argv, env, cwd)


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


def progress_lines(stderr: str) -> list[str]:
    """The distinct status lines and finished bars a progress display showed, in order."""
    lines: list[str] = []
    for raw in ANSI.sub("\n", stderr).replace("\r", "\n").splitlines():  # cursor moves: new lines
        line = " ".join(BAR.sub(" ", raw).strip(SPINNER + " ").split())
        if line and not UNFINISHED_BAR.search(line + " ") and line not in lines:
            lines.append(line)
    return lines


def sorted_parameters(text: str) -> str:
    """The server lists parameters from a Go map, in random order: compare them sorted.

    Sorted in place: the rows of the `Parameters` section of `show`, and the PARAMETER lines
    of `show --modelfile`.
    """
    head, found, rest = text.partition("  Parameters\n")
    if found:
        block, blank, tail = rest.partition("\n\n")
        return head + found + "\n".join(sorted(block.splitlines())) + blank + tail
    lines = text.splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith("PARAMETER ")]
    for i, line in zip(at, sorted(lines[i] for i in at)):
        lines[i] = line
    return "".join(lines)


def sorted_lines(text: str) -> str:
    """`show --parameters` is all parameters, in random order."""
    return "".join(sorted(text.splitlines(keepends=True)))


@pytest.fixture
def short_model(real_backend: Backend, tmp_path: Path) -> str:
    """A copy of the real model whose answers stop after 16 tokens (deleted after the test)."""
    name = real_backend.unique_name("parity-short")
    (tmp_path / "Modelfile").write_text(f"FROM {real_backend.model}\nPARAMETER num_predict 16\n")
    created = ours(real_backend, "create", name, "--progress", "none", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    return name


@pytest.fixture
def loaded(real_backend: Backend) -> str:
    """The real model, loaded (an empty prompt generates nothing), so that `ps` has a row."""
    loading = ours(real_backend, "run", real_backend.model, "")
    assert loading.returncode == 0, loading.stderr
    running = ours(real_backend, "ps", "-q")
    assert running.returncode == 0, running.stderr
    name = real_backend.model if ":" in real_backend.model else real_backend.model + ":latest"
    assert name in running.stdout.split()
    return name


def test_list_is_identical(real_backend: Backend) -> None:
    theirs, _ = same_output(real_backend, ["list"])
    assert theirs.startswith("NAME ")


def test_list_prefix_filter_is_identical(real_backend: Backend) -> None:
    same_output(real_backend, ["list", real_backend.model.upper()[:2]])


def test_ps_is_identical(real_backend: Backend, loaded: str) -> None:
    theirs, _ = same_output(real_backend, ["ps"])
    assert loaded in theirs


@pytest.mark.parametrize(
    "view", [[], ["--modelfile"], ["--parameters"], ["--template"], ["--system"], ["--license"]]
)
def test_show_views_are_identical(real_backend: Backend, view: list[str]) -> None:
    normalize = sorted_lines if view == ["--parameters"] else sorted_parameters
    theirs, _ = same_output(real_backend, ["show", real_backend.model, *view], normalize=normalize)
    if view in ([], ["--modelfile"], ["--parameters"]):
        assert "temperature" in theirs, "the parameters are compared"


def test_show_verbose_is_identical(real_backend: Backend) -> None:
    theirs, _ = same_output(
        real_backend, ["show", "-v", real_backend.model], normalize=sorted_parameters
    )
    assert "  Metadata\n" in theirs


def test_cp_and_rm_say_the_same(real_backend: Backend) -> None:
    model, copy = real_backend.model, real_backend.unique_name("parity-copy")
    for client in (go, ours):
        copied = client(real_backend, "cp", model, copy)
        assert copied.stdout == f"copied '{model}' to '{copy}'\n"
        removed = client(real_backend, "rm", copy)
        assert removed.stdout == f"deleted '{copy}'\n", removed.stderr


@pytest.mark.parametrize(
    ("args", "our_code"),
    [
        (["show", "nope-model"], 5),
        (["rm", "nope-model"], 5),
        (["cp", "nope-model", "x"], 5),
        (["stop", "nope-model"], 5),
        (["push", "--insecure", "nope-model"], 5),
        (["pull", "--insecure", "{registry}/library/{model}:nosuchtag"], 5),
        (["run", "--insecure", "{registry}/library/nope-model", "hi"], 5),
        (["show", "bad!!name"], 1),
        (["rm", "bad!!name"], 1),
        (["cp", "bad!!name", "x"], 1),
        (["cp", "{model}", "bad!!name"], 1),
        (["stop", "bad!!name"], 5),
        (["pull", "bad name!!"], 1),
        (["run", "bad!!name", "hi"], 1),
    ],
)
def test_errors_have_the_same_wording(
    real_backend: Backend, args: list[str], our_code: int
) -> None:
    names = {"registry": real_backend.registry, "model": real_backend.model}
    args = [arg.format(**names) for arg in args]
    theirs, mine = go(real_backend, *args), ours(real_backend, *args)
    assert theirs.returncode == 1
    assert mine.returncode == our_code
    assert error_line(mine.stderr) == error_line(theirs.stderr) != ""


def forget(backend: Backend, model: str) -> None:
    """Remove a model one of the clients made, so that the other starts from the same state."""
    ours(backend, "rm", model)
    assert ours(backend, "exists", model).returncode == 5


@pytest.mark.parametrize("which", ["new", "present"])
def test_pull_says_the_same(real_backend: Backend, which: str) -> None:
    """A model whose layers are downloaded, and one whose layers the server has already."""
    # the script pushes the model to the registry as library/<model> (its layers are local)
    present = f"{real_backend.registry}/library/{real_backend.model}:latest"
    model = real_backend.pullable_model if which == "new" else present
    real_backend.created.append(model)
    theirs = go(real_backend, "pull", "--insecure", model)
    forget(real_backend, model)
    mine = ours(real_backend, "pull", "--insecure", "--progress", "plain", model)
    forget(real_backend, model)
    assert (theirs.returncode, mine.returncode) == (0, 0), mine.stderr
    assert "\x1b" not in mine.stderr
    assert progress_lines(mine.stderr) == progress_lines(theirs.stderr)
    assert progress_lines(mine.stderr)[-3:] == [
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ]
    assert theirs.stdout == mine.stdout == ""


def test_push_says_the_same(real_backend: Backend) -> None:
    name = real_backend.unique_name("parity-push", in_registry=True)
    said = {}
    for client, args in ((go, []), (ours, ["--progress", "plain"])):
        assert ours(real_backend, "cp", real_backend.model, name).returncode == 0
        said[client] = client(real_backend, "push", "--insecure", name, *args)
        forget(real_backend, name)
    theirs, mine = said[go], said[ours]
    assert (theirs.returncode, mine.returncode) == (0, 0), mine.stderr
    # on purpose: only the location on stdout; its heading goes to stderr with the progress
    assert theirs.stdout == f"\nYou can find your model at:\n\n\t{name}\n"
    assert mine.stdout == f"{name}\n"
    assert progress_lines(mine.stderr) == [
        *progress_lines(theirs.stderr),
        "You can find your model at:",
    ]


def test_create_says_the_same(real_backend: Backend, tmp_path: Path) -> None:
    """The server's lines are the same; the client's own lines name the file (on purpose)."""
    (tmp_path / "Modelfile").write_text(
        f"FROM {real_backend.gguf}\nPARAMETER num_predict 16\nSYSTEM You are terse.\n"
    )
    name = real_backend.unique_name("parity-create")
    said = {}
    for client, args in ((go, []), (ours, ["--progress", "plain"])):
        said[client] = client(real_backend, "create", name, *args, cwd=tmp_path)
        forget(real_backend, name)
    theirs, mine = (progress_lines(said[client].stderr) for client in (go, ours))
    assert (said[go].returncode, said[ours].returncode) == (0, 0), said[ours].stderr
    digest = "sha256:" + hashlib.sha256(real_backend.gguf.read_bytes()).hexdigest()
    assert theirs[:2] == ["gathering model components", f"copying file {digest} 100%"]
    assert mine[:3] == [
        "gathering model components",
        f"hashing {real_backend.gguf.name} 100% 605 KB",
        f"copying file {real_backend.gguf.name} 100% 605 KB",
    ]
    assert mine[3:] == theirs[2:]
    assert mine[-2:] == ["writing manifest", "success"]


def test_run_prints_the_answer_and_the_same_statistics(
    real_backend: Backend, short_model: str
) -> None:
    theirs = go(real_backend, "run", "--verbose", short_model, "Why is the sky blue?")
    mine = ours(real_backend, "run", "--verbose", short_model, "Why is the sky blue?")
    assert (theirs.returncode, mine.returncode) == (0, 0), mine.stderr
    assert theirs.stdout.endswith("\n\n") and mine.stdout.endswith("\n\n")
    assert [label for label, _ in verbose_stats(mine.stderr)] == [
        label for label, _ in verbose_stats(theirs.stderr)
    ]
    assert (
        dict(verbose_stats(mine.stderr))["prompt eval count:"]
        == dict(verbose_stats(theirs.stderr))["prompt eval count:"]
    ), "the same prompt reaches the model"
    for (label, value), (_, their_value) in zip(
        verbose_stats(mine.stderr), verbose_stats(theirs.stderr)
    ):
        assert re.fullmatch(STAT_VALUE[label], value), (label, value)
        assert re.fullmatch(STAT_VALUE[label], their_value), (label, their_value)
    evaluated = int(dict(verbose_stats(mine.stderr))["eval count:"].split()[0])
    assert 1 <= evaluated <= 16, "num_predict 16 applies (a random model may stop sooner)"


def test_run_format_json_prints_json_then_a_blank_line(real_backend: Backend) -> None:
    args = ["run", "--format", "json", real_backend.model, "A color as JSON"]
    for result in (go(real_backend, *args), ours(real_backend, *args)):
        assert result.returncode == 0
        assert result.stdout.endswith("}\n\n")
        assert isinstance(json.loads(result.stdout), dict)


def test_version_says_the_same(real_backend: Backend) -> None:
    theirs, mine = go(real_backend, "--version"), ours(real_backend, "version")
    assert mine.stdout.splitlines()[0] == theirs.stdout.splitlines()[0]
    assert mine.stdout.splitlines()[1].startswith("ollamactl version is ")
