"""ollamactl's performance targets, measured against baselines in the same run.

Every figure comes from fresh processes, next to a baseline measured in the same run on the
same machine (the two take turns, so both see the same load), so the ratios hold on slower or
faster machines:

- start-up, least of ``--startup-runs`` runs: ``--version``, ``--help``, completing a command
  name and completing a model name from a warm cache <= 1.5x ``python -c "import click"``;
- start-up, medians: ``--version``, ``--help``, ``run --help`` <= 3x ``python -c pass``,
  model-name completion with a warm cache <= 4x;
- ``list`` against a local server <= 1.25x ``python -c "import requests; requests.get(URL)"``
  (medians); the least time of ``curl`` for the same request is reported;
- peak RSS <= 40 MiB for ``list`` and for a 100,000-token ``run``;
- streaming (from benchmarks/stream.py): >= 50,000 tokens/s rendered by ``run`` into a file,
  time to first token <= 10 ms after ``curl -N`` sees it;
- drawing pull progress (from benchmarks/progress.py): at most 2x the CPU of consuming the
  same 10,000-event stream with terminal bars or no display, 3x for plain and json lines;
- a chat of 1,000 saved turns loads and appends in time linear in its size (2,000 turns cost
  at most 2.5x 1,000 turns), memory likewise.

Where the Go ``ollama`` CLI is present (``$OLLAMA_BIN``, else the one
``bash scripts/real-ollama.sh start`` installed), it runs side by side against the same
local server: ``--version``, ``list`` and a 100,000-token ``run`` into a file; wall time,
CPU time (user + system) and peak RSS are reported with the ollamactl/Go ratios, not judged.
Where it is absent those rows say they were skipped.

It starts its own local server (the fake Ollama, tests/fake_ollama) and uses only the
project's code, the standard library and curl. Exit status 1 when a target is missed.

    python benchmarks/run.py [--runs 7] [--startup-runs 30] [--no-site]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shlex
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import chat_history, progress, stream
from benchmarks.common import (
    ROOT,
    Job,
    Row,
    Run,
    Timing,
    clean_env,
    comparison_rows,
    fastest,
    local_server,
    median,
    ollamactl_command,
    ratio_row,
    sample,
)

RSS_LIMIT_MIB = 40.0
STARTUP_LIMIT = 1.5
CLICK = 'python -c "import click"'
GO = "Go ollama"


def go_cli() -> str | None:
    """The Go ``ollama`` CLI: ``$OLLAMA_BIN``, else the one scripts/real-ollama.sh installed."""
    found = os.environ.get("OLLAMA_BIN") or os.environ.get("OLLAMACTL_REAL_BIN")
    if not found:
        script = shlex.quote(str(ROOT / "scripts" / "real-ollama.sh"))
        source = f'env="$(bash {script} path)/env" && . "$env" && printf %s "$OLLAMACTL_REAL_BIN"'
        found = subprocess.run(
            ["bash", "-c", source], capture_output=True, text=True, check=False
        ).stdout
    return found if found and shutil.which(found) else None


def completion_env(env: dict[str, str], line: str) -> dict[str, str]:
    """The environment of a Tab press in bash with the cursor at the end of ``line``."""
    return {
        **env,
        "_OLLAMACTL_COMPLETE": "bash_complete",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
    }


def startup_python(no_site: bool, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The interpreter command for the start-up figures, and its environment.

    With ``no_site``, ``python -S`` with site-packages on PYTHONPATH: the .pth files that run
    imports at every start (editable installs, sandbox hooks) are left out, as in a clean venv,
    for the baselines too.
    """
    if not no_site:
        return [sys.executable], env
    path = os.pathsep.join([env["PYTHONPATH"], *site.getsitepackages()])
    return [sys.executable, "-S"], {**env, "PYTHONPATH": path}


def import_hooks() -> list[str]:
    """The .pth files in site-packages that run imports whenever Python starts."""
    return sorted(
        path.name
        for folder in site.getsitepackages()
        for path in Path(folder).glob("*.pth")
        if any(line.startswith("import") for line in path.read_text(errors="replace").splitlines())
    )


def figures(job: Job, timings: list[Timing]) -> Run:
    """The least wall and CPU time of ``timings``, and the peak memory of one more run."""
    least = fastest(timings)
    return Run(least.seconds, job.peak_rss_mib(), least.cpu_seconds)


def measure_startup(runs: int, env: dict[str, str], python: list[str], go: str | None) -> list[Row]:
    """Start-up against ``import click`` (least times) and ``python -c pass`` (medians)."""
    cli = ollamactl_command(python)
    jobs = {
        "python -c pass": Job([*python, "-c", "pass"], env),
        CLICK: Job([*python, "-c", "import click"], env),
        "ollamactl --version": Job([*cli, "--version"], env),
        "ollamactl --help": Job([*cli, "--help"], env),
        "ollamactl run --help": Job([*cli, "run", "--help"], env),
        "command-name completion": Job(cli, completion_env(env, "ollamactl ")),
        # the warm-up round fills the completion cache
        "model-name completion, warm cache": Job(cli, completion_env(env, "ollamactl rm ")),
    }
    if go:
        jobs[GO] = Job([go, "--version"], env)
    timings = sample(jobs, runs)
    least = {name: fastest(t).seconds for name, t in timings.items()}
    middle = {name: median(t).seconds for name, t in timings.items()}
    rows = [
        ratio_row(f"{name}, least of {runs}", least[name], least[CLICK], CLICK, STARTUP_LIMIT)
        for name in (
            "ollamactl --version",
            "ollamactl --help",
            "command-name completion",
            "model-name completion, warm cache",
        )
    ]
    rows += [
        ratio_row(name, middle[name], middle["python -c pass"], "python -c pass", limit)
        for name, limit in (
            ("ollamactl --version", 3.0),
            ("ollamactl --help", 3.0),
            ("ollamactl run --help", 3.0),
            ("model-name completion, warm cache", 4.0),
        )
    ]
    if go:
        ours = figures(jobs["ollamactl --version"], timings["ollamactl --version"])
        theirs = figures(jobs[GO], timings[GO])
        rows += comparison_rows(f"--version, least of {runs}", ours, theirs, GO)
    return rows


def measure_list(runs: int, url: str, go: str | None) -> list[Row]:
    """``list`` against the local server vs ``requests.get`` (medians), curl and the Go CLI."""
    env = clean_env(OLLAMA_HOST=url)
    probe = f"import requests; requests.get({url + '/api/tags'!r}).json()"
    jobs = {
        "ollamactl": Job([*ollamactl_command(), "list"], env),
        "requests.get": Job([sys.executable, "-c", probe], env),
    }
    if shutil.which("curl"):
        jobs["curl"] = Job(["curl", "-sf", url + "/api/tags"], env)
    if go:
        jobs[GO] = Job([go, "list"], env)
    timings = sample(jobs, runs)
    ours = figures(jobs["ollamactl"], timings["ollamactl"])
    base_rss = jobs["requests.get"].peak_rss_mib()
    base = median(timings["requests.get"]).seconds
    rows = [
        ratio_row(
            "ollamactl list", median(timings["ollamactl"]).seconds, base, "requests.get", 1.25
        ),
        Row(
            "ollamactl list, peak RSS",
            f"{ours.max_rss_mib:.1f} MiB",
            f"{base_rss:.1f} MiB (requests.get)",
            ours.max_rss_mib / base_rss,
            f"<= {RSS_LIMIT_MIB:g} MiB",
            ours.max_rss_mib <= RSS_LIMIT_MIB,
        ),
    ]
    for name in ("curl", GO):
        if name in jobs:
            theirs = figures(jobs[name], timings[name])
            rows += comparison_rows(f"list, least of {runs}", ours, theirs, name)
    return rows


def measure_run(runs: int, url: str, go: str | None) -> list[Row]:
    """Peak RSS of a 100,000-token ``run`` into a file; wall, CPU and RSS next to the Go CLI's."""
    env = clean_env(OLLAMA_HOST=url)
    base_rss = Job([sys.executable, "-c", "pass"], env).peak_rss_mib()
    arguments = ["run", stream.MODEL, stream.PROMPT]
    with tempfile.TemporaryDirectory() as folder:
        ours = Job([*ollamactl_command(), *arguments], env, Path(folder, "ollamactl"))
        rss = ours.peak_rss_mib()
        rows = [
            Row(
                "run, 100,000 tokens, peak RSS",
                f"{rss:.1f} MiB",
                f"{base_rss:.1f} MiB (python -c pass)",
                rss / base_rss,
                f"<= {RSS_LIMIT_MIB:g} MiB",
                rss <= RSS_LIMIT_MIB,
            )
        ]
        if go:
            theirs = Job([go, *arguments], env, Path(folder, "go"))
            timings = sample({"ollamactl": ours, GO: theirs}, runs)
            for job in (ours, theirs):  # the last run of each wrote every token
                assert job.output is not None
                stream.check_run_output(stream.TOKENS)(job.output.read_text())
            least = fastest(timings["ollamactl"])
            rows += comparison_rows(
                f"run, 100,000 tokens into a file, least of {runs}",
                Run(least.seconds, rss, least.cpu_seconds),
                figures(theirs, timings[GO]),
                GO,
            )
    return rows


def print_table(rows: list[Row]) -> None:
    """Print the report as a Markdown table (paste-able into the README)."""
    print("| measurement | ollamactl | baseline | ratio | target | ok |")
    print("|---|---|---|---|---|---|")
    verdicts = {True: "yes", False: "NO", None: ""}
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        print(f"| {r.what} | {r.figure} | {r.baseline} | {ratio} | {r.limit} | {verdicts[r.ok]} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per measurement")
    parser.add_argument(
        "--startup-runs", type=int, default=30, help="runs per start-up and list measurement"
    )
    parser.add_argument(
        "--no-site",
        action="store_true",
        help="start-up without site-packages' .pth hooks (python -S), as in a clean venv",
    )
    args = parser.parse_args()
    # Measure what an installed user runs: modules compiled to bytecode (as pip does), even
    # where PYTHONDONTWRITEBYTECODE keeps the interpreter from writing it on import.
    compileall.compile_dir(ROOT / "ollamactl", quiet=1)
    go = go_cli()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as cache, local_server("--token-count", "100000") as url:
        env = clean_env(OLLAMA_HOST=url, OLLAMACTL_CACHE_DIR=cache)
        python, env = startup_python(args.no_site, env)
        rows += measure_startup(args.startup_runs, env, python, go)
        rows += measure_list(args.startup_runs, url, go)
        rows += measure_run(args.runs, url, go)
        rows += stream.measure(url, max(3, args.runs // 2))
    if not go:
        missing = "not found: set OLLAMA_BIN or run bash scripts/real-ollama.sh start"
        rows.append(Row(f"{GO} CLI side by side", "skipped", missing, None, "", None))
    rows += chat_history.measure()
    rows += progress.rows(*progress.sample(runs=5, event_count=10_000))
    print_table(rows)
    hooks = [] if args.no_site else import_hooks()
    if hooks:
        print(
            f"note: {', '.join(hooks)} run imports at every Python start, in the start-up "
            "baselines too; --no-site measures start-up without them",
            file=sys.stderr,
        )
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
