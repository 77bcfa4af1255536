"""Throughput, CPU and memory of ``ollamactl batch`` against servers with a known capacity.

A local server on 127.0.0.1 (threaded, below) answers ``/api/generate`` and ``/api/chat``
after a fixed delay, with N parallel slots (a semaphore): its capacity is N / delay prompts
a second. ``ollamactl batch`` runs as a child process of this script, so the server's CPU is
not the client's. Targets:

- ``-j N`` against one server of N slots: >= 90 % of its capacity, for N = 1, 4 and 16
  (the rate is measured at the server, first arrival to last answer, so the client's start-up
  does not count; the end-to-end rate is reported next to it);
- two such servers (``--profiles a,b``) against one: >= 1.8x the prompts per second;
- CPU per prompt over 10,000 short prompts with no delay: at most 2x a plain loop of
  ``requests.Session.post`` and ``json.loads`` (one thread, nothing written);
- peak RSS for 10,000 prompts at most 1.1x that for 1,000 (memory flat in the prompts).

Prints a Markdown table; exit status 1 when a target is missed.

    python benchmarks/batch.py [--delay 0.1] [--rounds 30] [--prompts 10000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Job, Row, clean_env, ollamactl_command
from benchmarks.run import print_table

MODEL = "bench"
CAPACITY_TARGET = 0.9
TWO_SERVERS_TARGET = 1.8
CPU_TARGET = 2.0
RSS_TARGET = 1.1
#: Slots of each server in the two-servers comparison.
SHARED_SLOTS = 4

_STATS = {
    "done": True,
    "done_reason": "stop",
    "total_duration": 1_000_000,
    "load_duration": 1000,
    "prompt_eval_count": 3,
    "prompt_eval_duration": 1000,
    "eval_count": 4,
    "eval_duration": 1000,
}
ANSWERS = {
    "/api/generate": json.dumps({"model": MODEL, "response": "Hello, world!", **_STATS}).encode(),
    "/api/chat": json.dumps(
        {"model": MODEL, "message": {"role": "assistant", "content": "Hello!"}, **_STATS}
    ).encode(),
}
BASELINE_LOOP = """
import json, sys, requests
url, count = sys.argv[1], int(sys.argv[2])
with requests.Session() as session:
    for i in range(count):
        body = {"model": "bench", "prompt": f"prompt {i}", "stream": False}
        json.loads(session.post(url + "/api/generate", json=body).content)
"""


class SlotServer(ThreadingHTTPServer):
    """Answers generate and chat after ``delay`` seconds in one of ``slots`` slots."""

    daemon_threads = True

    def __init__(self, slots: int, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.slots = threading.BoundedSemaphore(slots)
        self.delay = delay
        self.lock = threading.Lock()
        self.answered = 0
        self.first = float("inf")  # when the first prompt arrived
        self.last = 0.0  # when the last answer was ready

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self) -> None:
        """Take a slot for ``delay`` seconds, and count the prompt."""
        arrived = time.perf_counter()
        with self.slots:
            if self.delay:
                time.sleep(self.delay)
        with self.lock:
            self.answered += 1
            self.first = min(self.first, arrived)
            self.last = max(self.last, time.perf_counter())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as Go's net/http: no 40 ms delayed-ACK stall per answer
    server: SlotServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._send(b'{"version":"0.9.3"}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/show":
            self._send(b'{"capabilities":["completion"]}')
        elif self.path in ANSWERS:
            self.server.answer()
            self._send(ANSWERS[self.path])
        else:
            self._send(b'{"error":"not found"}', 404)

    def _send(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(slots: int, delay: float) -> Iterator[SlotServer]:
    """A SlotServer in a thread of this process, for the duration of the block."""
    server = SlotServer(slots, delay)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def rate(servers: list[SlotServer]) -> float:
    """Prompts a second the servers answered, first arrival to last answer."""
    answered = sum(s.answered for s in servers)
    return answered / (max(s.last for s in servers) - min(s.first for s in servers))


class Bench:
    """The input files, the config of the two profiles, and the runs of the CLI."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = clean_env(OLLAMACTL_CONFIG_DIR=str(folder))

    def prompts(self, count: int) -> Path:
        """A file of ``count`` short plain prompts."""
        path = self.folder / f"prompts-{count}.txt"
        if not path.exists():
            path.write_text("".join(f"prompt {i}\n" for i in range(count)))
        return path

    def job(self, count: int, parallel: int, *options: str, host: str | None = None) -> Job:
        """``ollamactl [--host HOST] batch MODEL FILE -j PARALLEL -q OPTIONS``, stdout dropped."""
        command = [*ollamactl_command(), *(["--host", host] if host else []), "batch", MODEL]
        return Job(
            [*command, str(self.prompts(count)), "-j", str(parallel), "-q", *options], self.env
        )

    def profiles(self, servers: list[SlotServer]) -> str:
        """Write a profile per server (p0, p1, ...); returns their names for --profiles."""
        names = [f"p{i}" for i in range(len(servers))]
        config = "".join(
            f'[profiles.{name}]\nhost = "{s.url}"\n' for name, s in zip(names, servers)
        )
        (self.folder / "config.toml").write_text(config)
        return ",".join(names)


def measure_capacity(bench: Bench, delay: float, rounds: int) -> list[Row]:
    """``-j N`` against one server of N slots, N = 1, 4, 16."""
    rows = []
    for slots in (1, 4, 16):
        capacity = slots / delay
        with serving(slots, delay) as server:
            count = slots * rounds
            wall = bench.job(count, slots, host=server.url).time().seconds
            measured = rate([server])
        what = f"-j {slots}, one server: {slots} slot{'s' * (slots > 1)} x {delay:g} s"
        rows.append(ratio(what, measured, capacity, "capacity", CAPACITY_TARGET))
        rows.append(reported(f"{what}, end to end", count / wall, capacity, "capacity"))
    return rows


def measure_two_servers(bench: Bench, delay: float, rounds: int) -> list[Row]:
    """Two servers of SHARED_SLOTS slots against one, ``-j SHARED_SLOTS`` on each."""
    measured = []
    for count in (1, 2):
        with serving(SHARED_SLOTS, delay) as a, serving(SHARED_SLOTS, delay) as b:
            servers = [a, b][:count]
            names = bench.profiles(servers)
            prompts = SHARED_SLOTS * rounds * count
            bench.job(prompts, SHARED_SLOTS, "--profiles", names).time()
            measured.append(rate(servers))
    what = f"two servers vs one ({SHARED_SLOTS} slots, -j {SHARED_SLOTS})"
    return [ratio(what, measured[1], measured[0], "one server", TWO_SERVERS_TARGET)]


def measure_cpu(bench: Bench, count: int) -> list[Row]:
    """CPU per prompt, no delay, against a plain requests loop."""
    with serving(64, 0.0) as server:
        ours = bench.job(count, 4, host=server.url).time().cpu_seconds / count
        loop = [sys.executable, "-c", BASELINE_LOOP, server.url, str(count)]
        base = Job(loop, bench.env).time().cpu_seconds / count
    return [
        Row(
            f"CPU per prompt, {count:,} prompts, no delay",
            f"{ours * 1000:.2f} ms",
            f"{base * 1000:.2f} ms (requests loop)",
            ours / base,
            f"<= {CPU_TARGET:g}x",
            ours / base <= CPU_TARGET,
        )
    ]


def measure_memory(bench: Bench, count: int) -> list[Row]:
    """Peak RSS for ``count`` prompts against a tenth of them."""
    with serving(64, 0.0) as server:
        small, large = (
            bench.job(n, 4, host=server.url).peak_rss_mib() for n in (count // 10, count)
        )
    return [
        Row(
            f"peak RSS, {count:,} prompts",
            f"{large:.1f} MiB",
            f"{small:.1f} MiB ({count // 10:,} prompts)",
            large / small,
            f"<= {RSS_TARGET:g}x",
            large / small <= RSS_TARGET,
        )
    ]


def ratio(what: str, measured: float, base: float, base_name: str, target: float) -> Row:
    """A rate that must reach ``target`` times its baseline."""
    return Row(
        what,
        f"{measured:.1f} prompts/s",
        f"{base:.1f} prompts/s ({base_name})",
        measured / base,
        f">= {target:g}x",
        measured / base >= target,
    )


def reported(what: str, measured: float, base: float, base_name: str) -> Row:
    """A rate shown next to its baseline, not judged."""
    row = ratio(what, measured, base, base_name, 0.0)
    row.limit, row.ok = "reported", None
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per prompt and slot")
    parser.add_argument("--rounds", type=int, default=30, help="prompts per slot")
    parser.add_argument("--prompts", type=int, default=10_000, help="prompts for CPU and RSS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(Path(folder))
        rows = measure_capacity(bench, args.delay, args.rounds)
        rows += measure_two_servers(bench, args.delay, args.rounds)
        rows += measure_cpu(bench, args.prompts)
        rows += measure_memory(bench, args.prompts)
    print_table(rows)
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
