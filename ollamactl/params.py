"""Request options shared by run, chat, embed, batch and the REPL, parsed from their text.

``-p key=value`` options typed as the Go CLI's ``api.FormatParams`` types them,
``--keepalive`` durations, ``--format`` JSON schemas, ``--think`` levels and
images (``-i PATH`` or paths found in a prompt, as the Go CLI finds them).
Everything here is pure parsing: bad input raises :class:`UsageError` (exit 2).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from ollamactl.errors import UsageError
from ollamactl.modelfile import (
    BOOL_PARAMETERS,
    FLOAT_PARAMETERS,
    INT_PARAMETERS,
    LIST_PARAMETERS,
    typed_parameter,
)
from ollamactl.paths import open_input, read_input

KNOWN_PARAMS = INT_PARAMETERS | FLOAT_PARAMETERS | BOOL_PARAMETERS | LIST_PARAMETERS

THINK_LEVELS = ("true", "false", "high", "medium", "low", "max")
MAX_MEDIA_BYTES = 100 * 1024 * 1024
#: The largest JSON schema file (--format @FILE) read.
MAX_SCHEMA_BYTES = 16 * 1024 * 1024
#: The deepest JSON a user may give: far beyond any schema or message list, far below the
#: depth at which Python's parser or encoder would fail.
MAX_JSON_DEPTH = 100

_DURATION = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+")
_SECONDS = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
# The Go CLI's pattern: a path from a drive letter, /, ./ or \ to a media file suffix.
_MEDIA_PATH = re.compile(r"(?:[a-zA-Z]:)?(?:\./|/|\\)[\S\\ ]+?\.(?i:jpg|jpeg|png|webp|wav)\b")
_SHELL_ESCAPE = re.compile(r"\\([ ()\[\]{}$&;'\\*?~])")

Format = Union[str, dict[str, Any]]
KeepAlive = Union[int, float, str]
Think = Union[bool, str]


@dataclass
class RequestOptions:
    """What a generation request carries besides the model, the prompt and its images.

    Only what is sent: how the answer is shown is :class:`ollamactl.answer.DisplayOptions`.
    """

    system: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    format: Format | None = None
    keep_alive: KeepAlive | None = None
    think: Think | None = None
    stream: bool = True

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``Client.generate``/``Client.chat`` (not ``system``).

        >>> RequestOptions(format="json", think=False).arguments()["format"]
        'json'
        """
        return {
            "format": self.format,
            "options": dict(self.options),
            "keep_alive": self.keep_alive,
            "think": self.think,
            "stream": self.stream,
        }


def profile_request(defaults: Mapping[str, Any]) -> RequestOptions:
    """A profile's ``options`` and ``keep_alive``: what it adds to each of its requests."""
    options, keep_alive = defaults.get("options"), defaults.get("keep_alive")
    return RequestOptions(
        options=dict(options) if isinstance(options, dict) else {},
        keep_alive=None if keep_alive is None else parse_keep_alive(str(keep_alive)),
    )


def format_param(key: str, values: list[str]) -> Any:
    """Type one parameter as the Go CLI's ``FormatParams`` does, with its error wording.

    >>> format_param("temperature", ["0.7"]), format_param("seed", ["-1"])
    (0.7, -1)
    >>> format_param("stop", ["a", "b"]), format_param("use_mmap", ["F"])
    (['a', 'b'], False)
    >>> format_param("seed", ["x"])
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid int value [x]
    >>> format_param("colour", ["red"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: unknown parameter 'colour' (known: draft_num_predict, ...)
    """
    if key not in KNOWN_PARAMS:
        raise UsageError(
            f"unknown parameter '{key}'", hint="known: " + ", ".join(sorted(KNOWN_PARAMS))
        )
    if key in LIST_PARAMETERS:
        return list(values)
    try:
        return typed_parameter(key, values[0] if values else "")
    except ValueError:
        kind = "int" if key in INT_PARAMETERS else "float" if key in FLOAT_PARAMETERS else "bool"
        raise UsageError(f"invalid {kind} value [{' '.join(values)}]") from None


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse repeated ``-p key=value``: a later value wins, ``stop`` accumulates.

    >>> parse_options(["temperature=0", "stop=###", "stop=END", "num_ctx=8192", "seed=1", "seed=2"])
    {'temperature': 0.0, 'stop': ['###', 'END'], 'num_ctx': 8192, 'seed': 2}
    >>> parse_options(["temperature"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid option 'temperature' (expected key=value, ...)
    >>> parse_options(["top_k=many"])
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: -p top_k=many: invalid int value [many]
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise UsageError(
                f"invalid option {pair!r}", hint="expected key=value, e.g. -p temperature=0.2"
            )
        try:
            typed = format_param(key, [value])
        except UsageError as e:
            if key not in KNOWN_PARAMS:
                raise
            raise UsageError(f"-p {pair}: {e.message}") from None
        options[key] = [*options.get(key, []), *typed] if key in LIST_PARAMETERS else typed
    return options


def parse_keep_alive(text: str | None) -> KeepAlive | None:
    """Parse ``--keepalive``: a Go duration (``5m``, ``1h30m``) or seconds (``300``, ``-1``, ``0``).

    Seconds are sent as a number, durations as the string (the server parses them).

    >>> [parse_keep_alive(t) for t in ("5m", "1h30m", "300", "-1", "0", "2.5", None)]
    ['5m', '1h30m', 300, -1, 0, 2.5, None]
    >>> parse_keep_alive("5x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid keep-alive '5x' (use a duration such as 5m or 1h30m, ...)
    """
    if text is None:
        return None
    value = text.strip()
    if _SECONDS.fullmatch(value):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    if _DURATION.fullmatch(value):
        return value
    raise UsageError(
        f"invalid keep-alive {text!r}",
        hint="use a duration such as 5m or 1h30m, or seconds such as 300;"
        " -1 keeps the model loaded, 0 unloads it at once",
    )


def parse_format(text: str | None) -> Format | None:
    """Parse ``--format``: ``json``, ``@schema.json`` (a file) or an inline JSON schema.

    >>> parse_format("json"), parse_format('{"type": "object"}'), parse_format(None)
    ('json', {'type': 'object'}, None)
    >>> parse_format("yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid format 'yaml' (use json, @schema.json ...)
    """
    if text is None or not text.strip():
        return None
    value = text.strip()
    if value == "json":
        return "json"
    if value.startswith("@"):
        path = value[1:]
        data = read_input(path, "the JSON schema file", MAX_SCHEMA_BYTES)
        return _schema(data, f"the JSON schema file '{path}'")
    if value.startswith("{"):
        return _schema(value, "the --format JSON schema")
    raise UsageError(
        f"invalid format {text!r}",
        hint="use json, @schema.json (a file) or an inline JSON schema such as"
        ' \'{"type": "object"}\'',
    )


def parse_json(source: str | bytes, where: str) -> Any:
    """JSON text a user gave (a file, an option), checked: UsageError naming ``where`` if it
    is not UTF-8, not JSON, or nested deeper than MAX_JSON_DEPTH.

    >>> parse_json('{"a": [1]}', "x")
    {'a': [1]}
    >>> parse_json("[" * 200 + "]" * 200, "the file")
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: the file is nested deeper than 100 levels
    """
    too_deep = UsageError(f"{where} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(source)
    except UnicodeDecodeError:
        raise UsageError(f"{where} is not UTF-8 text") from None
    except ValueError as e:
        raise UsageError(f"{where} is not valid JSON: {e}") from None
    except RecursionError:
        raise too_deep from None
    if _too_deep(value):
        raise too_deep
    return value


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests lists and objects deeper than MAX_JSON_DEPTH (no recursion)."""
    level = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, (list, dict))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return True


def _schema(source: str | bytes, where: str) -> dict[str, Any]:
    schema = parse_json(source, where)
    if not isinstance(schema, dict):
        raise UsageError(f"{where} must be a JSON object (a JSON schema)")
    return schema


def parse_think(value: str | None) -> Think | None:
    """Parse ``--think[=LEVEL]`` as the Go CLI does (``None``: not given).

    >>> [parse_think(v) for v in (None, "true", "false", "high")]
    [None, True, False, 'high']
    >>> parse_think("lots")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid value for --think: "lots" (must be true, false, high, ...)
    """
    if value is None:
        return None
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    if value in THINK_LEVELS:
        return value
    raise UsageError(
        f"invalid value for --think: {json.dumps(value)}"
        " (must be true, false, high, medium, low, or max)"
    )


def media_kind(head: bytes) -> str | None:
    """``image`` or ``audio`` for the file types Ollama accepts, sniffed from the first bytes.

    >>> media_kind(b"\\x89PNG\\r\\n\\x1a\\n..."), media_kind(b"RIFF0000WAVEfmt ")
    ('image', 'audio')
    >>> media_kind(b"GIF89a") is None
    True
    """
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        return "image"
    if head[:4] == b"RIFF" and head[8:14] == b"WEBPVP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio"
    return None


def read_media(path: str) -> tuple[str, str]:
    """Read an image or WAV file for a request: (``image``/``audio``, base64 text)."""
    with open_input(path, "image") as f:
        try:
            head = f.read(512)
            kind = media_kind(head)
            if kind is None:
                raise UsageError(
                    f"invalid file type for '{path}'",
                    hint="expected a JPEG, PNG or WebP image or a WAV file",
                )
            data = head + f.read(MAX_MEDIA_BYTES + 1 - len(head))
        except OSError as e:
            raise UsageError(f"cannot read image '{path}': {e.strerror}") from None
    if len(data) > MAX_MEDIA_BYTES:
        raise UsageError(f"'{path}': file size exceeds maximum limit (100MB)")
    return kind, base64.b64encode(data).decode("ascii")


def unescape_path(text: str) -> str:
    r"""Undo shell escapes in a pasted path, as the Go CLI does.

    >>> unescape_path(r"/tmp/my\ photo\ \(1\).png")
    '/tmp/my photo (1).png'
    """
    return _SHELL_ESCAPE.sub(r"\1", text)


def media_paths(prompt: str) -> list[str]:
    """The file paths in a prompt that look like images or WAV files (Go CLI's pattern).

    >>> media_paths("what is in /tmp/a.png and ./b.JPG? not c.png or /d.gif")
    ['/tmp/a.png', './b.JPG']
    """
    return _MEDIA_PATH.findall(prompt)


def extract_media(prompt: str) -> tuple[str, list[tuple[str, str, str]]]:
    """Take the existing media files named in a prompt out of it, as the Go CLI does.

    Returns the remaining text and ``(path, kind, base64)`` per file; paths that do
    not exist stay in the text. A file of the wrong type raises UsageError.
    """
    found = []
    for raw in media_paths(prompt):
        path = unescape_path(raw)
        if not os.path.exists(path):
            continue
        kind, data = read_media(path)
        found.append((path, kind, data))
        for text in (f"'{path}'", f"'{raw}'", raw):
            prompt = prompt.replace(text, "")
    return prompt.strip(), found
