"""Progress of pull, push, create and blob uploads on stderr, in four modes.

- ``tty``: bars in the Go CLI's layout (``pulling 4f058a53051a:  45% ▕███   ▏ 907 MB/2.0 GB
  42 MB/s  26s``), narrowed by whole fields on a narrow terminal, and status lines with a
  spinner until the next one (``pulling manifest ⠼``), redrawn every 100 ms as Go does;
- ``plain``: no escape codes; one line per status change and per bar at most every 10 % or 10 s;
- ``json``: every server event as one compact JSON line (client-side steps as events too);
- ``none``: nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from ollamactl.answer import SPINNER_FRAMES, char_width
from ollamactl.errors import UsageError
from ollamactl.render import human_bytes
from ollamactl.terminal import Terminal, sanitise

MODES = ("auto", "tty", "plain", "json", "none")
KINDS = ("pull", "push", "create")
#: Seconds between two redraws of a terminal bar (the Go CLI redraws every 100 ms).
REDRAW_INTERVAL = 0.1
#: Plain mode prints a bar's line again after this much progress or this many seconds.
PLAIN_STEP_PERCENT = 10
PLAIN_STEP_SECONDS = 10.0
#: The fewest cells a terminal bar gets; fields of its line are dropped to keep them.
MIN_CELLS = 8
ERASE_TO_END = "\x1b[K"
#: Around each redraw: synchronized output (no flicker where supported), cursor hidden.
REDRAW_START = "\x1b[?2026h\x1b[?25l"
REDRAW_END = "\x1b[?25h\x1b[?2026l"


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
    """A remaining time as the Go CLI's bar shows it: whole seconds down, at most two units.

    >>> [eta_text(s) for s in (0, 26.9, 65, 3600, 3900, 360000)]
    ['0s', '26s', '1m5s', '1h0m', '1h5m', '99h+']
    """
    whole = int(seconds)
    if whole >= 100 * 3600:
        return "99h+"
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60}m"
    if whole >= 60:
        return f"{whole // 60}m{whole % 60}s"
    return f"{whole}s"


def bar_suffixes(completed: int, total: int, rate: float | None) -> tuple[str, str, str]:
    """The right-hand side of a bar, in three widths: Go's ``cur/total  rate/s  eta``
    (31 columns), without the rate, and the sizes alone; a finished bar shows its total.

    >>> bar_suffixes(907_000_000, 2_019_393_189, 42e6)
    ('907 MB/2.0 GB   42 MB/s     26s', '907 MB/2.0 GB     26s', '907 MB/2.0 GB')
    >>> [len(s) for s in bar_suffixes(2_019_393_189, 2_019_393_189, 42e6)]
    [31, 21, 13]
    """
    if completed >= total:
        size = f"{human_bytes(total):>6}"
        return size.ljust(31), size.ljust(21), size.ljust(13)
    sizes = f"{human_bytes(completed):>6}/{human_bytes(total):>6}"
    if not rate or rate <= 0:
        return sizes + " " * 18, sizes + " " * 8, sizes
    left = f"  {eta_text((total - completed) / rate):>6}"
    return sizes + f"  {human_bytes(int(rate)):>6}/s" + left, sizes + left, sizes


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
        event = {key: sanitise(v) if isinstance(v, str) else v for key, v in event.items()}
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
        suffix = bar_suffixes(completed, max(total, 1), rate)[0].rstrip()
        self._write(f"{label} {percent:3d}% {suffix}")

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


class _Line:
    """A line of the terminal display: final once ``done`` (it is then never drawn again)."""

    done = False

    def text(self, columns: int, frame: str) -> str:
        """The line in at most ``columns`` columns; ``frame`` is the spinner's current one."""
        raise NotImplementedError


class _StatusLine(_Line):
    """A status with a spinner after it until something follows it (Go's Spinner)."""

    def __init__(self, status: str) -> None:
        self.status = status

    def text(self, columns: int, frame: str) -> str:
        return f"{self.status} " if self.done else f"{self.status} {frame} "


class _NoticeLine(_Line):
    """A message among the progress: drawn once, as it is."""

    done = True

    def __init__(self, message: str) -> None:
        self.message = message

    def text(self, columns: int, frame: str) -> str:
        return self.message


class _BarLine(_Line):
    """A transfer's bar, with Go's rate: at most one sample a second, the last ten kept."""

    def __init__(self, label: str, completed: int, total: int, now: float) -> None:
        self.label = label
        self.total = total
        self.first = self.completed = min(completed, total)
        self.started = now
        self.stopped: float | None = now if self.completed >= total else None
        self.samples: list[tuple[float, int]] = []

    @property
    def done(self) -> bool:  # type: ignore[override]
        return self.stopped is not None

    def set(self, completed: int, total: int, now: float) -> None:
        """Move the bar to ``completed`` of ``total`` at time ``now``."""
        self.total = total
        self.completed = min(completed, total)
        if self.completed >= total and self.stopped is None:
            self.stopped = now
        if not self.samples or now - self.samples[-1][0] > 1:
            self.samples = [*self.samples[-9:], (now, self.completed)]

    def rate(self) -> float:
        """Bytes a second as the Go CLI reckons them (whole seconds; 0 before there are any)."""
        if self.stopped is not None:
            done, seconds = self.completed - self.first, self.stopped - self.started
        elif len(self.samples) == 1:
            done, seconds = self.samples[0][1] - self.first, self.samples[0][0] - self.started
        elif self.samples:
            (first_time, first), (last_time, last) = self.samples[0], self.samples[-1]
            done, seconds = last - first, last_time - first_time
        else:
            return 0.0
        whole = round(seconds)
        return done / whole if whole else 0.0

    def text(self, columns: int, frame: str) -> str:
        return bar_text(self.label, self.completed, self.total, self.rate(), columns)


def bar_text(label: str, completed: int, total: int, rate: float, columns: int) -> str:
    """A bar's line in ``columns`` columns: the Go CLI's layout, narrowed by whole fields.

    Where Go's bar would have fewer than MIN_CELLS cells, the rate goes first, then the time
    left; then the bar, then the sizes (Go's line overflows the terminal instead).

    >>> bar_text("pulling 4f058a53051a:", 907_000_000, 2_019_393_189, 42e6, 79)
    'pulling 4f058a53051a:  45% ▕████████          ▏ 907 MB/2.0 GB   42 MB/s     26s'
    >>> bar_text("pulling 4f058a53051a:", 907_000_000, 2_019_393_189, 42e6, 59)
    'pulling 4f058a53051a:  45% ▕███     ▏ 907 MB/2.0 GB     26s'
    >>> bar_text("pulling 4f058a53051a:", 907_000_000, 2_019_393_189, 42e6, 39)
    'pulling 4f058a53051a:  45%'
    """
    percent = 100 * completed / total if total > 0 else 0.0
    head = f"{label} {percent:3.0f}%"
    suffixes = bar_suffixes(completed, total, rate)
    for suffix in suffixes:
        cells = columns - len(head) - len(suffix) - 4  # " ▕" and "▏ "
        if cells >= MIN_CELLS:
            filled = int(cells * percent / 100)
            return f"{head} ▕{'█' * filled}{' ' * (cells - filled)}▏ {suffix}"
    sizes = f"{head} {suffixes[-1].strip()}"
    return head if len(head) <= columns < len(sizes) else sizes  # cut where it is redrawn


class TerminalProgress(Progress):
    """The Go CLI's display: status lines with a spinner and bars, redrawn every 100 ms.

    The lines still changing (the region) are redrawn together by :meth:`tick`, from a
    thread every ``interval`` seconds (``None``: only when called): the cursor goes up to
    the region's first line, and each line is erased to its end and never wider than the
    terminal, whose size is read at every redraw, so a resized window gets whole lines.
    Finished lines at the top of the region stay on screen as they are.
    """

    def __init__(
        self,
        kind: str,
        stream: IO[str],
        terminal: Terminal,
        *,
        interval: float | None = REDRAW_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(kind, stream)
        self.terminal = terminal
        self.interval = interval
        self.clock = clock
        self._lines: list[_Line] = []  # the region, top to bottom
        self._bars: dict[str, _BarLine] = {}
        self._rows = 0  # rows of the region on screen; the cursor is at the end of the last
        self._frame = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def bar(self, key: str, label: str, completed: int, total: int) -> None:
        if total <= 0:  # nothing to transfer: a finished bar
            total = completed = max(completed, 1)
        with self._lock:
            bar = self._bars.get(key)
            if bar is None:
                self._add(_BarLine(label, completed, total, self.clock()), key)
            else:
                bar.set(completed, total, self.clock())

    def _show_status(self, text: str) -> None:
        with self._lock:
            self._add(_StatusLine(text))

    def notice(self, text: str) -> None:
        with self._lock:
            self._add(_NoticeLine(text))

    def _add(self, line: _Line, key: str | None = None) -> None:
        """Append a line to the region (a status before it stops spinning) and draw it."""
        for earlier in self._lines:
            if isinstance(earlier, _StatusLine):
                earlier.done = True
        self._lines.append(line)
        if isinstance(line, _BarLine) and key is not None:
            self._bars[key] = line
        self._redraw()  # a new line shows at once, its changes at the next tick
        interval = self.interval
        if interval is not None and self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._tick_often, args=(interval,))
            self._thread.daemon = True
            self._thread.start()

    def _tick_often(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.tick()

    def tick(self) -> None:
        """Turn the spinner one frame and redraw."""
        with self._lock:
            self._frame += 1
            self._redraw()

    def _redraw(self) -> None:
        """Draw the region over its last drawing (the caller holds the lock).

        Finished lines at its top are drawn a last time, whole (a long one may wrap, as
        nothing goes back over it), and leave the region; of the others, as many as the
        terminal has rows, each cut to its width. With none left, the cursor waits at the
        start of the next line.
        """
        columns, rows = self.terminal.size(self.stream)
        finished = 0
        while finished < len(self._lines) and self._lines[finished].done:
            finished += 1
        active = self._lines[finished:][-max(rows - 1, 1) :]
        if not finished and not active:
            return
        frame = SPINNER_FRAMES[self._frame % len(SPINNER_FRAMES)]
        texts = [line.text(columns - 1, frame) for line in self._lines[:finished]]
        texts += [cut(line.text(columns - 1, frame), columns - 1) for line in active]
        up = f"\x1b[{self._rows - 1}A" if self._rows > 1 else ""
        body = "\n".join(text + ERASE_TO_END for text in texts) + ("" if active else "\n")
        self.stream.write(f"{REDRAW_START}{up}\r{body}{REDRAW_END}")
        self.stream.flush()
        del self._lines[:finished]
        self._rows = len(active)

    def close(self) -> None:
        """Stop the spinner and the redraws, draw the last state and end its line (as Go)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            for line in self._lines:
                if isinstance(line, _StatusLine):
                    line.done = True
            self._redraw()
            if self._lines:  # unfinished bars (Ctrl-C, an error): end their last line
                self.stream.write("\n")
                self.stream.flush()
            self._lines.clear()
            self._rows = 0


def cut(text: str, columns: int) -> str:
    """``text`` in at most ``columns`` terminal columns (wide characters count two).

    >>> cut("pulling 日本", 10), cut("short", 10)
    ('pulling 日', 'short')
    """
    if len(text) <= columns // 2:
        return text
    used = 0
    for index, char in enumerate(text):
        used += char_width(char)
        if used > columns:
            return text[:index]
    return text


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
