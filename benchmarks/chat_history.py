"""A saved chat loads and grows in time and memory linear in its size.

Builds conversations of 1,000 and 2,000 turns in a temporary store, then measures what a
``chat --continue`` turn does to it: load the file, append a question and an answer, save
it atomically. Twice the turns must cost at most 2.5x the time and peak memory (linear,
with room for noise); a per-token rewrite or a quadratic step would show up as 4x.

    python benchmarks/chat_history.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Row
from ollamactl.conversations import ConversationStore

SIZES = (1000, 2000)
LIMIT = 2.5
RUNS = 5
TEXT = "lorem ipsum dolor sit amet " * 8


def build(store: ConversationStore, turns: int) -> str:
    """Save a conversation of ``turns`` questions and answers; return its ID."""
    conversation = store.new("tiny")
    for i in range(turns):
        conversation.messages.append({"role": "user", "content": f"question {i}: {TEXT}"})
        conversation.messages.append({"role": "assistant", "content": f"answer {i}: {TEXT}"})
    store.save(conversation)
    return conversation.id


def one_turn(store: ConversationStore, conversation_id: str) -> None:
    """What a chat turn does to the history: load, append both sides, save."""
    conversation = store.load(conversation_id)
    conversation.messages.append({"role": "user", "content": "one more question"})
    store.save(conversation)
    conversation.messages.append({"role": "assistant", "content": "one more answer"})
    store.save(conversation)


def cost(store: ConversationStore, conversation_id: str) -> tuple[float, float]:
    """Median seconds and peak MiB allocated for one turn."""
    seconds = []
    for _ in range(RUNS):
        started = time.perf_counter()
        one_turn(store, conversation_id)
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    one_turn(store, conversation_id)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return statistics.median(seconds), peak


def measure() -> list[Row]:
    """Time and memory of a turn at 1,000 and 2,000 saved turns."""
    with tempfile.TemporaryDirectory() as folder:
        store = ConversationStore(Path(folder))
        (small_s, small_mib), (large_s, large_mib) = (cost(store, build(store, n)) for n in SIZES)
    return [
        Row(
            "chat turn at 2,000 saved turns, time",
            f"{large_s * 1000:.1f} ms",
            f"{small_s * 1000:.1f} ms (1,000 turns)",
            large_s / small_s,
            f"<= {LIMIT:g}x",
            large_s / small_s <= LIMIT,
        ),
        Row(
            "chat turn at 2,000 saved turns, peak memory",
            f"{large_mib:.1f} MiB",
            f"{small_mib:.1f} MiB (1,000 turns)",
            large_mib / small_mib,
            f"<= {LIMIT:g}x",
            large_mib / small_mib <= LIMIT,
        ),
    ]


if __name__ == "__main__":
    rows = measure()
    for row in rows:
        print(f"{row.what}: {row.figure} vs {row.baseline} = {row.ratio:.2f}x")
    sys.exit(0 if all(r.ok for r in rows) else 1)
