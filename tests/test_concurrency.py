"""Issue 13, concurrent writers: two ``chat --continue`` on one conversation at once, and two
loops of ``config set`` on one config file.

Whatever a process reports as done (exit 0) must be on disk afterwards; a writer may instead be
refused, with a clear error and a non-zero exit. Never a silent loss. Rounds are bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fake_ollama import OllamaTestServer
from tests.fault_proxy import (
    FaultProxy,
    Outcome,
    proxy_fixture,  # noqa: F401  (the `proxy` fixture)
    run_ollamactl,
    start_ollamactl,
    wait_bounded,
)
from tests.gateway import assert_one_clean_error
from tests.helpers import saved_chats

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

CHAT_ROUNDS = 3
WRITES_PER_LOOP = 100
#: ``python -c`` that waits for a byte on stdin (the start signal), then runs
#: ``ollamactl config set profiles.<prefix><i>.host http://<prefix><i>:1`` for i < count in
#: one process (the real CLI, without the start-up cost that makes overlaps rare) and prints
#: ``RESULT <i> <exit code>`` for each.
CONFIG_SET_LOOP = """\
import runpy, sys
prefix, count = sys.argv[1], int(sys.argv[2])
sys.stdin.read(1)
for i in range(count):
    sys.argv = ["ollamactl", "config", "set", f"profiles.{prefix}{i}.host", f"http://{prefix}{i}:1"]
    try:
        runpy.run_module("ollamactl", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    print(f"RESULT {i} {code}", flush=True)
"""


def turns_kept(question: str) -> bool:
    """True when a saved conversation holds ``question`` followed by a complete answer."""
    for chat in saved_chats():
        messages = chat["messages"]
        for index, message in enumerate(messages[:-1]):
            answer = messages[index + 1]
            if message.get("content") == question and answer.get("role") == "assistant":
                return bool(answer.get("content")) and not answer.get("interrupted")
    return False


def test_two_chat_continues_at_once_keep_both_turns_or_refuse_one(
    server: OllamaTestServer, proxy: FaultProxy
) -> None:
    """The proxy holds both questions until both arrived: both answers come at the same time.

    A writer may be refused (one clean error, non-zero exit); a turn reported done (exit 0)
    must be in the conversation at the end.
    """
    assert run_ollamactl("--host", server.url, "chat", "tiny", "first question").code == 0
    done = []
    for round_number in range(1, CHAT_ROUNDS + 1):
        proxy.add_fault("/api/chat", hold_until=2 * round_number, times=2)
        commands = [("chat", "--continue", f"question {round_number}{side}") for side in "ab"]
        processes = [start_ollamactl("--host", proxy.url, *args) for args in commands]
        for process, args in zip(processes, commands):
            outcome = wait_bounded(process, args)
            if outcome.code == 0:
                done.append(args[-1])
            else:
                assert outcome.code is not None, str(outcome)
                assert_one_clean_error(outcome.stderr)
    lost = [question for question in done if not turns_kept(question)]
    assert lost == [], f"{len(lost)} of {len(done)} turns reported done were lost: {lost}"


def config_set_loop(prefix: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CONFIG_SET_LOOP, prefix, str(WRITES_PER_LOOP)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def results(outcome: Outcome) -> dict[int, int]:
    """Write number -> exit code, from a loop's RESULT lines."""
    pairs = (line.split()[1:] for line in outcome.stdout.splitlines() if line.startswith("RESULT"))
    return {int(i): int(code) for i, code in pairs}


def test_two_loops_of_config_set_lose_no_write() -> None:
    loops = {prefix: config_set_loop(prefix) for prefix in ("a", "b")}
    for process in loops.values():  # the start signal, to both at once
        assert process.stdin is not None
        process.stdin.write(b"g")
        process.stdin.flush()
    outcomes = {prefix: wait_bounded(p, (prefix,), bound=60) for prefix, p in loops.items()}
    path = Path(os.environ["OLLAMACTL_CONFIG_DIR"], "config.toml")
    profiles = tomllib.loads(path.read_text())["profiles"]
    lost = []
    for prefix, outcome in outcomes.items():
        assert outcome.code == 0, str(outcome)
        done = results(outcome)
        assert len(done) == WRITES_PER_LOOP, str(outcome)
        for i, code in done.items():
            name = f"{prefix}{i}"
            if code == 0 and profiles.get(name, {}).get("host") != f"http://{name}:1":
                lost.append(name)
    assert lost == [], f"{len(lost)} of {2 * WRITES_PER_LOOP} writes reported done were lost"
