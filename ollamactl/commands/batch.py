"""``batch``: a file of prompts answered as JSON lines, by one server or spread over several.

The work happens in :mod:`ollamactl.batch`; this module parses the flags, resolves the
servers, opens the input and the output, and shows progress and the summary on stderr.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

import click

from ollamactl import render
from ollamactl.app import App, pass_app, warn
from ollamactl.batch import Batch, Listener, Server, Stats
from ollamactl.batch_input import count_prompts
from ollamactl.batch_output import AppendFile, answered_ids
from ollamactl.completion import complete_models
from ollamactl.errors import (
    CommandFailed,
    Interrupted,
    ModelNotFound,
    OllamactlError,
    UsageError,
)
from ollamactl.fleet import check_no_connection_flags, profile_names
from ollamactl.generation import request_from
from ollamactl.options import GenerationCommand, shared_request_options, spread_options
from ollamactl.paths import open_input
from ollamactl.progress import resolve_mode
from ollamactl.terminal import OutputClosed, binary_stream

if TYPE_CHECKING:
    from tqdm import tqdm

#: Off a terminal, a progress line at most this often, and at every tenth of a known total.
PLAIN_SECONDS = 10.0


@click.command(cls=GenerationCommand)
@click.argument("model", shell_complete=complete_models)
@click.argument("file", type=click.Path(), required=False, default="-", metavar="[FILE]")
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    metavar="FILE",
    help="Write the answers to FILE, not stdout.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Append to the -o FILE and send only the prompts it has no answer for.",
)
@click.option(
    "-j",
    "--parallel",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Requests in flight on each server (match its OLLAMA_NUM_PARALLEL).",
)
@spread_options
@click.option("--ordered", is_flag=True, help="Write the answers in input order.")
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=2,
    show_default=True,
    help="Times one prompt is asked again after a broken connection, a timeout or a 5xx"
    " answer (the global --retries re-sends one request).",
)
@click.option("--pull", is_flag=True, help="Pull the model onto a server that lacks it.")
@shared_request_options
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
@pass_app
def batch(
    app: App,
    model: str,
    file: str,
    output: str | None,
    resume: bool,
    parallel: int,
    profiles: str | None,
    all_profiles: bool,
    ordered: bool,
    retries: int,
    pull: bool,
    system: str | None,
    options: tuple[str, ...],
    response_format: str | None,
    think: str | None,
    keepalive: str | None,
    quiet: bool,
) -> None:
    """Answer many prompts: one JSON line out per line in, over one or more servers.

    FILE (or stdin) holds one prompt per line: plain text, or (a line that
    starts with "{") a JSON object with "prompt" (/api/generate) or "messages"
    (/api/chat) and optionally "id", "system", "options", "format", "images"
    (local paths), "think" and "keep_alive". Without an "id" a prompt's id is
    its line number. A bad line is reported with its number and skipped; blank
    lines are ignored. --system, -p, --format, --think and --keepalive apply
    to every prompt without its own (a line's "options" win key by key).

    Each output line has "id", "model", "server" (the profile or URL that
    answered), "response" (or "message" for a chat), "done_reason" and the
    server's token counts and durations; a prompt that failed has "error"
    instead. Lines are written as prompts finish (--ordered: in input order),
    each whole or not at all; with -o FILE --resume a second run sends only the
    ids FILE has no answer for (the last answer of an id counts).

    Broken connections, timeouts and 5xx answers are tried again (--retries);
    a server that cannot be reached, refuses the credentials, lacks the model
    or keeps failing hands its prompts to the other servers. Requests wait for
    the whole answer, so --read-timeout must exceed the longest (default 300 s).

    Exit status: 0 all answered; 1 some failed or bad lines (counted on
    stderr); 2 usage; 3 no server could be reached; 5 the model is on no
    server; 130 Ctrl-C (what finished is written; --resume goes on).

    \b
    Examples:
      ollamactl batch llama3.2 prompts.txt > answers.jsonl
      ollamactl batch llama3.2 prompts.jsonl -o answers.jsonl -j 4 --resume
      ollamactl batch qwen3 questions.jsonl -o out.jsonl --profiles gpu,lab -j 8
      ollamactl batch tiny - --ordered -p temperature=0 < prompts.txt
      jq -c '{id, prompt: .question}' data.jsonl | ollamactl batch llama3.2 | jq -r .response
    """
    if resume and not output:
        raise UsageError("--resume needs -o FILE: the answers so far")
    defaults = request_from(
        system=system,
        options=options,
        response_format=response_format,
        keepalive=keepalive,
        think=think,
        no_stream=True,
    )
    servers = _servers(app, profiles, all_profiles)
    source = _open_input(file)
    skip, trimmed = answered_ids(output) if resume and output else (set(), 0)
    if trimmed:
        warn(f"removed an incomplete last line ({trimmed} bytes) from {output}")
    write, close_output = _open_output(output, keep=resume)
    mode = "none" if quiet else resolve_mode("auto", app.terminal)
    expected = None if mode == "none" else _expected(file)
    display = _Display(mode, expected)
    engine = Batch(
        model,
        servers,
        write,
        parallel=parallel,
        retries=retries,
        ordered=ordered,
        pull=pull,
        defaults=defaults,
        skip=skip,
        listener=display,
    )
    try:
        stats = engine.run(source)
    except OSError as e:
        raise UsageError(f"cannot write to {output or 'stdout'}: {e.strerror or e}") from None
    finally:
        display.close()
        close_output()
        source.close()
    _report(stats, display, output=output, several=len(servers) > 1, pull=pull)


# -- servers, input and output --------------------------------------------------------------


def _servers(app: App, profiles: str | None, all_profiles: bool) -> list[Server]:
    """The servers to use: the one of the global flags, or those of the chosen profiles.

    Each profile is resolved as `--profile NAME` would be (its own host, credentials and
    TLS settings). With --all-profiles a profile that cannot be resolved is skipped with a
    warning; a profile named in --profiles must resolve.
    """
    if not profiles and not all_profiles:
        settings = app.settings
        app.warn_about_transport(settings)
        return [Server(settings.profile or settings.base_url, settings, app.redact)]
    if profiles and all_profiles:
        raise UsageError("give --profiles or --all-profiles, not both")
    check_no_connection_flags(app, "--profiles and --all-profiles")
    names = [n.strip() for n in (profiles or "").split(",") if n.strip()]
    if all_profiles:
        names = profile_names()
    if not names:
        raise UsageError("--profiles names no profile", hint="e.g. --profiles gpu,lab")
    servers = []
    for name in dict.fromkeys(names):
        profile_app = app.for_profile(name)
        try:
            settings = profile_app.settings
        except OllamactlError as e:
            if not all_profiles:
                raise
            warn(f"{name}: {profile_app.redact(str(e))}; skipped")
            continue
        profile_app.warn_about_transport(settings)
        servers.append(Server(name, settings, profile_app.redact))
    if not servers:
        raise UsageError("no profile can be used")
    return servers


def _open_input(file: str) -> IO[bytes]:
    if file == "-":
        return binary_stream("stdin")
    return open_input(file, "the prompts file")  # a device (/dev/zero) is refused


def _expected(file: str) -> int | None:
    """The number of prompts in a regular FILE (for the bar's ETA), None for a pipe."""
    if file == "-" or not os.path.isfile(file):
        return None
    return count_prompts(file)


def _open_output(
    output: str | None, *, keep: bool
) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    """A function writing one line (an os.write on an O_APPEND file, or stdout and a flush)."""
    if output is None:
        stdout = binary_stream("stdout")

        def write(line: bytes) -> None:
            stdout.write(line)
            stdout.flush()

        return write, lambda: None
    try:
        target = AppendFile(output, keep=keep)
    except OSError as e:
        raise UsageError(f"cannot write to {output}: {e.strerror}") from None
    return target.write, target.close


# -- progress and summary -------------------------------------------------------------------


class _Display(Listener):
    """Progress on stderr: a tqdm bar on a terminal, a line now and then elsewhere, or nothing."""

    def __init__(self, mode: str, expected: int | None) -> None:
        self.mode = mode
        self.expected = expected
        self._bar: tqdm | None = None
        self._next_line = time.monotonic() + PLAIN_SECONDS
        self._next_tenth = 1
        self._failed = 0
        if mode == "tty":
            from tqdm import tqdm

            self._bar = tqdm(
                total=expected, desc="batch", unit="prompt", file=sys.stderr, dynamic_ncols=True
            )

    def progress(self, stats: Stats) -> None:
        done = stats.answered + stats.failed
        total = None if self.expected is None else self.expected - stats.skipped - stats.bad_lines
        if self._bar is not None:
            self._bar.total = total
            if stats.failed != self._failed:
                self._failed = stats.failed
                self._bar.set_postfix_str(f"{stats.failed} failed", refresh=False)
            self._bar.update(done - self._bar.n)
        elif self.mode == "plain":
            now = time.monotonic()
            tenths = done * 10 // total if total else 0  # tenths of the total done
            if now >= self._next_line or tenths >= self._next_tenth:
                self._next_line = now + PLAIN_SECONDS
                self._next_tenth = tenths + 1
                self.say(f"batch: {_counts(stats)}")

    def bad_line(self, number: int, message: str) -> None:
        self.say(f"Error: line {number}: {message}")

    def notice(self, message: str, *, warning: bool = False) -> None:
        if warning:
            self.say(f"Warning: {message}")
        elif self.mode != "none":
            self.say(message)

    def say(self, text: str) -> None:
        """A line on stderr (above the bar, if there is one)."""
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            click.echo(text, err=True)

    def close(self) -> None:
        """Take the bar away (its last state stays on the screen)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.1f}" if seconds > 0 else "-"


def _counts(stats: Stats) -> str:
    """``120 answered, 3 failed, 4.2 prompts/s`` (and skipped and bad lines, if any)."""
    elapsed = stats.elapsed or time.monotonic() - stats.started
    parts = [f"{stats.answered} answered", f"{stats.failed} failed"]
    if stats.skipped:
        parts.append(f"{stats.skipped} already answered")
    if stats.bad_lines:
        parts.append(f"{stats.bad_lines} bad lines")
    return ", ".join(parts) + f", {_rate(stats.answered, elapsed)} prompts/s"


def _report(
    stats: Stats, display: _Display, *, output: str | None, several: bool, pull: bool
) -> None:
    """The summary (unless -q), then the outcome: an error line and the exit status."""
    if display.mode != "none":
        display.say(
            f"batch: {_counts(stats)}, {_rate(stats.tokens, stats.elapsed)} tokens/s"
            f" in {stats.elapsed:.1f}s"
        )
        named = any(s.name != s.host for s in stats.servers)  # profiles: show their URLs too
        rows = [
            [
                s.name + (" (dropped)" if s.error else ""),
                *([s.host] if named else []),
                str(s.answered),
                str(s.failed),
                _rate(s.answered, stats.elapsed),
                _rate(s.tokens, stats.elapsed),
            ]
            for s in stats.servers
        ]
        header = ["SERVER", *(["HOST"] if named else []), "ANSWERED", "FAILED"]
        click.echo(render.table(rows, [*header, "PROMPTS/S", "TOKENS/S"]), err=True, nl=False)
    code = stats.exit_code()
    if stats.stopped == "interrupted":
        if isinstance(stats.interruption, OutputClosed):
            raise stats.interruption  # the reader of stdout went away: end quietly, as all do
        where = f" to {output}" if output else ""
        rest = "; run it again with --resume to send the rest" if output else ""
        click.echo(f"interrupted: {stats.answered} answers written{where}{rest}", err=True)
        raise Interrupted("interrupted")
    if stats.stopped_by is not None:
        server = stats.stopped_by
        text = server.message
        if several:
            text = f"no server is left: {server.name} ({server.host}): {text}"
        missing = any(isinstance(s.error, ModelNotFound) for s in stats.servers)
        if missing and not pull:
            text += " (add --pull to pull the model where it is missing)"
        hint = f"run it again with --resume to send the rest to {output}" if output else None
        raise CommandFailed(text, code, hint=hint)
    if code:
        total = stats.answered + stats.failed
        problems = [f"{stats.failed} of {total} prompts failed"] if stats.failed else []
        if stats.bad_lines:
            problems.append(f"{stats.bad_lines} input lines were bad")
        raise CommandFailed(", ".join(problems), code)
