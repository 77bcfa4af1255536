"""The output of ``batch``: answers encoded as whole lines, appended to a file that resumes."""

from __future__ import annotations

import json
import os

from ollamactl.batch_input import JSON, Id


def encode(record: JSON) -> bytes:
    """One output line: compact JSON, UTF-8, newline-terminated."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "replace") + b"\n"


def answered_ids(path: str) -> tuple[set[Id], int]:
    """The ids answered (without ``error``) in an output file, and the bytes cut off its end.

    A trailing partial line (a crash in the middle of a write) is removed from the file so
    that appending starts on a fresh line. A missing file has no answers.
    """
    answered: set[Id] = set()
    if not os.path.exists(path):
        return answered, 0
    with open(path, "rb+") as f:
        whole = 0
        for line in f:
            if not line.endswith(b"\n"):
                break
            whole += len(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "error" not in record:
                answer_id = record.get("id")
                if isinstance(answer_id, (str, int)) and not isinstance(answer_id, bool):
                    answered.add(answer_id)
        size = os.fstat(f.fileno()).st_size
        if size > whole:
            f.truncate(whole)
    return answered, size - whole


class AppendFile:
    """An output file opened with O_APPEND: each line is one ``os.write`` of the whole line."""

    def __init__(self, path: str, *, keep: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if keep else os.O_TRUNC)
        self.fd = os.open(path, flags, 0o644)

    def write(self, line: bytes) -> None:
        """Append ``line`` (the loop only matters if the kernel writes part of it)."""
        view = memoryview(line)
        while view:
            view = view[os.write(self.fd, view) :]

    def close(self) -> None:
        """Close the file."""
        os.close(self.fd)
