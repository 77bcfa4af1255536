"""Helpers shared by the benchmark scripts: a local server process, timed child processes."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = ROOT / "tests" / "ollama_server.py"


def ollamactl_command() -> list[str]:
    """How the console script starts ollamactl, bound to this checkout (whatever is installed)."""
    return [sys.executable, "-c", "from ollamactl.cli import main; main()"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus the user's Ollama settings, importing this checkout, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OLLAMACTL_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@contextmanager
def local_server(*args: str) -> Iterator[str]:
    """Run tests/ollama_server.py in a child process on 127.0.0.1; yield its base URL."""
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", "0", "--lifetime", "900", *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the test server did not start: {line!r}")
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Run:
    """One child process: wall time (s), peak resident memory (MiB), CPU time (s)."""

    seconds: float
    max_rss_mib: float
    cpu_seconds: float


#: Measures a command's peak memory from a small process of its own. A child's ru_maxrss
#: starts at the size of the process that forked it (Linux counts the parent's pages at
#: fork and at exec), so forking from this benchmark, which has imported the client and
#: tqdm, would report at least this benchmark's own size.
RSS_PROBE = """
import os, sys
out = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(out if out >= 0 else null, 1)
    os.dup2(null, 2)
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_mib(command: Sequence[str], env: dict[str, str], stdout: int | None = None) -> float:
    """The peak resident memory of one run of ``command``, in MiB (see RSS_PROBE)."""
    probe = [sys.executable, "-c", RSS_PROBE, str(-1 if stdout is None else stdout), *command]
    done = subprocess.run(
        probe, env=env, capture_output=True, text=True, check=True, pass_fds=_fds(stdout)
    )
    code, kib = map(int, done.stdout.split())
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} exited {code}")
    return kib / 1024


def _fds(stdout: int | None) -> tuple[int, ...]:
    return () if stdout is None else (stdout,)


def run_once(command: Sequence[str], env: dict[str, str], stdout: int | None = None) -> Run:
    """Run a command to completion: wall and CPU time (``os.wait4``), and peak memory."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return Run(seconds, peak_rss_mib(command, env, stdout), usage.ru_utime + usage.ru_stime)


def median_run(
    command: Sequence[str], env: dict[str, str], runs: int, stdout: int | None = None
) -> Run:
    """Median wall time, CPU time and peak memory over ``runs`` runs (after one warm-up)."""
    run_once(command, env, stdout)
    samples = [run_once(command, env, stdout) for _ in range(runs)]
    return Run(
        statistics.median(s.seconds for s in samples),
        max(s.max_rss_mib for s in samples),
        statistics.median(s.cpu_seconds for s in samples),
    )


@dataclass
class Row:
    """One line of the report: a figure, what it is compared with, and the verdict."""

    what: str
    figure: str
    baseline: str
    ratio: float | None
    limit: str
    ok: bool


def ratio_row(what: str, seconds: float, base: float, base_name: str, limit: float) -> Row:
    """A timing compared with its baseline, within ``limit`` times it."""
    ratio = seconds / base
    return Row(
        what,
        f"{seconds * 1000:.1f} ms",
        f"{base * 1000:.1f} ms ({base_name})",
        ratio,
        f"<= {limit:g}x",
        ratio <= limit,
    )
