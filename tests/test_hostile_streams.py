"""Issue 13, streams and files that are not what they seem: a full disk or closed descriptors for
stdout, stdin and stderr, a reader that stops early (``| head -c 10``), endless devices and
FIFOs given as files, signals mid-answer, a permissive umask, and a kill at the atomic rename.

Through the real CLI (a subprocess with bounded time and memory). Expected: a documented exit
code with one clean ``Error:`` line and no traceback, nothing lost silently, and an end within
the bound; a broken pipe ends quietly.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fake_ollama import OllamaTestServer
from tests.fault_proxy import (
    Outcome,
    assert_clean_error,
    run_ollamactl,
    start_ollamactl,
    wait_bounded,
)
from tests.gateway import read_until
from tests.helpers import DOCUMENTED_EXIT_CODES, saved_chats

FAILURES = DOCUMENTED_EXIT_CODES - {0}
#: ``python -c`` that runs ``python -m ollamactl ARGS`` but is killed (SIGKILL) at the first
#: rename of a file into place: a crash at the worst moment of an atomic write.
KILL_AT_RENAME = (
    "import os, runpy, signal, sys\n"
    "def die(*args, **kwargs):\n"
    "    os.kill(os.getpid(), signal.SIGKILL)\n"
    "os.replace = os.rename = die\n"
    "sys.argv[0] = 'ollamactl'\n"
    "runpy.run_module('ollamactl', run_name='__main__', alter_sys=True)\n"
)


def data_folder() -> Path:
    """ollamactl's data folder in the test's environment ($XDG_DATA_HOME/ollamactl)."""
    return Path(os.environ["XDG_DATA_HOME"], "ollamactl")


def config_folder() -> Path:
    return Path(os.environ["OLLAMACTL_CONFIG_DIR"])


# -- stdout, stdin, stderr --------------------------------------------------------------------

COMMAND_LINES = {"list": ("list",), "run": ("run", "tiny", "Say hello")}


@pytest.mark.parametrize("args", COMMAND_LINES.values(), ids=list(COMMAND_LINES))
def test_stdout_on_a_full_disk_is_a_clean_error(
    server: OllamaTestServer, args: tuple[str, ...]
) -> None:
    with open("/dev/full", "wb") as full:
        outcome = run_ollamactl("--host", server.url, *args, stdout=full)
    assert_clean_error(outcome, FAILURES)


@pytest.mark.parametrize("args", COMMAND_LINES.values(), ids=list(COMMAND_LINES))
def test_a_closed_stdout_is_a_clean_error_not_silent_success(
    server: OllamaTestServer, args: tuple[str, ...]
) -> None:
    """``>&-``: the data cannot be written, which is not a success."""
    outcome = run_ollamactl("--host", server.url, *args, stdout=None, close=(1,))
    assert_clean_error(outcome, FAILURES)


def test_a_closed_stdin_does_not_stop_a_prompt_given_as_arguments(
    server: OllamaTestServer,
) -> None:
    outcome = run_ollamactl(
        "--host", server.url, "run", "tiny", "Say hello", stdin=None, close=(0,)
    )
    assert outcome.code == 0, str(outcome)
    assert outcome.stdout.startswith("Hello, world!")


def test_a_secret_from_a_closed_stdin_is_a_usage_error() -> None:
    args = ("config", "profile", "add", "gpu", "--host", "https://gw.example.com")
    outcome = run_ollamactl(*args, "--api-key-stdin", stdin=None, close=(0,))
    assert_clean_error(outcome, {2})


@pytest.mark.parametrize("healthy", [True, False], ids=["healthy", "refused"])
def test_a_closed_stderr_keeps_the_exit_code(server: OllamaTestServer, healthy: bool) -> None:
    if not healthy:
        server.stop()
    outcome = run_ollamactl("--host", server.url, "--retries", "0", "list", stderr=None, close=(2,))
    assert outcome.code == (0 if healthy else 3), str(outcome)
    assert ("tiny:latest" in outcome.stdout) is healthy


def test_a_reader_that_stops_early_ends_the_answer_quietly(server: OllamaTestServer) -> None:
    """``ollamactl run ... | head -c 10``: the broken pipe ends the run, quietly.

    README does not document the exit code of a broken pipe: 0 or SIGPIPE's (141 in a shell,
    -13 from Popen) are both the usual conventions; a traceback or an error line is not.
    """
    server.generation.update(token_count=100_000)
    process = start_ollamactl("--host", server.url, "run", "tiny", "count")
    assert process.stdout is not None
    head = read_until(process.stdout, b"tok2")
    process.stdout.close()  # like head after 10 bytes
    outcome = wait_bounded(process, ("run", "tiny", "count"))
    assert head.startswith(b"tok0 tok1 ")
    assert outcome.code in {0, 128 + signal.SIGPIPE, -signal.SIGPIPE}, str(outcome)
    assert outcome.stderr == "", str(outcome)


def test_a_reader_that_stops_early_ends_a_batch_quietly(
    server: OllamaTestServer, tmp_path: Path
) -> None:
    """``ollamactl batch ... | head -n 1``: no "interrupted" report, SIGPIPE's exit code."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt {n}\n" for n in range(2000)))
    process = start_ollamactl("--host", server.url, "batch", "tiny", str(prompts), "-q")
    assert process.stdout is not None
    first = read_until(process.stdout, b"\n")
    process.stdout.close()  # like head after one line
    outcome = wait_bounded(process, ("batch", "tiny"))
    assert first.startswith(b'{"id":')
    assert outcome.code in {128 + signal.SIGPIPE, -signal.SIGPIPE}, str(outcome)
    assert outcome.stderr == "", str(outcome)


# -- files that are not files -----------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A FIFO nobody writes to: opening it for reading blocks for ever."""
    path = tmp_path / "weights.gguf"
    os.mkfifo(path)
    return path


def modelfile(path: Path, source: str) -> Path:
    path.write_text(f"FROM {source}\n")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("run", "tiny", "hi", "--format", "@/dev/zero"),
        ("create", "made", "-f", "/dev/zero"),
        ("create", "made", "--dry-run", "-f", "{modelfile_from_zero}"),
        ("create", "made", "--dry-run", "-f", "{modelfile_from_fifo}"),
    ],
    ids=["--format @/dev/zero", "create -f /dev/zero", "FROM /dev/zero", "FROM a FIFO"],
)
def test_an_endless_device_or_a_fifo_given_as_a_file_is_a_usage_error(
    server: OllamaTestServer, tmp_path: Path, fifo: Path, args: tuple[str, ...]
) -> None:
    """Refused at once (exit 2), not read or hashed for ever; the bound ends it otherwise."""
    paths = {
        "modelfile_from_zero": modelfile(tmp_path / "zero.Modelfile", "/dev/zero"),
        "modelfile_from_fifo": modelfile(tmp_path / "fifo.Modelfile", str(fifo)),
    }
    filled = [arg.format(**paths) for arg in args]
    assert_clean_error(run_ollamactl("--host", server.url, *filled), {2})


def test_a_modelfile_from_a_pipe_is_read(server: OllamaTestServer) -> None:
    """The control of the test above: ``create -f <(echo FROM tiny)`` reads the pipe."""
    read, write = os.pipe()
    os.write(write, b"FROM tiny\n")
    os.close(write)
    try:
        args = ("--host", server.url, "create", "made", "--dry-run", "-f", f"/dev/fd/{read}")
        outcome = run_ollamactl(*args, pass_fds=(read,))
    finally:
        os.close(read)
    assert outcome.code == 0, str(outcome)
    assert '"from": "tiny"' in outcome.stdout


# -- signals mid-answer -----------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_mid_answer_saves_the_partial_answer(
    server: OllamaTestServer, signum: int
) -> None:
    server.generation.update(token_count=1000, token_delay=0.01)
    process = start_ollamactl("--host", server.url, "chat", "tiny", "count")
    assert process.stdout is not None
    first = read_until(process.stdout, b"tok2 ")
    process.send_signal(signum)
    outcome = wait_bounded(process, ("chat", "tiny", "count"))
    assert outcome.code in {130, 128 + signum, -signum}, str(outcome)
    assert "Traceback" not in outcome.stderr, str(outcome)
    answer = saved_chats()[0]["messages"][-1]
    assert answer["role"] == "assistant" and answer.get("interrupted"), answer
    assert (first.decode() + outcome.stdout).startswith(str(answer["content"]))


# -- files ollamactl writes -------------------------------------------------------------------


def folder_modes(*folders: Path) -> dict[str, str]:
    return {folder.name: oct(stat.S_IMODE(folder.stat().st_mode)) for folder in folders}


def test_the_data_folder_is_private_under_umask_000(server: OllamaTestServer) -> None:
    outcome = run_ollamactl("--host", server.url, "chat", "tiny", "hi", umask=0)
    assert outcome.code == 0, str(outcome)
    folders = (data_folder(), data_folder() / "chats")
    assert folder_modes(*folders) == {folder.name: "0o700" for folder in folders}
    for chat in (data_folder() / "chats").iterdir():
        assert stat.S_IMODE(chat.stat().st_mode) == 0o600


def test_the_config_folder_is_private_under_umask_000() -> None:
    outcome = run_ollamactl("config", "set", "profiles.lab.host", "http://lab:1", umask=0)
    assert outcome.code == 0, str(outcome)
    assert folder_modes(config_folder()) == {config_folder().name: "0o700"}
    assert stat.S_IMODE((config_folder() / "config.toml").stat().st_mode) == 0o600


def killed_at_rename(*args: str) -> Outcome:
    """Run ``ollamactl ARGS``, killed at its first rename (see KILL_AT_RENAME)."""
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_AT_RENAME, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return wait_bounded(process, args)


WRITES: dict[str, Any] = {
    "chat": (("chat", "tiny", "hi"), lambda: data_folder() / "chats", ".json"),
    "config": (("config", "set", "profiles.lab.host", "http://lab:1"), config_folder, ".toml"),
}


@pytest.mark.parametrize("what", list(WRITES))
def test_a_kill_at_the_rename_leaves_no_stray_file_after_the_next_write(
    server: OllamaTestServer, what: str
) -> None:
    args, folder, suffix = WRITES[what]
    killed = killed_at_rename("--host", server.url, *args)
    assert killed.code == -signal.SIGKILL, str(killed)
    assert any(folder().iterdir()), "the kill left nothing: the test proves nothing"
    again = run_ollamactl("--host", server.url, *args)
    assert again.code == 0, str(again)
    names = sorted(path.name for path in folder().iterdir())
    assert all(name.endswith(suffix) and not name.startswith(".") for name in names), names
