"""Completion in the real shells: bash, zsh and fish load completions/ and complete names.

Names such as ``gemma3:12b`` are the hard part: bash splits words at ``:``
(COMP_WORDBREAKS), so the candidates must fit what readline replaces.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from ollamactl.config import config_path
from tests.fake_ollama import OllamaTestServer
from tests.helpers import require_program

pytestmark = pytest.mark.shell
ROOT = Path(__file__).resolve().parent.parent
BASH_SCRIPT = ROOT / "completions" / "ollamactl.bash"
ZSH_SCRIPT = ROOT / "completions" / "_ollamactl"
FISH_SCRIPT = ROOT / "completions" / "ollamactl.fish"


@pytest.fixture
def zsh() -> str:
    """The zsh program (skipped without it, failed under OLLAMACTL_TEST_STRICT)."""
    found = shutil.which("zsh")
    require_program(found, "zsh is not installed (apt-get install zsh; .ci/run installs it)")
    return str(found)


@pytest.fixture
def fish() -> str:
    """The fish program (skipped without it, failed under OLLAMACTL_TEST_STRICT)."""
    found = shutil.which("fish")
    require_program(found, "fish is not installed (apt-get install fish; .ci/run installs it)")
    return str(found)


@pytest.fixture
def shell_env(server: OllamaTestServer, tmp_path: Path) -> dict[str, str]:
    """An environment where `ollamactl` runs this checkout against the test server."""
    server.add_model("gemma3:4b")
    path = config_path()  # two profiles, none of them the default: OLLAMA_HOST still applies
    path.parent.mkdir(parents=True)
    path.write_text(f'[profiles.gpu]\nhost = "{server.url}"\n[profiles.laptop]\nhost = "x:1"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "ollamactl"
    launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m ollamactl "$@"\n')
    launcher.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "OLLAMA_HOST": server.url,
        "TERM": "dumb",
        "PS1": "$ ",
        "INPUTRC": "/dev/null",
        "ZDOTDIR": str(tmp_path),
    }


@pytest.mark.parametrize(
    ("line", "words", "expected"),
    [
        ("ollamactl rm gem", ["ollamactl", "rm", "gem"], ["gemma3:4b", "gemma3:12b"]),
        # bash has split the word at ':'; readline replaces only what follows it
        ("ollamactl rm gemma3:1", ["ollamactl", "rm", "gemma3", ":", "1"], ["12b"]),
        ("ollamactl rm gemma3:", ["ollamactl", "rm", "gemma3", ":"], ["4b", "12b"]),
        ("ollamactl --profile=", ["ollamactl", "--profile", "="], ["gpu", "laptop"]),
        ("ollamactl --profile=l", ["ollamactl", "--profile", "=", "l"], ["laptop"]),
    ],
)
def test_bash_completion_function(
    shell_env: dict[str, str], line: str, words: list[str], expected: list[str]
) -> None:
    script = f"""
        source {shlex.quote(str(BASH_SCRIPT))}
        COMP_LINE={shlex.quote(line)}
        COMP_POINT=${{#COMP_LINE}}
        COMP_WORDS=({" ".join(map(shlex.quote, words))})
        COMP_CWORD={len(words) - 1}
        _ollamactl_completion ollamactl
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stderr == ""
    assert sorted(done.stdout.split()) == sorted(expected)


def type_and_run(shell: pexpect.spawn, keys: list[str]) -> str:
    """Type ``keys`` (TAB completes), press Enter, and return what the command printed."""
    for key in keys:
        shell.send(key)
    shell.send("\r")
    shell.expect(r"would delete '([^']*)'")
    return str(shell.match.group(1))


@pytest.mark.pty
def test_bash_readline_completes_names_with_a_colon(shell_env: dict[str, str]) -> None:
    bash = pexpect.spawn(
        "bash", ["--norc", "--noprofile", "-i"], env=shell_env, encoding="utf-8", timeout=20
    )
    try:
        bash.sendline(f"source {shlex.quote(str(BASH_SCRIPT))}")
        # `gem` extends to the common prefix `gemma3:`, then `1` picks gemma3:12b
        assert type_and_run(bash, ["ollamactl rm --dry-run gem\t", "1\t"]) == "gemma3:12b"
        assert type_and_run(bash, ["ollamactl rm --dry-run 'gemma3:4\t"]) == "gemma3:4b"
        assert type_and_run(bash, ["ollamactl rm --dry-run nom\t"]) == "nomic-embed-text:latest"
    finally:
        bash.close(force=True)


@pytest.mark.pty
def test_zsh_completes_names_with_a_colon(shell_env: dict[str, str], zsh: str) -> None:
    shell = pexpect.spawn(zsh, ["-f", "-i"], env=shell_env, encoding="utf-8", timeout=20)
    try:
        shell.sendline(
            f"autoload -Uz compinit && compinit -u -D && source {shlex.quote(str(ZSH_SCRIPT))}"
        )
        shell.send("ollamactl rm --dry-run gem\t\t")  # the prefix gemma3:, then the list
        shell.expect(r"gemma3:(12b|4b) +gemma3:(12b|4b)")
        assert type_and_run(shell, ["1\t"]) == "gemma3:12b"
        assert type_and_run(shell, ["ollamactl rm --dry-run nom\t"]) == "nomic-embed-text:latest"
    finally:
        shell.close(force=True)


def fish_completions(fish: str, shell_env: dict[str, str], line: str) -> list[str]:
    """What fish offers for ``line`` (its own completion engine, ``complete -C``)."""
    script = f"source {shlex.quote(str(FISH_SCRIPT))}; complete -C {shlex.quote(line)}"
    done = subprocess.run(
        [fish, "--no-config", "-c", script],
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stderr) == (0, "")
    return [candidate.split("\t")[0] for candidate in done.stdout.splitlines()]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ollamactl vers", ["version"]),
        ("ollamactl rm gem", ["gemma3:12b", "gemma3:4b"]),
        ("ollamactl rm gemma3:1", ["gemma3:12b"]),
        ("ollamactl --profile l", ["laptop"]),
        ("ollamactl --host x show nom", []),  # x does not answer: no names, no error
    ],
)
def test_fish_completes_commands_and_model_names(
    fish: str, shell_env: dict[str, str], line: str, expected: list[str]
) -> None:
    assert sorted(fish_completions(fish, shell_env, line)) == expected


def test_fish_completes_options_with_their_descriptions(
    fish: str, shell_env: dict[str, str]
) -> None:
    script = f"source {shlex.quote(str(FISH_SCRIPT))}; complete -C 'ollamactl run --verb'"
    done = subprocess.run(
        [fish, "--no-config", "-c", script],
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.startswith("--verbose\t") and "\n" not in done.stdout.rstrip("\n")


def test_bash_and_zsh_complete_a_command_name(shell_env: dict[str, str], zsh: str) -> None:
    bash = pexpect.spawn(
        "bash", ["--norc", "--noprofile", "-i"], env=shell_env, encoding="utf-8", timeout=20
    )
    try:
        bash.sendline(f"source {shlex.quote(str(BASH_SCRIPT))}")
        bash.send("ollamactl vers\t --help\r")
        bash.expect("Usage: ollamactl version")
    finally:
        bash.close(force=True)
    shell = pexpect.spawn(zsh, ["-f", "-i"], env=shell_env, encoding="utf-8", timeout=20)
    try:
        # no compinit first: the script loads it when compdef is missing (a stock zsh)
        shell.sendline(f"source {shlex.quote(str(ZSH_SCRIPT))}")
        shell.send("ollamactl vers\t --help\r")
        shell.expect("Usage: ollamactl version")
    finally:
        shell.close(force=True)
