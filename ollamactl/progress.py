"""Progress of pull, push, create and blob uploads on stderr, in four modes.

- ``tty``: tqdm bars in the Go CLI's layout (``pulling 4f058a53051a:  45% ▕███   ▏ 907 MB/2.0 GB
  42 MB/s  26s``), status lines (``pulling manifest``, ``success``), at most ~10 redraws a second;
- ``plain``: no escape codes; one line per status change and per bar at most every 10 % or 10 s;
- ``json``: every server event as one compact JSON line (client-side steps as events too);
- ``none``: nothing.

tqdm is imported only when a terminal bar is drawn.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ollamactl.errors import UsageError
from ollamactl.render import human_bytes
from ollamactl.terminal import Terminal

if TYPE_CHECKING:
    from tqdm import tqdm

MODES = ("auto", "tty", "plain", "json", "none")
KINDS = ("pull", "push", "create")
#: Seconds between two redraws of a terminal bar (the Go CLI redraws every 100 ms).
REDRAW_INTERVAL = 0.1
#: Plain mode prints a bar's line again after this much progress or this many seconds.
PLAIN_STEP_PERCENT = 10
PLAIN_STEP_SECONDS = 10.0
_BAR_FORMAT = "{desc} {percentage:3.0f}% ▕{bar}▏ {go_suffix}"


def resolve_mode(mode: str, terminal: Terminal) -> str:
    """The concrete mode for ``--progress``: ``auto`` is ``tty`` on a terminal, else ``plain``.

    >>> import io
    >>> off_a_terminal = Terminal(io.StringIO(), io.StringIO(), io.StringIO())
    >>> resolve_mode("auto", off_a_terminal), resolve_mode("json", off_a_terminal)
    ('plain', 'json')
    """
    if mode not in MODES:
        raise UsageError(f"unknown progress mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    return "tty" if terminal.fancy(terminal.stderr) else "plain"


def eta_text(seconds: float) -> str:
    """A remaining time as the Go CLI's bar shows it: at most two units.

    >>> [eta_text(s) for s in (0, 26.4, 65, 3600, 3900, 360000)]
    ['0s', '26s', '1m5s', '1h0m', '1h5m', '99h+']
    """
    whole = int(seconds + 0.5)
    if whole >= 100 * 3600:
        return "99h+"
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60}m"
    if whole >= 60:
        return f"{whole // 60}m{whole % 60}s"
    return f"{whole}s"


def bar_suffix(completed: int, total: int, rate: float | None) -> str:
    """The right-hand side of a bar: ``cur/total  rate/s  eta`` while running, total when done.

    >>> bar_suffix(907_000_000, 2_019_393_189, 42e6)
    '907 MB/2.0 GB   42 MB/s     26s'
    >>> bar_suffix(2_019_393_189, 2_019_393_189, 42e6).rstrip()
    '2.0 GB'
    """
    if completed >= total:
        return f"{human_bytes(total):>6}" + " " * 25
    text = f"{human_bytes(completed):>6}/{human_bytes(total):>6}"
    if rate and rate > 0:
        remaining = (total - completed) / rate
        return text + f"  {human_bytes(int(rate)):>6}/s  {eta_text(remaining):>6}"
    return text + " " * 18


def event_bar_label(kind: str, event: Mapping[str, Any]) -> str:
    """The label of a digest's bar, as the Go CLI writes it (push and pull ignore the status).

    >>> digest = "sha256:4f058a53051a7df0bb0560ba2d07ee8fb24e60c0b5910101f8955fa1e1948c6c"
    >>> event_bar_label("pull", {"status": "pulling 4f058a53051a", "digest": digest})
    'pulling 4f058a53051a:'
    >>> event_bar_label("push", {"status": "pushing 4f058a53051a", "digest": digest})
    'pushing 4f058a53051a...'
    >>> event_bar_label("create", {"status": "", "digest": digest})
    'pulling 4f058a53051a...'
    """
    digest = str(event.get("digest", "")).strip()
    short = digest.removeprefix("sha256:")[:12]
    if kind == "pull":
        return f"pulling {short}:"
    if kind == "push":
        return f"pushing {short}..."
    return str(event.get("status") or "") or f"pulling {short}..."


def _int(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


class Progress:
    """Turns progress events into output; subclasses decide how (see :func:`open_progress`).

    ``event`` takes a server event; ``status``, ``bar`` and ``notice`` report client-side steps
    (hashing, uploading, retrying) through the same display.
    """

    def __init__(self, kind: str, stream: IO[str]) -> None:
        self.kind = kind
        self.stream = stream
        self._status: str | None = None

    def event(self, event: Mapping[str, Any]) -> None:
        """Show one server event: a bar for events with a digest, else a status line."""
        digest = event.get("digest")
        if digest:
            completed = _int(event.get("completed"))
            if self.kind == "pull" and completed == 0:
                return  # as the Go CLI: no 0 % bars before a layer starts
            label = event_bar_label(self.kind, event)
            self.bar(str(digest), label, completed, _int(event.get("total")))
        elif event.get("status"):
            self.status(str(event["status"]))

    def status(self, text: str) -> None:
        """Show a status line, unless it repeats the previous one."""
        if text != self._status:
            self._status = text
            self._show_status(text)

    def bar(self, key: str, label: str, completed: int, total: int) -> None:
        """Set the bar ``key`` (created on first use, labelled ``label``) to ``completed``."""

    def notice(self, text: str) -> None:
        """A message among the progress (e.g. a retry), shown in every mode but ``none``."""

    def close(self) -> None:
        """Finish the display (leaves finished bars on screen)."""

    def _show_status(self, text: str) -> None:
        """Write a new status line (nothing in mode ``none``)."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _TextLines(Progress):
    """Writes whole lines; the base of the plain and json modes."""

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


@dataclass
class _PlainBar:
    """What plain mode last printed for a bar, and where the bar started."""

    percent: int
    completed: int
    printed_at: float
    started_at: float
    first: int

    def due(self, percent: int, completed: int, now: float) -> bool:
        """Print again: 100 % reached, 10 points more, or new bytes after 10 s."""
        if percent == 100 or percent >= self.percent + PLAIN_STEP_PERCENT:
            return self.percent < 100
        return completed > self.completed and now - self.printed_at >= PLAIN_STEP_SECONDS


class PlainProgress(_TextLines):
    """One line per status and per bar every 10 % or 10 s; no escape codes."""

    def __init__(self, kind: str, stream: IO[str]) -> None:
        super().__init__(kind, stream)
        self._bars: dict[str, _PlainBar] = {}

    def _show_status(self, text: str) -> None:
        self._write(text)

    def bar(self, key: str, label: str, completed: int, total: int) -> None:
        now = time.monotonic()
        percent = 100 if total <= 0 else min(100 * completed // total, 100)
        state = self._bars.get(key)
        if state is None:
            state = self._bars[key] = _PlainBar(percent, completed, now, now, completed)
        elif state.due(percent, completed, now):
            state.percent, state.completed, state.printed_at = percent, completed, now
        else:
            return
        elapsed = now - state.started_at
        rate = (completed - state.first) / elapsed if elapsed > 0 else None
        self._write(f"{label} {percent:3d}% {bar_suffix(completed, max(total, 1), rate).rstrip()}")

    def notice(self, text: str) -> None:
        self._write(text)


class JsonProgress(_TextLines):
    """The server's events as compact JSON lines; client-side steps as events of the same shape."""

    def event(self, event: Mapping[str, Any]) -> None:
        self._write(json.dumps(event, separators=(",", ":"), ensure_ascii=False))

    def _show_status(self, text: str) -> None:
        self.event({"status": text})

    def bar(self, key: str, label: str, completed: int, total: int) -> None:
        self.event({"status": label, "total": total, "completed": completed})

    def notice(self, text: str) -> None:
        self.event({"notice": text})


class TerminalProgress(Progress):
    """tqdm bars laid out like the Go CLI's, redrawn at most every 100 ms."""

    def __init__(self, kind: str, stream: IO[str], terminal: Terminal) -> None:
        super().__init__(kind, stream)
        self.terminal = terminal
        self._bars: dict[str, tqdm] = {}
        self._open: list[tqdm] = []

    def bar(self, key: str, label: str, completed: int, total: int) -> None:
        if total <= 0:  # nothing to transfer: a finished bar
            total = completed = max(completed, 1)
        bar = self._bars.get(key)
        if bar is None:
            bar = _go_bar(label, total, completed, len(self._open), self.terminal)
            self._bars[key] = bar
            self._open.append(bar)
        elif completed != bar.n:
            bar.total = total
            bar.update(min(completed, total) - bar.n)
        if bar.n >= bar.total:
            self._close_finished()

    def _close_finished(self) -> None:
        """Close the finished bars at the top, so they stay on screen, and move the rest up."""
        while self._open and self._open[0].n >= self._open[0].total:
            self._open.pop(0).close()
            for position, bar in enumerate(self._open):
                bar.pos = -position

    def _close_all(self) -> None:
        for bar in self._open:
            bar.pos = 0
            bar.close()
        self._open.clear()

    def _show_status(self, text: str) -> None:
        self._close_all()
        self.stream.write(text + " \n")
        self.stream.flush()

    def notice(self, text: str) -> None:
        if not self._open:
            self.stream.write(text + "\n")
            self.stream.flush()
            return
        from tqdm import tqdm

        tqdm.write(text, file=self.stream)

    def close(self) -> None:
        self._close_all()


def bar_area(terminal: Terminal) -> tuple[int, int]:
    """Usable (columns, lines) for bars on stderr: one less each, as tqdm counts."""
    columns, lines = terminal.size(terminal.stderr)
    return columns - 1, lines - 1


@functools.cache
def _go_bar_class() -> type[tqdm]:
    """tqdm with the Go CLI's right-hand side and the terminal size measured on each redraw."""
    from tqdm import tqdm

    class GoBar(tqdm):  # type: ignore[misc,type-arg]
        monitor_interval = 0  # no monitor thread

        def __init__(self, *args: Any, terminal: Terminal, **kwargs: Any) -> None:
            self.terminal = terminal  # before tqdm draws the bar the first time
            super().__init__(*args, **kwargs)

        @property
        def format_dict(self) -> dict[str, Any]:
            self.ncols, self.nrows = bar_area(self.terminal)  # follows a resized window
            values: dict[str, Any] = super().format_dict
            done, first = int(values["n"]), int(values["initial"] or 0)
            rate = values["rate"]
            if rate is None and values["elapsed"]:
                rate = (done - first) / values["elapsed"]
            values["go_suffix"] = bar_suffix(done, int(values["total"] or 0), rate)
            return values

    return GoBar


def _go_bar(label: str, total: int, initial: int, position: int, terminal: Terminal) -> tqdm:
    """A tqdm bar in the Go layout at a fixed line of stderr below the cursor."""
    columns, lines = bar_area(terminal)
    return _go_bar_class()(
        terminal=terminal,
        total=total,
        initial=min(initial, total),
        desc=label,
        file=terminal.stderr,
        position=position,
        leave=True,
        ascii=" █",
        bar_format=_BAR_FORMAT,
        ncols=columns,
        nrows=lines,
        mininterval=REDRAW_INTERVAL,
        miniters=1,
        smoothing=0.1,
    )


def open_progress(mode: str, kind: str, terminal: Terminal | None = None) -> Progress:
    """The display for ``--progress MODE`` of a pull, push or create, on the terminal's stderr."""
    terminal = terminal or Terminal.system()
    concrete = resolve_mode(mode, terminal)
    if kind not in KINDS:
        raise ValueError(f"unknown progress kind {kind!r}")
    if concrete == "tty":
        return TerminalProgress(kind, terminal.stderr, terminal)
    classes: dict[str, type[Progress]] = {
        "plain": PlainProgress,
        "json": JsonProgress,
        "none": Progress,
    }
    return classes[concrete](kind, terminal.stderr)
