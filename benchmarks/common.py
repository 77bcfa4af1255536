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


def run_once(command: Sequence[str], env: dict[str, str], stdout: int | None = None) -> Run:
    """Run a command to completion and measure it with ``os.wait4`` (its own rusage)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


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
