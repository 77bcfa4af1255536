"""Helpers shared by the benchmark scripts: a local server process, timed child processes."""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ollamactl_command(python: Sequence[str] = (sys.executable,)) -> list[str]:
    """How the console script starts ollamactl, bound to this checkout (whatever is installed)."""
    return [*python, "-c", "from ollamactl.cli import main; main()"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus the user's Ollama settings, importing this checkout, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OLLAMACTL_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@contextmanager
def local_server(*args: str) -> Iterator[str]:
    """Run the fake Ollama (tests/fake_ollama) in a child process on 127.0.0.1; yield its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_ollama", "--port", "0", "--lifetime", "900", *args],
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
class Timing:
    """One run of a child process: wall time and CPU time (user + system), in seconds."""

    seconds: float
    cpu_seconds: float


@dataclass
class Run:
    """A command's figures: wall time (s), peak resident memory (MiB), CPU time (s)."""

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


@dataclass(frozen=True)
class Job:
    """A command to measure: its arguments, environment, and the file its stdout goes to."""

    command: Sequence[str]
    env: dict[str, str]
    output: Path | None = None  # None: /dev/null

    def time(self) -> Timing:
        """Run to completion; wall and CPU time from ``os.wait4`` (all threads of the child)."""
        with self._stdout() as stdout, tempfile.TemporaryFile() as stderr:
            started = time.perf_counter()
            process = subprocess.Popen(self.command, env=self.env, stdout=stdout, stderr=stderr)
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode != 0:
                stderr.seek(0)
                self._check(process.returncode, stderr.read()[-2000:].decode(errors="replace"))
        return Timing(seconds, usage.ru_utime + usage.ru_stime)

    def peak_rss_mib(self) -> float:
        """The peak resident memory of one run, in MiB (see RSS_PROBE)."""
        with self._stdout() as stdout:
            fd = -1 if stdout == subprocess.DEVNULL else stdout
            probe = [sys.executable, "-c", RSS_PROBE, str(fd), *self.command]
            pass_fds = () if fd < 0 else (fd,)
            done = subprocess.run(
                probe, env=self.env, capture_output=True, text=True, check=True, pass_fds=pass_fds
            )
        code, kib = map(int, done.stdout.split())
        self._check(code)
        return kib / 1024

    @contextmanager
    def _stdout(self) -> Iterator[int]:
        """A file descriptor for the child's stdout: ``output``, truncated, or /dev/null."""
        if self.output is None:
            yield subprocess.DEVNULL
            return
        with self.output.open("wb") as out:
            yield out.fileno()

    def _check(self, code: int, errors: str = "") -> None:
        if code != 0:
            raise RuntimeError(f"{shlex.join(self.command)} exited {code}\n{errors}")


def sample(jobs: Mapping[str, Job], runs: int) -> dict[str, list[Timing]]:
    """``runs`` timings of every job, after one warm-up round.

    The jobs take turns (each round runs every job once), so a command and its baseline see
    the same load from whatever else runs on the machine.
    """
    timings: dict[str, list[Timing]] = {name: [] for name in jobs}
    for round_number in range(runs + 1):
        for name, job in jobs.items():
            timing = job.time()
            if round_number:
                timings[name].append(timing)
    return timings


def fastest(timings: list[Timing]) -> Timing:
    """The least wall and the least CPU time: the figures least disturbed by other processes."""
    return Timing(min(t.seconds for t in timings), min(t.cpu_seconds for t in timings))


def median(timings: list[Timing]) -> Timing:
    """The median wall and CPU time."""
    return Timing(
        statistics.median(t.seconds for t in timings),
        statistics.median(t.cpu_seconds for t in timings),
    )


@dataclass
class Row:
    """One line of the report: a figure, what it is compared with, and the verdict."""

    what: str
    figure: str
    baseline: str
    ratio: float | None
    limit: str
    ok: bool | None  # None: reported, not judged


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


def comparison_rows(what: str, ours: Run, theirs: Run, name: str) -> list[Row]:
    """Wall time, CPU time and peak memory next to another client's (reported, not judged)."""
    return [
        Row(
            f"{what}, {figure}",
            f"{mine:.1f} {unit}",
            f"{other:.1f} {unit} ({name})",
            mine / other,
            "reported",
            None,
        )
        for figure, mine, other, unit in (
            ("wall", ours.seconds * 1000, theirs.seconds * 1000, "ms"),
            ("CPU", ours.cpu_seconds * 1000, theirs.cpu_seconds * 1000, "ms"),
            ("peak RSS", ours.max_rss_mib, theirs.max_rss_mib, "MiB"),
        )
    ]
