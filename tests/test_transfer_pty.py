"""What a person sees in a terminal during a pull: Go-style bars, narrow and resized
windows, and Ctrl-C."""

from __future__ import annotations

import io
import itertools
import re
import threading
from collections.abc import Iterator

import pexpect
import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import screen, spawn

pytestmark = pytest.mark.pty
COLUMNS = 100


@pytest.fixture
def registry() -> Iterator[OllamaTestServer]:
    """A server whose registry has a four-layer model ``big``."""
    with OllamaTestServer() as server:
        server.add_registry_model("big:latest", [2_019_393_189, 1_400, 7_700, 96])
        yield server


def screen_lines(output: str) -> list[str]:
    """The lines left on screen (redraws followed), empty ones left out."""
    return [line for line in screen(output) if line]


def pull(registry: OllamaTestServer, columns: int) -> list[str]:
    """Pull ``big`` in a terminal ``columns`` wide; the lines left on screen."""
    child = spawn(registry, "pull", "big", dimensions=(24, columns))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return screen_lines(child.before)


def test_pull_draws_go_style_bars_on_a_terminal(registry: OllamaTestServer) -> None:
    registry.pull_steps = 8
    registry.pull_delay = 0.01
    child = spawn(registry, "pull", "big", dimensions=(24, COLUMNS))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    lines = screen_lines(child.before)
    assert lines[0] == "pulling manifest "
    assert lines[-3:] == ["verifying sha256 digest ", "writing manifest ", "success "]
    bars = lines[1:-3]
    assert len(bars) == 4
    for line, size in zip(bars, ("2.0 GB", "1.4 KB", "7.7 KB", "  96 B")):
        assert re.fullmatch(rf"pulling [0-9a-f]{{12}}: 100% ▕█+▏ {size} {{25}}", line), line
        assert len(line) == COLUMNS - 1, "as the Go CLI: the width less one column"
    running = re.search(r"pulling [0-9a-f]{12}:  \d\d% ▕█* +▏ .{6}/2\.0 GB", child.before)
    assert running, "a bar in progress shows current/total"


@pytest.mark.parametrize("columns", [60, 40])
def test_a_narrow_terminal_gets_whole_lines(registry: OllamaTestServer, columns: int) -> None:
    lines = pull(registry, columns)
    assert all(len(line) < columns for line in lines), lines
    assert lines[0] == "pulling manifest " and lines[-1] == "success "
    bar = "▕█+▏ 2.0 GB" if columns == 60 else "2.0 GB"  # at 40 columns no bar fits
    assert re.fullmatch(rf"pulling [0-9a-f]{{12}}: 100% {bar} *", lines[1]), lines[1]


def test_a_window_resized_during_a_pull_keeps_whole_lines(registry: OllamaTestServer) -> None:
    count, resized, pause = itertools.count(), threading.Event(), registry._pause

    def held(seconds: float) -> None:  # the third event waits for the new size
        if next(count) == 2:
            resized.wait(10)
        pause(seconds)

    registry._pause = held  # type: ignore[method-assign]
    child = spawn(registry, "pull", "big", dimensions=(24, COLUMNS))
    child.logfile_read = received = io.StringIO()
    child.expect(r"pulling [0-9a-f]{12}:  \d\d% ▕")
    child.setwinsize(24, 40)
    resized.set()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    lines = screen_lines(received.getvalue())
    assert all(len(line) < 40 for line in lines), lines
    assert lines[0] == "pulling manifest " and len(lines) == 8


def test_ctrl_c_during_a_pull_exits_130_and_says_the_download_may_resume(
    registry: OllamaTestServer,
) -> None:
    registry.pull_steps = 200
    registry.pull_delay = 0.05
    child = spawn(registry, "pull", "big", dimensions=(24, COLUMNS))
    child.expect(r"pulling [0-9a-f]{12}: ")
    child.sendintr()
    child.expect_exact("the server may keep the partial download of big")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "Traceback" not in child.before
    assert "big:latest" not in registry.models
