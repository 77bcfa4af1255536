"""What a person sees in a terminal during a pull: Go-style bars, and Ctrl-C."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pexpect
import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import ANSI, spawn

pytestmark = pytest.mark.pty
COLUMNS = 100


@pytest.fixture
def registry() -> Iterator[OllamaTestServer]:
    """A server whose registry has a four-layer model ``big``."""
    with OllamaTestServer() as server:
        server.add_registry_model("big:latest", [2_019_393_189, 1_400, 7_700, 96])
        yield server


def screen_lines(output: str) -> list[str]:
    """The lines left on screen: each carriage return redraws its line, escapes removed."""
    return [ANSI.sub("", line.split("\r")[-1]) for line in output.replace("\r\n", "\n").split("\n")]


def test_pull_draws_go_style_bars_on_a_terminal(registry: OllamaTestServer) -> None:
    registry.pull_steps = 8
    registry.pull_delay = 0.01
    child = spawn(registry, "pull", "big", dimensions=(24, COLUMNS))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    lines = [line for line in screen_lines(child.before) if line]
    assert lines[0] == "pulling manifest "
    assert lines[-3:] == ["verifying sha256 digest ", "writing manifest ", "success "]
    bars = lines[1:-3]
    assert len(bars) == 4
    for line, size in zip(bars, ("2.0 GB", "1.4 KB", "7.7 KB", "  96 B")):
        assert re.fullmatch(rf"pulling [0-9a-f]{{12}}: 100% ▕█+▏ {size} {{25}}", line), line
        assert len(line) == COLUMNS - 1, "as the Go CLI: the width less one column"
    running = re.search(r"pulling [0-9a-f]{12}:  \d\d% ▕█* +▏ .{6}/2\.0 GB", child.before)
    assert running, "a bar in progress shows current/total"


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
