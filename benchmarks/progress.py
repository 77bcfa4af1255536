"""CPU cost of drawing pull progress, as a ratio to merely consuming the same event stream.

Runs the fake Ollama (tests/fake_ollama) in a child process, so only the client's CPU is
measured, with registry models whose pulls send 10,000 progress events each. For every mode it
pulls a fresh model through the real CLI (``ollamactl pull --progress MODE``; the tty mode
draws into a pseudo-terminal) and reads the process CPU time; the baseline iterates
``Client.pull`` and draws nothing. A second row per mode feeds the already decoded events to
the display alone. Several runs per mode, medians reported.

Target: a pull with terminal bars costs at most 2x the CPU of consuming its stream. Consuming
already costs an HTTP chunk read and a JSON decode per event; bars redrawn at most 10 times a
second must stay well below that, so a fast pull never competes with the server for a core.
plain and json (for logs and scripts; json writes every event) may cost up to 3x. The exit
status is 1 when a mode is above its limit. Measured on the development machine (10,004
events, 5-7 runs, several repetitions): consume 38-58 ms; tty 0.9-1.35x end to end, drawing
alone 10-11 ms (about 1 us an event, 0.2-0.27x); plain 0.9-1.3x; json 1.2-1.8x. Without
the redraw throttle (tqdm mininterval=0) drawing alone costs about 50 times more.

    python benchmarks/progress.py [--runs 5] [--events 10000]
"""

from __future__ import annotations

import argparse
import fcntl
import io
import os
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from contextlib import redirect_stderr
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import Row  # noqa: E402
from ollamactl.cli import cli  # noqa: E402
from ollamactl.client import Client  # noqa: E402
from ollamactl.config import Flags, resolve  # noqa: E402
from ollamactl.progress import open_progress  # noqa: E402

LAYERS = 4
LIMITS = {"none": 2.0, "tty": 2.0, "plain": 3.0, "json": 3.0}

SERVER = """
import sys, time
sys.path.insert(0, {root!r})
from tests.fake_ollama import OllamaTestServer
server = OllamaTestServer(lifetime=600)
for i in range({models}):
    server.add_registry_model(f"bench{{i}}:latest", [2_000_000_000 + i, 7_700, 1_400, 96])
server.pull_steps = {steps}
server.start()
print("READY", server.url, flush=True)
server.wait_until_stopped()
"""


def start_server(models: int, steps: int) -> tuple[subprocess.Popen[str], str]:
    """The test server in a child process; returns it and its URL."""
    code = SERVER.format(root=str(ROOT), models=models, steps=steps)
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=str(ROOT)
    )
    assert child.stdout is not None
    line = child.stdout.readline().split()
    if not line or line[0] != "READY":
        child.kill()
        raise SystemExit("the test server did not start")
    return child, line[1]


def cpu_seconds(action: Callable[[], object]) -> float:
    """Process CPU time (user + system, all threads) spent in ``action``."""
    start = time.process_time()
    action()
    return time.process_time() - start


class Names:
    """A fresh registry model for each pull (a pulled model would resend only 4 events)."""

    def __init__(self) -> None:
        self.next = 0

    def __call__(self) -> str:
        self.next += 1
        return f"bench{self.next - 1}"


def consume(url: str, name: str) -> int:
    """The baseline: read and decode every event, draw nothing."""
    client = Client(resolve(Flags(host=url)))
    return sum(1 for _ in client.pull(name))


def draw(events: list[dict[str, object]], mode: str) -> None:
    """Only the drawing: feed already decoded events to the display of ``mode``."""
    with open_progress(mode, "pull") as display:
        for event in events:
            display.event(event)


def pull_with_cli(url: str, name: str, mode: str) -> None:
    """``ollamactl pull NAME --progress MODE`` in this process."""
    try:
        cli.main(["--host", url, "pull", name, "--progress", mode], standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise


def on_terminal(action: Callable[[], None]) -> None:
    """Run ``action`` with stderr on a pseudo-terminal (its output drained and discarded)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    drained = threading.Thread(target=_drain, args=(master,), daemon=True)
    drained.start()
    terminal = io.TextIOWrapper(io.FileIO(slave, "w", closefd=True), write_through=True)
    try:
        with redirect_stderr(terminal):
            action()
    finally:
        terminal.close()
        drained.join(timeout=2)
        os.close(master)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def into_devnull(action: Callable[[], None]) -> None:
    with open(os.devnull, "w") as sink, redirect_stderr(sink):
        action()


def measure(url: str, name: str, mode: str, events: list[dict[str, object]]) -> tuple[float, float]:
    """CPU seconds of a whole pull of ``name`` in ``mode``, and of drawing ``events`` alone."""
    wrap = on_terminal if mode == "tty" else into_devnull
    whole = cpu_seconds(lambda: wrap(lambda: pull_with_cli(url, name, mode)))
    drawing = cpu_seconds(lambda: wrap(lambda: draw(events, mode)))
    return whole, drawing


def sample(runs: int, event_count: int) -> tuple[int, dict[str, list[float]]]:
    """Pull ``runs`` times per mode; the number of events and the CPU seconds of each run."""
    steps = max(event_count // LAYERS, 1)
    modes = ["tty", "plain", "json", "none"]
    server, url = start_server(models=(len(modes) + 1) * (runs + 1), steps=steps)
    names = Names()
    try:
        events = list(Client(resolve(Flags(host=url))).pull(names()))  # warm-up
        measured: dict[str, list[float]] = {"consume": []}
        for _ in range(runs):
            measured["consume"].append(cpu_seconds(lambda: consume(url, names())))
            for mode in modes:
                whole, drawing = measure(url, names(), mode, events)
                measured.setdefault(mode, []).append(whole)
                measured.setdefault(f"{mode} (drawing only)", []).append(drawing)
    finally:
        server.terminate()
        server.wait(timeout=5)
    return len(events), measured


def rows(event_count: int, measured: dict[str, list[float]]) -> list[Row]:
    """The modes with a limit as rows of ``benchmarks/run.py``'s report."""
    baseline = statistics.median(measured["consume"])
    report = []
    for mode, limit in LIMITS.items():
        median = statistics.median(measured[mode])
        report.append(
            Row(
                f"pull of {event_count:,} events, --progress {mode}, CPU",
                f"{median * 1000:.1f} ms",
                f"{baseline * 1000:.1f} ms (consuming the stream)",
                median / baseline,
                f"<= {limit:g}x",
                median / baseline <= limit,
            )
        )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    event_count, measured = sample(args.runs, args.events)
    baseline = statistics.median(measured["consume"])
    print(f"pull of {event_count} events, {args.runs} runs, median process CPU time")
    print(f"{'mode':<24}{'CPU ms':>10}{'ratio':>8}{'limit':>8}")
    for mode, values in measured.items():
        limit = LIMITS.get(mode)
        shown = f"{limit:.1f}" if limit else "-"
        median = statistics.median(values)
        print(f"{mode:<24}{median * 1000:>10.1f}{median / baseline:>8.2f}{shown:>8}")
    failed = [r.what for r in rows(event_count, measured) if not r.ok]
    if failed:
        print(f"FAIL: {', '.join(failed)} above the limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
