"""Local, persistent chat conversations: one JSON file per conversation.

Files live in ``<data dir>/chats/<id>.json`` (the data dir of :mod:`ollamactl.paths`:
``$OLLAMACTL_DATA_DIR``, else ``$XDG_DATA_HOME/ollamactl`` or the platform's), mode 0600. Every
save writes a temporary file in the same folder, fsyncs it and renames it over the
old one, so a crash or ``kill -9`` leaves the previous or the new version, never a mix
(the temporary file a kill leaves is removed by the next save).
Saving happens once per message (the question before it is sent, the answer when
it is complete), never per token.

Two ollamactl writing one conversation at once (two ``chat --continue``) lose nothing: a save
holds the lock of the folder, reads the file again, and puts this writer's messages (its turn)
after what the other one saved meanwhile. What each writer sends to the model stays its own
view of the history. A writer that rewrote the history it loaded (``/retry`` of an old answer)
while another one added to it is refused, with an error, instead of overwriting it.
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ollamactl.errors import UsageError
from ollamactl.paths import data_dir, locked_folder, open_input, write_private_file
from ollamactl.render import parse_time

FORMAT_VERSION = 1
ID_BYTES = 3  # six hex digits
TITLE_WIDTH = 48
#: Message keys that are ollamactl's bookkeeping, not part of the Ollama API.
LOCAL_KEYS = ("interrupted",)
#: The ``updated_at`` of a conversation without a valid one (sorted last).
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def now() -> str:
    """The current UTC time in RFC 3339 form."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def api_message(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the API expects it (local bookkeeping keys removed)."""
    return {k: v for k, v in message.items() if k not in LOCAL_KEYS}


@dataclass
class Conversation:
    """A chat: its model, its messages and the parameters set during it."""

    id: str
    model: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    #: What the store knows of the file (see :meth:`ConversationStore.save`): the messages
    #: this writer loaded (its view starts with them), the other writers' messages as last
    #: seen, this writer's own messages as last written, and the file's stamp then.
    base: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)
    seen: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)
    written: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)
    stamp: tuple[int, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def title(self) -> str:
        """The first line of the first user message, shortened."""
        for message in self.messages:
            if message.get("role") == "user" and str(message.get("content", "")).strip():
                line = str(message["content"]).strip().splitlines()[0]
                return line if len(line) <= TITLE_WIDTH else line[: TITLE_WIDTH - 3] + "..."
        return ""

    @property
    def turns(self) -> int:
        """How many questions were asked."""
        return sum(1 for m in self.messages if m.get("role") == "user")

    def api_messages(self) -> list[dict[str, Any]]:
        """The messages to send to ``/api/chat``."""
        return [api_message(m) for m in self.messages]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored on disk (and printed by ``chat show --json``)."""
        return {
            "version": FORMAT_VERSION,
            "id": self.id,
            "model": self.model,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "options": self.options,
            "messages": self.messages,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Conversation:
        """Rebuild a conversation from its JSON form (ValueError if it is not one)."""
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            raise ValueError("not an ollamactl conversation")
        if not all(isinstance(m, dict) for m in data["messages"]):
            raise ValueError("a message is not a JSON object")
        return cls(
            id=str(data["id"]),
            model=str(data.get("model", "")),
            messages=data["messages"],
            options=dict(data.get("options") or {}),
            created_at=str(data.get("created_at", "")),
            updated_at=str(data.get("updated_at", "")),
            base=list(data["messages"]),
            seen=list(data["messages"]),
        )


class ConversationStore:
    """The folder of saved conversations."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or data_dir() / "chats"

    def path(self, conversation_id: str) -> Path:
        """Where a conversation is stored."""
        return self.folder / f"{conversation_id}.json"

    def new(self, model: str) -> Conversation:
        """A new, not yet saved conversation with a short unused ID."""
        while True:
            conversation_id = secrets.token_hex(ID_BYTES)
            if not self.path(conversation_id).exists():
                return Conversation(id=conversation_id, model=model)

    def save(self, conversation: Conversation) -> None:
        """Write a conversation atomically (temp file, fsync, rename), under the folder's lock.

        What another ollamactl saved meanwhile is kept: this writer's messages go after it
        (see the module's description).
        """
        conversation.updated_at = now()
        path = self.path(conversation.id)
        with locked_folder(self.folder, f"the conversation {conversation.id}"):
            messages = self._merged(conversation, path)
            record = {**conversation.to_dict(), "messages": messages}
            text = json.dumps(record, ensure_ascii=False, indent=1)
            try:
                write_private_file(path, text.encode("utf-8"), locked=True)
                conversation.stamp = _stamp(os.stat(path))
            except OSError as e:
                raise UsageError(f"cannot save the conversation in {self.folder}: {e}") from None

    def _merged(self, conversation: Conversation, path: Path) -> list[dict[str, Any]]:
        """The messages to write: what the others saved, then this writer's own messages."""
        ours, base = conversation.messages, conversation.base
        try:
            changed = conversation.stamp != _stamp(os.stat(path))
        except FileNotFoundError:
            changed = False  # new, or deleted meanwhile: this writer's view is all there is
        if changed:
            disk = self._read(conversation.id).messages
            others = _without_last(disk, conversation.written)
        else:
            others = conversation.seen
        if ours[: len(base)] != base:  # this writer rewrote what it loaded
            if others != base:
                raise UsageError(
                    f"the conversation {conversation.id} was changed by another ollamactl while"
                    " this one rewrote its history; this change was not saved",
                    hint="`ollamactl chat show` shows what was saved",
                )
            conversation.base = others = []  # all of it is this writer's now
        conversation.written = ours[len(conversation.base) :]
        conversation.seen = others
        return others + conversation.written

    def _saved_times(self) -> dict[str, int]:
        """Every stored ID with its file's modification time (ns)."""
        try:
            entries = [e for e in os.scandir(self.folder) if e.name.endswith(".json")]
        except FileNotFoundError:
            return {}
        return {e.name[: -len(".json")]: e.stat().st_mtime_ns for e in entries}

    def ids(self) -> list[str]:
        """Every stored ID, the most recently written file first (ties by ID)."""
        times = self._saved_times()
        return sorted(times, key=lambda i: (times[i], i), reverse=True)

    def resolve(self, reference: str) -> str:
        """The ID an exact ID or a unique prefix of one refers to."""
        ids = self.ids()
        if reference in ids:
            return reference
        matches = [i for i in ids if i.startswith(reference)] if reference else []
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UsageError(f"'{reference}' matches several conversations: {', '.join(matches)}")
        raise UsageError(
            f"no conversation '{reference}'", hint="`ollamactl chat list` shows the saved ones"
        )

    def load(self, reference: str) -> Conversation:
        """Load a conversation by ID or unique ID prefix."""
        return self._read(self.resolve(reference))

    def _read(self, conversation_id: str) -> Conversation:
        path = self.path(conversation_id)
        with open_input(str(path), "the conversation") as f:
            try:
                conversation = Conversation.from_dict(json.loads(f.read()))
                conversation.stamp = _stamp(os.fstat(f.fileno()))
            except (OSError, ValueError, KeyError, RecursionError) as e:
                reason = "nested too deeply" if isinstance(e, RecursionError) else e
                raise UsageError(f"cannot read the conversation {path}: {reason}") from None
        return conversation

    def latest(self) -> Conversation | None:
        """The conversation saved last, if any is readable.

        Only the newest files are read (``updated_at`` breaks a tie of file times), so
        ``--continue`` costs the same with ten saved chats or ten thousand.
        """
        times = self._saved_times()
        for newest in sorted(set(times.values()), reverse=True):
            tied = []
            for conversation_id in (i for i, saved in times.items() if saved == newest):
                with suppress(UsageError):
                    tied.append(self._read(conversation_id))
            if tied:
                return max(tied, key=lambda c: parse_time(c.updated_at) or EPOCH)
        return None

    def all(self) -> tuple[list[Conversation], list[str]]:
        """Every readable conversation and the errors of unreadable ones.

        The most recently updated first: by ``updated_at``, then file time, then ID, so
        conversations saved within the file system's time resolution keep their order.
        """
        ranked: list[tuple[tuple[datetime, int, str], Conversation]] = []
        errors = []
        for conversation_id, saved in sorted(self._saved_times().items()):
            try:
                conversation = self._read(conversation_id)
            except UsageError as e:
                errors.append(e.message)
                continue
            updated = parse_time(conversation.updated_at) or EPOCH
            ranked.append(((updated, saved, conversation_id), conversation))
        ranked.sort(key=lambda pair: pair[0], reverse=True)
        return [conversation for _, conversation in ranked], errors

    def delete(self, reference: str) -> str:
        """Delete a conversation; returns its ID."""
        conversation_id = self.resolve(reference)
        try:
            self.path(conversation_id).unlink()
        except OSError as e:
            raise UsageError(f"cannot delete conversation '{conversation_id}': {e}") from None
        return conversation_id


def _stamp(status: os.stat_result) -> tuple[int, ...]:
    """What changes whenever a file is replaced: its inode, size and modification time."""
    return (status.st_ino, status.st_size, status.st_mtime_ns)


def _without_last(messages: list[dict[str, Any]], block: list[dict[str, Any]]) -> list[Any]:
    """``messages`` without the last run of messages equal to ``block`` (if there is one).

    >>> _without_last([{"a": 1}, {"b": 2}, {"c": 3}], [{"b": 2}])
    [{'a': 1}, {'c': 3}]
    """
    for start in range(len(messages) - len(block), -1, -1):
        if block and messages[start : start + len(block)] == block:
            return messages[:start] + messages[start + len(block) :]
    return list(messages)


def transcript(conversation: Conversation) -> str:
    """A conversation as the REPL showed it: ``>>> question``, then the answer."""
    out = []
    for message in conversation.messages:
        role, content = message.get("role"), str(message.get("content", ""))
        if role == "user":
            images = len(message.get("images") or [])
            out.append(f">>> {content}" + (f" [{images} image(s)]" if images else "") + "\n")
        elif role == "assistant":
            calls = message.get("tool_calls")
            if calls:
                content += ("\n" if content else "") + json.dumps(calls, ensure_ascii=False)
            note = "\n[interrupted]" if message.get("interrupted") else ""
            out.append(f"{content}{note}\n\n")
        else:
            out.append(f"[{role}] {content}\n\n")
    return "".join(out)


def markdown(conversation: Conversation) -> str:
    """A conversation as a Markdown document (for /export)."""
    out = [f"# Chat with {conversation.model}\n"]
    if conversation.options:
        options = ", ".join(f"`{k}={json.dumps(v)}`" for k, v in conversation.options.items())
        out.append(f"\nOptions: {options}\n")
    for message in conversation.messages:
        role = str(message.get("role", "")).capitalize()
        out.append(f"\n## {role}\n\n{message.get('content', '')}\n")
        if message.get("tool_calls"):
            calls = json.dumps(message["tool_calls"], indent=2, ensure_ascii=False)
            out.append(f"\n```json\n{calls}\n```\n")
        if message.get("interrupted"):
            out.append("\n*(interrupted)*\n")
    return "".join(out)
