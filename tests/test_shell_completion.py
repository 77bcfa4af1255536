"""Completion in the real shells: bash, zsh and fish load completions/ and complete names.

Names such as ``gemma3:12b`` are the hard part: bash splits words at ``:``
(COMP_WORDBREAKS), so the candidates must fit what readline replaces. Each set-up that
docs/configuration.md gives is run as written there, in a stock shell with an empty home.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pytest

from ollamactl.config import config_path
from ollamactl.conversations import Conversation, ConversationStore
from tests.fake_ollama import OllamaTestServer
from tests.helpers import require_program

pytestmark = pytest.mark.shell
ROOT = Path(__file__).resolve().parent.parent
BASH_SCRIPT = ROOT / "completions" / "ollamactl.bash"
ZSH_SCRIPT = ROOT / "completions" / "_ollamactl"
FISH_SCRIPT = ROOT / "completions" / "ollamactl.fish"
SETUP_DOC = ROOT / "docs" / "configuration.md"
#: The bash-completion package's loader, and the default ~/.bashrc of Debian that loads it.
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")
SKELETON_BASHRC = Path("/etc/skel/.bashrc")


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


def write_launcher(folder: Path) -> None:
    """``ollamactl`` in ``folder``: this checkout, or with $ECHO_ARGS set, its arguments in []."""
    launcher = folder / "ollamactl"
    launcher.write_text(
        "#!/bin/sh\n"
        'if [ -n "$ECHO_ARGS" ] && [ -z "$_OLLAMACTL_COMPLETE" ]; then\n'
        "    printf '[%s]' \"$@\"; echo; exit 0\n"
        "fi\n"
        f'exec {shlex.quote(sys.executable)} -m ollamactl "$@"\n'
    )
    launcher.chmod(0o755)


@pytest.fixture
def shell_env(server: OllamaTestServer, tmp_path: Path) -> dict[str, str]:
    """An environment where `ollamactl` runs this checkout against the test server."""
    server.add_model("gemma3:4b")
    path = config_path()  # two profiles, none of them the default: OLLAMA_HOST still applies
    path.parent.mkdir(parents=True)
    path.write_text(f'[profiles.gpu]\nhost = "{server.url}"\n[profiles.laptop]\nhost = "x:1"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_launcher(bin_dir)
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


def run_bash_completion(
    shell_env: dict[str, str], line: str, words: list[str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Call the committed bash function as readline would for ``line`` (split into ``words``)
    and print COMPREPLY, one candidate a line (compopt works only inside readline: a no-op)."""
    script = f"""
        source {shlex.quote(str(BASH_SCRIPT))}
        compopt() {{ :; }}
        COMP_LINE={shlex.quote(line)}
        COMP_POINT=${{#COMP_LINE}}
        COMP_WORDS=({" ".join(map(shlex.quote, words))})
        COMP_CWORD={len(words) - 1}
        _ollamactl_completion ollamactl
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
    )


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
    done = run_bash_completion(shell_env, line, words)
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


# -- file names, schemas after @, conversation IDs ------------------------------------------


@pytest.fixture
def work_folder(tmp_path: Path) -> Path:
    """A current folder with an image, schemas, and a saved conversation in the data dir."""
    work = tmp_path / "work"
    (work / "photos").mkdir(parents=True)
    (work / "photos" / "cat.png").write_bytes(b"png")
    (work / "schemas").mkdir()
    (work / "schemas" / "answer.json").write_text("{}")
    conversation = Conversation(id="3fa9c1", model="tiny:latest")
    conversation.messages.append({"role": "user", "content": "Why is the sky blue?"})
    ConversationStore().save(conversation)
    return work


def start_shell(name: str, env: dict[str, str], cwd: Path) -> pexpect.spawn:
    """bash, zsh or fish without the user's start-up files, with completions/ loaded."""
    argv, script = {
        "bash": (["bash", "--norc", "--noprofile", "-i"], BASH_SCRIPT),
        "zsh": (["zsh", "-f", "-i"], ZSH_SCRIPT),
        "fish": (["fish", "--no-config", "-i"], FISH_SCRIPT),
    }[name]
    found = shutil.which(argv[0])
    require_program(found, f"{name} is not installed (apt-get install {name})")
    shell = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=20, cwd=cwd)
    shell.sendline(f"source {shlex.quote(str(script))}")
    wait_for_prompt(shell)
    return shell


def wait_for_prompt(shell: pexpect.spawn) -> None:
    """Wait until the shell has run what was sent so far (its echo differs from the output)."""
    shell.sendline("echo RE''ADY")
    shell.expect("READY")


def completed_arguments(shell: pexpect.spawn, keys: str) -> str:
    """Type ``keys`` (TAB completes), press Enter; the arguments as the launcher echoes them."""
    shell.send(keys + "\r")
    shell.expect(r"\n(\[[^\r\n]*\])\r?\n")
    return str(shell.match.group(1))


@pytest.mark.pty
@pytest.mark.parametrize("name", ["bash", "zsh", "fish"])
def test_file_names_schemas_and_conversations_complete_in_each_shell(
    shell_env: dict[str, str], work_folder: Path, name: str
) -> None:
    shell = start_shell(name, {**shell_env, "ECHO_ARGS": "1"}, work_folder)
    try:
        typed = completed_arguments(shell, "ollamactl run tiny -i photos/c\t")
        assert typed.endswith("[-i][photos/cat.png]")
        typed = completed_arguments(shell, "ollamactl run tiny --format @sch\t\t")
        assert typed.endswith("[--format][@schemas/answer.json]")  # no space after the folder
        assert completed_arguments(shell, "ollamactl chat show 3f\t") == "[chat][show][3fa9c1]"
    finally:
        shell.close(force=True)


def test_bash_keeps_the_at_of_a_schema_file(shell_env: dict[str, str], work_folder: Path) -> None:
    """``@`` breaks words in bash but stays in the word readline replaces (a special prefix)."""
    words = ["ollamactl", "run", "tiny", "--format", "@", "sch"]
    done = run_bash_completion(shell_env, "ollamactl run tiny --format @sch", words, work_folder)
    assert (done.stdout, done.stderr) == ("@schemas/\n", "")


# -- the set-ups of docs/configuration.md, in stock shells ----------------------------------


@dataclass
class SetUp:
    """One shell's set-up as the docs give it: commands to run once, lines for its rc files."""

    shell: str
    title: str
    commands: list[str] = field(default_factory=list)
    rc_lines: dict[str, list[str]] = field(default_factory=dict)

    @property
    def needs_bash_completion(self) -> bool:
        return "bash-completion" in self.title


def documented_setups() -> list[SetUp]:
    """Every set-up in the code blocks of the docs' "Shell completion" section.

    A comment ``# SHELL...: add to ~/FILE`` or ``...: run once`` starts one; a later
    comment with ``add to ~/FILE`` sends the lines after it to that file.
    """
    text = SETUP_DOC.read_text()
    section = text[text.index("## Shell completion") :]
    setups: list[SetUp] = []
    target: str | None = None
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        for line in filter(str.strip, block.splitlines()):
            if line.startswith("#"):
                started = re.match(r"# (bash|zsh|fish)\b", line)
                if started:
                    setups.append(SetUp(started.group(1), line))
                rc_file = re.search(r"add to (~/\S+)", line)
                target = rc_file.group(1) if rc_file else None if "run once" in line else target
            elif target:
                setups[-1].rc_lines.setdefault(target, []).append(line)
            else:
                setups[-1].commands.append(line)
    return setups


@pytest.mark.pty
@pytest.mark.parametrize(
    "setup", documented_setups(), ids=lambda s: f"{s.shell}-{'file' if s.commands else 'rc'}"
)
def test_each_documented_setup_completes_in_a_stock_shell(
    shell_env: dict[str, str], tmp_path: Path, setup: SetUp
) -> None:
    program = shutil.which(setup.shell)
    require_program(program, f"{setup.shell} is not installed (apt-get install {setup.shell})")
    home = tmp_path / "stock-home"
    home.mkdir()
    env = {k: v for k, v in shell_env.items() if not k.startswith(("XDG_", "ZDOTDIR", "PS1"))}
    env |= {"HOME": str(home), "INPUTRC": "/etc/inputrc"}
    if setup.needs_bash_completion:
        loads = SKELETON_BASHRC.is_file() and "bash_completion" in SKELETON_BASHRC.read_text()
        require_program(
            BASH_COMPLETION.is_file() and loads,
            "the bash-completion package is not installed (apt-get install bash-completion)",
        )
        shutil.copy(SKELETON_BASHRC, home / ".bashrc")
    for command in setup.commands:
        done = subprocess.run(
            [str(program), "-c", command], env=env, cwd=home, capture_output=True, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)
    for rc_file, lines in setup.rc_lines.items():
        path = home / rc_file.removeprefix("~/")
        with path.open("a") as rc:
            rc.write("".join(f"{line}\n" for line in lines))
    shell = pexpect.spawn(str(program), ["-i"], env=env, encoding="utf-8", timeout=20, cwd=home)
    try:
        wait_for_prompt(shell)
        shell.send("ollamactl vers\t --help\r")
        shell.expect("Usage: ollamactl version")
        wait_for_prompt(shell)
        assert type_and_run(shell, ["ollamactl rm --dry-run nom\t"]) == "nomic-embed-text:latest"
    finally:
        shell.close(force=True)
