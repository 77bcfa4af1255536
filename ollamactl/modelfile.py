"""The client side of ``create``: parse a Modelfile into an ``/api/create`` request.

Since Ollama 0.5.5 the server no longer parses Modelfiles: the client reads it, uploads the
local weights as blobs and sends JSON (``from`` or ``files``, ``adapters``, ``template``,
``parameters``, ...). The syntax follows the Go parser (``parser/parser.go``): one command
per line, case-insensitive; ``#`` comments; values bare, in ``"..."`` or in ``\"\"\"...\"\"\"``
(both may span lines; the value ends at the first line end where its text ends with the
closing quotes). Every error is a :class:`~ollamactl.errors.UsageError` naming
``file:line:column``; nothing else escapes.
"""

from __future__ import annotations

import codecs
import glob
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollamactl.errors import UsageError
from ollamactl.paths import read_input

COMMANDS = (
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
)
ROLES = ("system", "user", "assistant")
INT_PARAMETERS = frozenset(
    (
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "num_thread",
        "draft_num_predict",
        "main_gpu",
    )
)
FLOAT_PARAMETERS = frozenset(
    (
        "top_p",
        "min_p",
        "typical_p",
        "temperature",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    )
)
BOOL_PARAMETERS = frozenset(("use_mmap",))
LIST_PARAMETERS = frozenset(("stop",))
#: Accepted by the Go client with a warning and left out of the request.
DEPRECATED_PARAMETERS = frozenset(
    (
        "penalize_newline",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mlock",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
    )
)
#: Directory file sets in priority order: the first pattern that matches picks the weights.
WEIGHT_PATTERNS = (
    ("model*.safetensors", "*/model*.safetensors"),
    ("consolidated*.safetensors",),
    ("pytorch_model*.bin",),
    ("consolidated*.pth",),
    ("*.gguf",),
    ("*.bin",),
)
CONFIG_PATTERNS = ("*.json", "*/*.json", "chat_template.jinja")
#: The largest Modelfile read (a long TEMPLATE or LICENSE included).
MAX_MODELFILE_BYTES = 16 * 2**20
#: Request fields for local files, by command.
FILE_FIELDS = {"from": "files", "adapter": "adapters", "draft": "draft_files"}
#: The first Ollama version whose ``/api/create`` takes what these commands send; an older
#: server drops it without a word (api/types.go CreateRequest: v0.12.0, v0.14.0, v0.30.0).
SERVER_SINCE = {
    "renderer": (0, 12, 0),
    "parser": (0, 12, 0),
    "requires": (0, 14, 0),
    "draft": (0, 30, 0),
}

_INT = re.compile(r"[+-]?[0-9]{1,19}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "true", "TRUE", "True"), True),
    **dict.fromkeys(("0", "f", "F", "false", "FALSE", "False"), False),
}
_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?"
)
_FLOAT32_MAX = 3.4028234663852886e38
_INT64 = 2**63
_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")
_WEIGHT_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pth")


@dataclass(frozen=True)
class Command:
    """One Modelfile command: ``name`` lower-case (``parameter`` and ``message`` keep their key).

    ``key`` is the parameter name or the message role; ``line`` and ``column`` locate the value.
    """

    name: str
    value: str
    line: int
    column: int
    key: str = ""


@dataclass(frozen=True)
class LocalFile:
    """A local file the request refers to: ``field`` (files/adapters/draft_files) and ``name``."""

    field: str
    name: str
    path: Path


@dataclass
class CreatePlan:
    """What ``create`` will send: the JSON fields, the local files to hash and upload, warnings."""

    fields: dict[str, Any]
    files: list[LocalFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def unknown_to(self, version: tuple[int, ...]) -> list[str]:
        """The commands used that a server of ``version`` (major, minor, patch) would drop.

        >>> CreatePlan({"from": "x", "renderer": "qwen3", "parser": "qwen3"}).unknown_to((0, 9, 3))
        ['RENDERER', 'PARSER']
        """
        used = set(self.fields) | {"draft" for f in self.files if f.field == "draft_files"}
        return [c.upper() for c, since in SERVER_SINCE.items() if c in used and version < since]

    def arguments(self, digests: Mapping[Path, str]) -> dict[str, Any]:
        """The keyword arguments of ``Client.create``, given every local file's digest.

        >>> plan = CreatePlan({"from": "llama3.2", "system": "Be brief."})
        >>> plan.arguments({})
        {'from_model': 'llama3.2', 'system': 'Be brief.'}
        """
        arguments: dict[str, Any] = {}
        for local in self.files:
            arguments.setdefault(local.field, {})[local.name] = digests[local.path]
        for name, value in self.fields.items():
            arguments["from_model" if name == "from" else name] = value
        return arguments


class _Lines:
    """The text as lines, with positions for error messages."""

    def __init__(self, text: str, source: str) -> None:
        parts = re.split(r"(\r\n|\r|\n)", text)
        self.lines = parts[0::2]
        #: The line end after each line as written: a value over several lines keeps them
        #: (``\r\n`` too, as the Go parser does); a value on one line ends before its ``\r``.
        self.ends = parts[1::2]
        self.source = source

    def error(self, line: int, column: int, message: str) -> UsageError:
        return located_error(self.source, line, column, message)


def located_error(source: str, line: int, column: int, message: str) -> UsageError:
    """An error that names the file, line and column, as compilers do."""
    return UsageError(f"{source}:{line}:{column}: {message}")


def parse(text: str, source: str = "Modelfile") -> list[Command]:
    r"""Parse Modelfile text into commands; ``source`` names the file in errors.

    >>> [(c.name, c.key, c.value) for c in parse('FROM llama3.2\nPARAMETER stop "<|eot|>"')]
    [('from', '', 'llama3.2'), ('parameter', 'stop', '<|eot|>')]
    >>> parse("FROM x\nSYSTEM \"\"\"a\nb\"\"\"")[1].value
    'a\nb'
    >>> parse("FORM x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: Modelfile:1:1: unknown command 'FORM' (one of FROM, ...)
    """
    doc = _Lines(text.removeprefix("\ufeff"), source)
    commands: list[Command] = []
    index = 0
    while index < len(doc.lines):
        line = doc.lines[index]
        stripped = line.lstrip(" \t")
        column = len(line) - len(stripped) + 1
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        command, index = _command(doc, index, column)
        commands.append(command)
    if not any(c.name == "from" for c in commands):
        raise UsageError(f"{source}: no FROM line", hint="the first line is usually FROM <model>")
    return commands


def _word(text: str, start: int, allowed: str) -> int:
    """The end of the run of ``allowed`` characters at ``start``."""
    end = start
    while end < len(text) and text[end].isascii() and (text[end].isalnum() or text[end] in allowed):
        end += 1
    return end


def _command(doc: _Lines, index: int, column: int) -> tuple[Command, int]:
    """Parse the command starting at ``doc.lines[index]``; returns it and the next line index."""
    line, number = doc.lines[index], index + 1
    start = column - 1
    end = _word(line, start, "")
    name = line[start:end]
    if name.lower() not in COMMANDS or (end < len(line) and line[end] not in " \t"):
        shown = line[start:].split(None, 1)[0] if line[start:].strip() else name
        raise doc.error(
            number,
            column,
            f"unknown command {shown!r} (one of {', '.join(c.upper() for c in COMMANDS)})",
        )
    lowered = name.lower()
    key = ""
    position = _skip_blanks(line, end)
    if lowered in ("parameter", "message"):
        key_end = _word(line, position, "_" if lowered == "parameter" else "")
        key = line[position:key_end]
        what = "a parameter name" if lowered == "parameter" else "a role"
        if not key:
            raise doc.error(number, position + 1, f"{name.upper()} needs {what} and a value")
        if key_end < len(line) and line[key_end] not in " \t":
            raise doc.error(number, key_end + 1, f"unexpected {line[key_end]!r} after {what}")
        if lowered == "message" and key not in ROLES:
            raise doc.error(
                number,
                position + 1,
                f"message role must be one of {', '.join(repr(r) for r in ROLES)}, not {key!r}",
            )
        position = _skip_blanks(line, key_end)
    if position >= len(line):
        raise doc.error(number, position + 1, f"{name.upper()} needs a value")
    value, next_index = _value(doc, index, position)
    return Command(lowered, value, number, position + 1, key), next_index


def _skip_blanks(line: str, position: int) -> int:
    while position < len(line) and line[position] in " \t":
        position += 1
    return position


def _value(doc: _Lines, index: int, start: int) -> tuple[str, int]:
    """The value starting at column ``start`` of line ``index``: bare or quoted (multi-line)."""
    first = doc.lines[index][start:]
    quote = '"""' if first.startswith('"""') else '"' if first.startswith('"') else ""
    if not quote:
        return first.strip(" \t"), index + 1
    text = first
    for end_index in range(index, len(doc.lines)):
        if end_index > index:
            text += doc.ends[end_index - 1] + doc.lines[end_index]
        candidate = text.rstrip(" \t")
        if len(candidate) >= 2 * len(quote) and candidate.endswith(quote):
            return candidate[len(quote) : -len(quote)], end_index + 1
    raise doc.error(
        index + 1, start + 1, f"unterminated {quote} value: no line ends with the closing {quote}"
    )


# -- from commands to a request -------------------------------------------------------------


def typed_parameter(key: str, raw: str) -> Any:
    """A PARAMETER value with the type the server expects; raises ValueError with the reason.

    >>> typed_parameter("num_ctx", "4096"), typed_parameter("temperature", "0.7")
    (4096, 0.7)
    >>> typed_parameter("use_mmap", "false"), typed_parameter("stop", "<|im_end|>")
    (False, '<|im_end|>')
    """
    if key in INT_PARAMETERS:
        if not _INT.fullmatch(raw) or not -_INT64 <= int(raw) < _INT64:
            raise ValueError(f"invalid int value {raw!r} for {key}")
        return int(raw)
    if key in FLOAT_PARAMETERS:
        if not _FLOAT.fullmatch(raw) or abs(float(raw)) > _FLOAT32_MAX:
            raise ValueError(f"invalid float value {raw!r} for {key}")
        return float(raw)
    if key in BOOL_PARAMETERS:
        if raw not in _BOOLS:
            raise ValueError(f"invalid bool value {raw!r} for {key} (use true or false)")
        return _BOOLS[raw]
    if key in LIST_PARAMETERS:
        return raw
    raise ValueError(f"unknown parameter {key!r}")


def _expand(value: str, base_dir: Path) -> str:
    """``~`` and ``~user`` expanded; a relative path taken from the Modelfile's folder."""
    expanded = os.path.expanduser(value)
    return os.path.abspath(os.path.join(base_dir, expanded))


def _looks_like_path(value: str) -> bool:
    return value.startswith(_PATH_PREFIXES) or value.lower().endswith(_WEIGHT_SUFFIXES)


def directory_files(directory: Path) -> list[Path]:
    """The files of a model directory: the weights (first matching pattern set) plus configs."""
    root = glob.escape(str(directory))

    def matches(pattern: str) -> list[str]:
        return sorted(p for p in glob.glob(os.path.join(root, pattern)) if os.path.isfile(p))

    for patterns in WEIGHT_PATTERNS:
        weights = matches(patterns[0])
        if weights:
            found = weights + [p for pattern in patterns[1:] for p in matches(pattern)]
            break
    else:
        raise UsageError(f"no Modelfile or safetensors files found in {directory}")
    for pattern in CONFIG_PATTERNS:
        found += matches(pattern)
    found += matches("tokenizer.model") or matches("*/tokenizer.model")
    real_root = os.path.realpath(directory)
    files = []
    for path in dict.fromkeys(found):
        real = os.path.realpath(path)
        relative = os.path.relpath(real, real_root)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            hint = "download the model with --local-dir <dir>" if ".cache" in relative else None
            raise UsageError(f"insecure path: {relative}", hint=hint)
        files.append(Path(real))
    return files


def _local_files(command: Command, path: str, source: str) -> list[Path]:
    """The files a FROM, ADAPTER or DRAFT path names: regular files, hashed and uploaded."""
    try:
        if os.path.isdir(path):
            return directory_files(Path(path))
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device: never ends
            raise located_error(
                source, command.line, command.column, f"{path} is not a regular file"
            )
        os.close(os.open(path, os.O_RDONLY))
    except UsageError as e:
        error = located_error(source, command.line, command.column, e.message)
        error.hint = e.hint
        raise error from None
    except OSError as e:
        raise located_error(
            source, command.line, command.column, f"cannot read {path}: {e.strerror or e}"
        ) from None
    return [Path(os.path.realpath(path))]


def request_names(paths: list[Path]) -> dict[Path, str]:
    """Request keys of local files: the base name, or the path below their common folder.

    >>> request_names([Path("/m/x.gguf")])
    {PosixPath('/m/x.gguf'): 'x.gguf'}
    >>> sorted(request_names([Path("/m/a.json"), Path("/m/sub/b.json")]).values())
    ['a.json', 'sub/b.json']
    """
    if len(paths) < 2:
        return {p: p.name for p in paths}
    root = os.path.commonpath([str(p.parent) for p in paths])
    return {p: Path(os.path.relpath(p, root)).as_posix() for p in paths}


def plan_create(commands: list[Command], base_dir: Path, source: str = "Modelfile") -> CreatePlan:
    """Turn parsed commands into a :class:`CreatePlan`; local paths are taken from ``base_dir``."""
    fields: dict[str, Any] = {}
    local: dict[str, list[Path]] = {}
    parameters: dict[str, Any] = {}
    licenses: list[str] = []
    messages: list[dict[str, str]] = []
    warnings: list[str] = []
    for command in commands:
        name, value = command.name, command.value
        if name in FILE_FIELDS:
            if "\x00" in value:
                raise located_error(source, command.line, command.column, "NUL in a path")
            path = _expand(value, base_dir)
            if name == "from" and not os.path.exists(path):
                if _looks_like_path(value):
                    raise located_error(
                        source, command.line, command.column, f"no such file: {path}"
                    )
                fields["from"] = value
                continue
            paths = _local_files(command, path, source)
            if name == "adapter":
                local["adapter"] = paths  # as the Go client: the last ADAPTER wins
            else:
                local.setdefault(name, []).extend(paths)
        elif name in ("template", "system", "renderer", "parser"):
            fields[name] = value
        elif name == "license":
            licenses.append(value)
        elif name == "message":
            messages.append({"role": command.key, "content": value})
        elif name == "requires":
            if not _SEMVER.fullmatch(value):
                raise located_error(
                    source,
                    command.line,
                    command.column,
                    "requires must be a valid semver (e.g. 0.14.0)",
                )
            fields["requires"] = value.removeprefix("v")
        elif command.key in DEPRECATED_PARAMETERS:
            warnings.append(f"parameter {command.key} is deprecated")
        else:
            try:
                typed = typed_parameter(command.key, value)
            except ValueError as e:
                raise located_error(source, command.line, command.column, str(e)) from None
            if command.key in LIST_PARAMETERS:
                parameters.setdefault(command.key, []).append(typed)
            else:
                parameters[command.key] = typed
    _check_draft(local, source, commands)
    if licenses:
        fields["license"] = licenses
    if parameters:
        fields["parameters"] = parameters
    if messages:
        fields["messages"] = messages
    files = [
        LocalFile(FILE_FIELDS[name], request_name, path)
        for name, paths in local.items()
        for path, request_name in request_names(list(dict.fromkeys(paths))).items()
    ]
    return CreatePlan(fields, files, warnings)


def _check_draft(local: dict[str, list[Path]], source: str, commands: list[Command]) -> None:
    shared = set(local.get("draft", [])) & set(local.get("from", []))
    if shared:
        draft = next(c for c in commands if c.name == "draft")
        raise located_error(
            source,
            draft.line,
            draft.column,
            f"DRAFT must not reference the same local path as FROM: {sorted(shared)[0]}",
        )


def read_modelfile(path: Path | None) -> CreatePlan:
    """Read, parse and plan a Modelfile; ``None`` means ``./Modelfile``.

    Without ``./Modelfile`` a folder of weights is used as ``FROM .`` (as the Go CLI does);
    a missing file given explicitly is an error (the Go CLI falls back to ``FROM .`` then too).
    """
    if path is None:
        path = Path("Modelfile")
        if not path.exists():
            try:
                directory_files(Path.cwd())
            except UsageError:
                raise UsageError(
                    "Modelfile not found: ./Modelfile",
                    hint="give one with -f PATH, or run create in a folder of model weights",
                ) from None
            return plan_create(parse("FROM ."), Path.cwd())
    if not os.path.lexists(path):
        raise UsageError(f"Modelfile not found: {path}")
    data = read_input(str(path), "the Modelfile", MAX_MODELFILE_BYTES)
    source = str(path)
    commands = parse(_decode(data), source)
    return plan_create(commands, path.resolve().parent, source)


def _decode(data: bytes) -> str:
    """Text of a Modelfile: UTF-8, or UTF-16 with a byte-order mark; bad bytes replaced."""
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace")
    return data.decode("utf-8", "replace")
