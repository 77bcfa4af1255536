"""The input of ``batch``: a line parsed into an :class:`Item` (a plain prompt or a JSON object).

No click and no printing: a bad line is a :class:`~ollamactl.errors.UsageError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

from ollamactl.errors import UsageError
from ollamactl.params import (
    RequestOptions,
    parse_format,
    parse_keep_alive,
    parse_think,
    read_media,
)

Id = Union[str, int]
JSON = dict[str, Any]

#: The fields an input line in JSON may have.
LINE_FIELDS = (
    "id",
    "prompt",
    "messages",
    "system",
    "options",
    "format",
    "images",
    "think",
    "keep_alive",
)


@dataclass
class Item:
    """One prompt: its id, whether it goes to ``/api/chat``, and its request sans model.

    ``body`` holds the keyword arguments of ``Client.generate`` or ``Client.chat`` (named as
    the request's fields: prompt or messages, system, images, options, format, ...).
    """

    id: Id
    chat: bool
    body: JSON
    seq: int = field(default=0, repr=False)  # admission order (the order of --ordered)
    attempts: int = field(default=0, repr=False)  # failed tries that count against retries
    failed_on: object = field(default=None, repr=False)  # the server of the last failed try


def parse_line(text: str, number: int, defaults: RequestOptions | None = None) -> Item | None:
    """Parse one input line: a plain prompt, or a JSON object; ``None`` for a blank line.

    ``defaults`` (the command's flags) fill in what the line does not say; a line's
    ``options`` are merged over the defaults'. Raises UsageError for a bad line.

    >>> parse_line("What is 2+2?", 3)
    Item(id=3, chat=False, body={'prompt': 'What is 2+2?'})
    >>> line = '{"id": "q", "messages": [{"role": "user", "content": "hi"}], "system": "Be brief."}'
    >>> parse_line(line, 4).body["messages"]
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'hi'}]
    >>> parse_line("   ", 5) is None
    True
    >>> parse_line('{"prompt": "hi", "temperature": 0}', 6)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: unknown field 'temperature' (known: id, prompt, messages, ...)
    """
    stripped = text.strip()
    if not stripped:
        return None
    if not stripped.startswith("{"):
        return _item({"prompt": text.rstrip("\r\n")}, number, defaults or RequestOptions())
    try:
        fields = json.loads(stripped)
    except ValueError as e:
        raise UsageError(f"not a valid JSON object: {e}") from None
    except RecursionError:  # issue 13: a line nested too deep is that line's error
        raise UsageError("not a valid JSON object: nested too deeply") from None
    unknown = sorted(set(fields) - set(LINE_FIELDS))
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}", hint="known: " + ", ".join(LINE_FIELDS))
    return _item(fields, number, defaults or RequestOptions())


#: The request controls of a line: the JSON types taken as they are, the parser of a string.
_CONTROLS: dict[str, tuple[tuple[type, ...], Callable[[str], Any], str]] = {
    "format": ((dict,), parse_format, '"json" or a JSON schema object'),
    "keep_alive": ((int, float), parse_keep_alive, 'a duration ("5m") or seconds'),
    "think": ((bool,), parse_think, 'true, false or a level such as "high"'),
}


def _typed(fields: JSON, key: str, types: tuple[type, ...], what: str) -> Any:
    """``fields[key]`` if it is one of ``types`` (never a bool unless asked), None if absent."""
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise UsageError(f"{key!r} must be {what}")
    return value


def _item(fields: JSON, number: int, defaults: RequestOptions) -> Item:
    item_id = fields.get("id", number)
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
        raise UsageError("'id' must be a string or an integer")
    chat = "messages" in fields
    if chat == ("prompt" in fields):
        raise UsageError("give either 'prompt' or 'messages'")
    system = _typed(fields, "system", (str,), "a string") or defaults.system
    paths = _typed(fields, "images", (list,), "a list of file paths") or []
    if not all(isinstance(path, str) for path in paths):
        raise UsageError("'images' must be a list of file paths")
    images = [read_media(path)[1] for path in paths]
    body: JSON = {}
    if chat:
        body["messages"] = _messages(fields["messages"], system, images)
    else:
        body["prompt"] = _typed(fields, "prompt", (str,), "a string")
        if system:
            body["system"] = system
        if images:
            body["images"] = images
    options = {**defaults.options, **(_typed(fields, "options", (dict,), "an object") or {})}
    if options:
        body["options"] = options
    for key, (types, parse, what) in _CONTROLS.items():
        text = fields.get(key)
        value = parse(text) if isinstance(text, str) else _typed(fields, key, types, what)
        value = getattr(defaults, key) if value is None else value
        if value is not None:
            body[key] = value
    return Item(item_id, chat, body)


def _messages(value: Any, system: str | None, images: list[str]) -> list[JSON]:
    """A chat's messages, checked; the system message first, the images on the last message."""
    if not (
        isinstance(value, list)
        and value
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value)
    ):
        raise UsageError("'messages' must be a list of objects with a 'role'")
    messages = [{"role": "system", "content": system}] if system else []
    messages += value
    if images:
        last = messages[-1]
        messages[-1] = {**last, "images": [*last.get("images", []), *images]}
    return messages


def count_prompts(path: str) -> int:
    """The number of non-blank lines of a file (read a line at a time: memory stays flat)."""
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())
