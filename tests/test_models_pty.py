"""What a person sees in a terminal for model management: rm asks before deleting."""

from __future__ import annotations

import pexpect
import pytest

from tests.fake_ollama import OllamaTestServer
from tests.helpers import spawn

pytestmark = pytest.mark.pty


def test_rm_on_a_terminal_asks_and_no_keeps_the_model(server: OllamaTestServer) -> None:
    child = spawn(server, "rm", "tiny*")
    child.expect_exact("Delete 'tiny:latest'? [y/N]: ")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert "tiny:latest" in server.models


def test_rm_on_a_terminal_deletes_after_yes(server: OllamaTestServer) -> None:
    child = spawn(server, "rm", "gemma3:12b")
    child.expect_exact("[y/N]: ")
    child.sendline("y")
    child.expect_exact("deleted 'gemma3:12b'")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "gemma3:12b" not in server.models


def test_rm_yes_flag_does_not_ask(server: OllamaTestServer) -> None:
    child = spawn(server, "rm", "-y", "tiny")
    child.expect_exact("deleted 'tiny'")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
