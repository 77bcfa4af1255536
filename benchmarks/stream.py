"""Streaming benchmark: ``ollamactl run`` against ``curl -N`` on the same local server.

Run it from the repository root::

    python benchmarks/stream.py [--runs 7] [--tokens 100000]

It starts ``python -m tests.fake_ollama --token-count N`` (a subprocess on 127.0.0.1) and
measures, in the same run:

Throughput (target: at least 50,000 tokens/s). ``python -m ollamactl run tiny prompt``
writes its answer to a file (stdout is not a terminal). The benchmark polls the
file's size every 0.2 ms to time the first byte, and takes the process's exit as
the last; tokens/s = N / (exit - first byte), so interpreter start-up and the
``/api/show`` round trip are not counted as streaming time. The same is measured
for ``curl -N`` writing the raw NDJSON to a file, which shows the server's own
ceiling. The output file is checked to hold all N tokens.

Time to first token (target: ollamactl adds at most 10 ms). Both clients talk to the
server through a small TCP relay in this process, which notes when the bytes of
each ``POST /api/generate`` request arrive from the client (ollamactl's earlier
``/api/show`` on the same connection is ignored). The time to first token is
measured from that moment to the first chunk read from the client's stdout
pipe: the first token for ollamactl, the first NDJSON line for curl. Measuring
from each client's own request leaves out process start-up on both sides; the
added latency is median(ollamactl) - median(curl).

Each measurement is repeated ``--runs`` times; the table shows medians (and the
spread), and the exit status is 1 when a target is missed. ``measure(url, runs)``
gives the same figures as rows of ``benchmarks/run.py``'s report.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, Row, clean_env, local_server, ollamactl_command

MODEL = "tiny"
PROMPT = "Count for me."
TOKENS = 100_000
TARGET_TOKENS_PER_SECOND = 50_000
TARGET_ADDED_TTFT_MS = 10.0
GENERATE_REQUEST = b"POST /api/generate"


class Relay:
    """A TCP relay that timestamps every ``POST /api/generate`` request passing through."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.request_times: list[float] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and GENERATE_REQUEST in data:
                    self.request_times.append(time.perf_counter())
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def run_command(port: int) -> list[str]:
    return [*ollamactl_command(), "--host", f"http://127.0.0.1:{port}", "run", MODEL, PROMPT]


def curl_command(port: int) -> list[str]:
    body = f'{{"model": "{MODEL}", "prompt": "{PROMPT}"}}'
    return ["curl", "-sN", f"http://127.0.0.1:{port}/api/generate", "-d", body]


def streaming_rate(command: list[str], tokens: int, check: Callable[[str], None]) -> float:
    """Tokens/s from the first byte in the output file to the process's exit."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out"
        with path.open("wb") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.PIPE, cwd=ROOT, env=clean_env()
            )
            first = None
            while first is None and process.poll() is None:
                if os.stat(path).st_size:
                    first = time.perf_counter()
                else:
                    time.sleep(0.0002)
            _, errors = process.communicate()
            end = time.perf_counter()
        if process.returncode != 0 or first is None:
            raise SystemExit(f"{command[0]} failed ({process.returncode}): {errors.decode()}")
        check(path.read_text())
    return tokens / (end - first)


def time_to_first_token(command: list[str], relay: Relay) -> float:
    """Seconds from the generate request reaching the relay to the first chunk on stdout."""
    seen = len(relay.request_times)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, env=clean_env()
    )
    assert process.stdout is not None
    chunk = os.read(process.stdout.fileno(), 65536)
    arrived = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.communicate()
    if not chunk or len(relay.request_times) <= seen:
        raise SystemExit(f"{command[0]} printed nothing or sent no generate request")
    return arrived - relay.request_times[seen]


def check_run_output(tokens: int) -> Callable[[str], None]:
    def check(text: str) -> None:
        words = text.split()
        if len(words) != tokens or words[-1] != f"tok{tokens - 1}":
            raise SystemExit(f"ollamactl printed {len(words)} tokens, not {tokens}")

    return check


def check_curl_output(tokens: int) -> Callable[[str], None]:
    def check(text: str) -> None:
        if text.count("\n") != tokens + 1:
            raise SystemExit(f"curl received {text.count(chr(10))} lines, not {tokens + 1}")

    return check


def sample(
    url: str, runs: int, tokens: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Tokens/s and times to first token (s) of ollamactl and curl, ``runs`` of each."""
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed for the comparison")
    port = urlsplit(url).port or 80
    relay = Relay(port)
    rates: dict[str, list[float]] = {"ollamactl": [], "curl": []}
    firsts: dict[str, list[float]] = {"ollamactl": [], "curl": []}
    try:
        for _ in range(runs):
            rates["ollamactl"].append(
                streaming_rate(run_command(port), tokens, check_run_output(tokens))
            )
            rates["curl"].append(
                streaming_rate(curl_command(port), tokens, check_curl_output(tokens))
            )
            firsts["ollamactl"].append(time_to_first_token(run_command(relay.port), relay))
            firsts["curl"].append(time_to_first_token(curl_command(relay.port), relay))
    finally:
        relay.close()
    return rates, firsts


def rows(rates: dict[str, list[float]], firsts: dict[str, list[float]]) -> list[Row]:
    """The two targets as report rows."""
    rate, curl_rate = statistics.median(rates["ollamactl"]), statistics.median(rates["curl"])
    first_ms = statistics.median(firsts["ollamactl"]) * 1000
    curl_first_ms = statistics.median(firsts["curl"]) * 1000
    added_ms = first_ms - curl_first_ms
    return [
        Row(
            "run, 100,000 tokens into a file",
            f"{rate:,.0f} tokens/s",
            f"{curl_rate:,.0f} tokens/s (curl -N)",
            rate / curl_rate,
            f">= {TARGET_TOKENS_PER_SECOND:,} tokens/s",
            rate >= TARGET_TOKENS_PER_SECOND,
        ),
        Row(
            "run, time to first token",
            f"{first_ms:.2f} ms ({added_ms:+.2f} ms)",
            f"{curl_first_ms:.2f} ms (curl -N)",
            None,
            f"<= +{TARGET_ADDED_TTFT_MS:g} ms",
            added_ms <= TARGET_ADDED_TTFT_MS,
        ),
    ]


def measure(url: str, runs: int, tokens: int = TOKENS) -> list[Row]:
    """Measure against a running test server that answers with ``tokens`` tokens."""
    return rows(*sample(url, runs, tokens))


def spread(values: list[float], scale: float, digits: int) -> str:
    """``median (min-max)`` of the values times ``scale``."""
    low, median, high = (v * scale for v in (min(values), statistics.median(values), max(values)))
    return f"{median:,.{digits}f} ({low:,.{digits}f}-{high:,.{digits}f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=TOKENS)
    args = parser.parse_args()
    with local_server("--models", f"{MODEL}:latest", "--token-count", str(args.tokens)) as url:
        rates, firsts = sample(url, args.runs, args.tokens)
    print(f"{args.tokens:,} tokens, {args.runs} runs each; median (min-max)\n")
    print(f"{'client':<12}{'tokens/s':>34}{'first token, ms':>34}")
    for client in ("ollamactl", "curl"):
        print(f"{client:<12}{spread(rates[client], 1, 0):>34}{spread(firsts[client], 1000, 2):>34}")
    print()
    report = rows(rates, firsts)
    for row in report:
        verdict = "ok" if row.ok else "MISSED"
        print(f"{row.what}: {row.figure} vs {row.baseline}; target {row.limit}: {verdict}")
    return 0 if all(row.ok for row in report) else 1


if __name__ == "__main__":
    sys.exit(main())
