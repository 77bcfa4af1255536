"""Pull progress on a terminal, drawn in-process and read back as a terminal shows it.

The display is redrawn by hand (``tick``) and its clock is fake, so every frame is known:
the Go CLI's bar layout at 100 columns, whole fields dropped at 60 and 40, the spinner
of a status line, Go's rounding and rate, and a window resized between two redraws.
"""

from __future__ import annotations

import io

import pytest

from ollamactl.answer import SPINNER_FRAMES
from ollamactl.progress import TerminalProgress
from ollamactl.terminal import Terminal
from tests.helpers import screen

DIGEST = "sha256:4f058a53051a7df0bb0560ba2d07ee8fb24e60c0b5910101f8955fa1e1948c6c"
SMALL = "sha256:3f8eb4da87fa7a3c9da615036b0dc418d31fef2a30b115ff33562588b32c691d"
TOTAL = 2_019_393_189


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def display(columns: int, rows: int = 24) -> tuple[TerminalProgress, Terminal, Clock]:
    terminal = Terminal(
        io.StringIO(),
        io.StringIO(),
        io.StringIO(),
        stderr_is_tty=True,
        env={"TERM": "xterm"},
        fixed_size=(columns, rows),
    )
    clock = Clock()
    return (
        TerminalProgress("pull", terminal.stderr, terminal, interval=None, clock=clock),
        terminal,
        clock,
    )


def shown(terminal: Terminal) -> list[str]:
    return [line for line in screen(terminal.stderr.getvalue()) if line]  # type: ignore[attr-defined]


def layer(digest: str, completed: int, total: int = TOTAL) -> dict[str, object]:
    return {
        "status": f"pulling {digest[7:19]}",
        "digest": digest,
        "total": total,
        "completed": completed,
    }


def pull_halfway(progress: TerminalProgress, clock: Clock) -> None:
    progress.event({"status": "pulling manifest"})
    progress.event(layer(DIGEST, 1_000_000))
    clock.now += 2
    progress.event(layer(DIGEST, 907_000_000))  # 906 MB in 2 s: 453 MB/s, 2 s left
    progress.tick()


def finish_pull(progress: TerminalProgress) -> None:
    progress.event(layer(DIGEST, TOTAL))
    progress.event(layer(SMALL, 1_400, 1_400))
    for status in ("verifying sha256 digest", "writing manifest", "success"):
        progress.event({"status": status})
    progress.close()


@pytest.mark.parametrize(
    ("columns", "running"),
    [
        (
            100,
            "pulling 4f058a53051a:  45% ▕█████████████████                     ▏ 907 MB/2.0 GB"
            "  453 MB/s      2s",
        ),
        (60, "pulling 4f058a53051a:  45% ▕███     ▏ 907 MB/2.0 GB      2s"),
        (40, "pulling 4f058a53051a:  45%"),
    ],
)
def test_bars_fit_the_terminal_and_keep_what_fits(columns: int, running: str) -> None:
    progress, terminal, clock = display(columns)
    pull_halfway(progress, clock)
    assert shown(terminal) == ["pulling manifest ", running]
    finish_pull(progress)
    lines = shown(terminal)
    assert all(len(line) <= columns - 1 for line in lines), lines
    assert lines[0] == "pulling manifest "
    assert lines[1].startswith("pulling 4f058a53051a: 100%")
    assert lines[-3:] == ["verifying sha256 digest ", "writing manifest ", "success "]
    assert len(lines) == 6
    if columns == 100:  # the Go CLI's line: the width less one, the total in 31 columns
        assert lines[1] == "pulling 4f058a53051a: 100% ▕" + "█" * 38 + "▏ 2.0 GB" + " " * 25


def test_a_status_spins_until_the_next_line_comes() -> None:
    progress, terminal, _ = display(80)
    progress.status("verifying sha256 digest")
    frames = []
    for _ in range(3):
        progress.tick()
        frames.append(shown(terminal)[-1])
    assert frames == [f"verifying sha256 digest {frame} " for frame in SPINNER_FRAMES[1:4]]
    progress.status("writing manifest")
    progress.close()
    assert shown(terminal) == ["verifying sha256 digest ", "writing manifest "]


def test_percent_rounds_as_go_and_the_bar_fills_only_when_done() -> None:
    progress, terminal, _ = display(80)
    total = 104_600_000
    progress.event(layer(DIGEST, total - 200_000, total))
    line = shown(terminal)[-1]
    assert line.startswith("pulling 4f058a53051a: 100% ▕") and "█ ▏" in line, line
    assert "104 MB/104 MB" in line
    progress.event(layer(DIGEST, total, total))
    progress.close()
    assert shown(terminal)[-1].startswith("pulling 4f058a53051a: 100% ▕" + "█" * 18 + "▏ 104 MB ")


def test_a_window_made_narrower_gets_whole_lines() -> None:
    progress, terminal, clock = display(100)
    pull_halfway(progress, clock)
    progress.event(layer(SMALL, 100, 1_400))
    progress.tick()
    terminal.fixed_size = (40, 24)
    clock.now += 1
    progress.event(layer(DIGEST, 1_500_000_000))
    progress.tick()
    assert shown(terminal) == [
        "pulling manifest ",
        "pulling 4f058a53051a:  74%",
        "pulling 3f8eb4da87fa:   7% 100 B/1.4 KB",
    ], "no line keeps the end of its wider drawing"
    terminal.fixed_size = (60, 24)
    finish_pull(progress)
    assert all(len(line) <= 59 for line in shown(terminal))


def test_more_bars_than_rows_end_in_order() -> None:
    progress, terminal, _ = display(80, rows=4)
    digests = [f"sha256:{i:064x}" for i in range(6)]
    for digest in digests:
        progress.event(layer(digest, 10, 100))
    progress.tick()
    assert len(shown(terminal)) <= 6
    for digest in digests:
        progress.event(layer(digest, 100, 100))
    progress.close()
    assert [line[:21] for line in shown(terminal)] == [f"pulling {d[7:19]}:" for d in digests]


def test_a_long_status_is_cut_while_it_spins_and_left_whole_when_done() -> None:
    progress, terminal, _ = display(40)
    status = "using existing layer " + DIGEST
    progress.status(status)
    assert shown(terminal) == [f"{status} {SPINNER_FRAMES[0]} "[:39]]
    progress.status("writing manifest")
    progress.close()
    assert shown(terminal) == [f"{status} ", "writing manifest "], "as the Go CLI prints it"


def test_closing_during_a_transfer_ends_the_line_of_its_bar() -> None:
    progress, terminal, clock = display(80)
    pull_halfway(progress, clock)
    progress.close()  # e.g. Ctrl-C
    output = terminal.stderr.getvalue()  # type: ignore[attr-defined]
    assert output.endswith("\n") and shown(terminal)[-1].startswith("pulling 4f058a53051a:  45%")
