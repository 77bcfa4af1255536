"""ollamactl's performance targets, measured against baselines in the same run.

Every figure is a median over several runs of a fresh process, next to a baseline measured
in the same run on the same machine, so the ratios hold on slower or faster machines:

- start-up: ``--version``, ``--help``, ``run --help`` <= 3x ``python -c pass``;
- model-name completion with a warm cache <= 4x ``python -c pass``;
- ``list`` against a local server <= 1.25x ``python -c "import requests; requests.get(URL)"``;
- peak RSS <= 40 MiB for ``list`` and for a 100,000-token ``run``;
- streaming (from benchmarks/stream.py): >= 50,000 tokens/s rendered by ``run`` into a file,
  time to first token <= 10 ms after ``curl -N`` sees it;
- drawing pull progress (from benchmarks/progress.py): at most 2x the CPU of consuming the
  same 10,000-event stream with terminal bars or no display, 3x for plain and json lines;
- a chat of 1,000 saved turns loads and appends in time linear in its size (2,000 turns cost
  at most 2.5x 1,000 turns), memory likewise.

It starts its own local server (tests/ollama_server.py) and uses only the project's code, the
standard library and curl. Exit status 1 when a target is missed.

    python benchmarks/run.py [--runs 7]
"""

from __future__ import annotations

import argparse
import compileall
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import chat_history, progress, stream
from benchmarks.common import (
    ROOT,
    Row,
    clean_env,
    local_server,
    median_run,
    ollamactl_command,
    ratio_row,
)

RSS_LIMIT_MIB = 40.0


def measure_startup(runs: int, url: str, cache: str) -> list[Row]:
    """Start-up of --version, --help, run --help and warm completion vs ``python -c pass``."""
    env = clean_env(OLLAMA_HOST=url, OLLAMACTL_CACHE_DIR=cache)
    base = median_run([sys.executable, "-c", "pass"], env, runs).seconds
    rows = []
    cli = ollamactl_command()
    for args, limit in ((["--version"], 3.0), (["--help"], 3.0), (["run", "--help"], 3.0)):
        seconds = median_run([*cli, *args], env, runs).seconds
        rows.append(
            ratio_row(f"ollamactl {' '.join(args)}", seconds, base, "python -c pass", limit)
        )
    completion_env = {
        **env,
        "_OLLAMACTL_COMPLETE": "bash_complete",
        "COMP_WORDS": "ollamactl rm ",
        "COMP_CWORD": "2",
    }
    seconds = median_run(cli, completion_env, runs).seconds  # the warm-up run fills the cache
    rows.append(ratio_row("completion, warm cache", seconds, base, "python -c pass", 4.0))
    return rows


def measure_list(runs: int, url: str) -> list[Row]:
    """``list`` against the local server vs a bare ``requests.get`` of the same endpoint."""
    env = clean_env()
    probe = f"import requests; requests.get({url + '/api/tags'!r}).json()"
    base = median_run([sys.executable, "-c", probe], env, runs)
    ours = median_run([*ollamactl_command(), "--host", url, "list"], env, runs)
    return [
        ratio_row("ollamactl list", ours.seconds, base.seconds, "requests.get", 1.25),
        Row(
            "ollamactl list, peak RSS",
            f"{ours.max_rss_mib:.1f} MiB",
            f"{base.max_rss_mib:.1f} MiB",
            ours.max_rss_mib / base.max_rss_mib,
            f"<= {RSS_LIMIT_MIB:g} MiB",
            ours.max_rss_mib <= RSS_LIMIT_MIB,
        ),
    ]


def measure_run_memory(runs: int, url: str) -> list[Row]:
    """Peak RSS of a 100,000-token ``run`` written to a file, vs ``python -c pass``."""
    env = clean_env()
    base = median_run([sys.executable, "-c", "pass"], env, runs)
    with tempfile.TemporaryFile() as output:
        command = [*ollamactl_command(), "--host", url, "run", "tiny:latest", "count"]
        ours = median_run(command, env, runs, stdout=output.fileno())
    return [
        Row(
            "run, 100,000 tokens, peak RSS",
            f"{ours.max_rss_mib:.1f} MiB",
            f"{base.max_rss_mib:.1f} MiB (python -c pass)",
            ours.max_rss_mib / base.max_rss_mib,
            f"<= {RSS_LIMIT_MIB:g} MiB",
            ours.max_rss_mib <= RSS_LIMIT_MIB,
        )
    ]


def print_table(rows: list[Row]) -> None:
    """Print the report as a Markdown table (paste-able into the README)."""
    print("| measurement | ollamactl | baseline | ratio | target | ok |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        verdict = "yes" if r.ok else "NO"
        print(f"| {r.what} | {r.figure} | {r.baseline} | {ratio} | {r.limit} | {verdict} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per measurement")
    args = parser.parse_args()
    # Measure what an installed user runs: modules compiled to bytecode (as pip does), even
    # where PYTHONDONTWRITEBYTECODE keeps the interpreter from writing it on import.
    compileall.compile_dir(ROOT / "ollamactl", quiet=1)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as cache, local_server("--token-count", "100000") as url:
        rows += measure_startup(args.runs, url, cache)
        rows += measure_list(args.runs, url)
        rows += measure_run_memory(max(3, args.runs // 2), url)
        rows += stream.measure(url, max(3, args.runs // 2))
    rows += chat_history.measure()
    rows += progress.rows(*progress.sample(runs=5, event_count=10_000))
    print_table(rows)
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
