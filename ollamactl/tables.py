"""Listings for scripts: the order (``--sort``) and machine formats (JSON, TSV, CSV) of list and ps.

The table keeps the Go CLI's human columns (``render``); the machine formats carry raw
values instead: sizes in bytes, times in ISO 8601 (UTC, ``Z``), the full digest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import timezone
from typing import Any, NamedTuple

from ollamactl.errors import UsageError
from ollamactl.render import parse_time

Model = dict[str, Any]
#: Values of ``--output-format``: the Go table, or one of the machine formats.
FORMATS = ("table", "json", "tsv", "csv")
#: A format that :func:`delimited` writes.
DELIMITERS = {"tsv": "\t", "csv": ","}


def _text(key: str) -> Callable[[Model], str]:
    return lambda model: str(model.get(key) or "")


def _bytes(key: str) -> Callable[[Model], str]:
    def value(model: Model) -> str:
        raw = model.get(key)
        return str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else ""

    return value


def iso_time(text: Any) -> str:
    """A server timestamp in ISO 8601, UTC, to the second; empty when there is none.

    >>> iso_time("2026-11-25T12:14:48.039015123+01:00"), iso_time("0001-01-01T00:00:00Z")
    ('2026-11-25T11:14:48Z', '')
    """
    moment = parse_time(text)
    if moment is None:
        return ""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _time(key: str) -> Callable[[Model], str]:
    return lambda model: iso_time(model.get(key))


class Column(NamedTuple):
    """A column of a machine format: its header (the API's field name) and its value."""

    name: str
    value: Callable[[Model], str]


LIST_COLUMNS = (
    Column("name", _text("name")),
    Column("digest", _text("digest")),
    Column("size", _bytes("size")),
    Column("modified_at", _time("modified_at")),
)
PS_COLUMNS = (
    Column("name", _text("name")),
    Column("digest", _text("digest")),
    Column("size", _bytes("size")),
    Column("size_vram", _bytes("size_vram")),
    Column("context_length", _bytes("context_length")),
    Column("expires_at", _time("expires_at")),
)
#: The columns in front of the others with ``--all-profiles``.
FLEET_COLUMNS = (Column("profile", _text("profile")), Column("host", _text("host")))


class SortKey(NamedTuple):
    """How ``--sort NAME`` orders models: by ``key``, the largest first if ``descending``."""

    key: Callable[[Model], Any]
    descending: bool


def _size(model: Model) -> int:
    value = model.get("size")
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _timestamp(key: str, missing: float) -> Callable[[Model], float]:
    def value(model: Model) -> float:
        moment = parse_time(model.get(key))
        return missing if moment is None else moment.timestamp()

    return value


def _name(model: Model) -> tuple[str, str]:
    name = str(model.get("name", ""))
    return name.lower(), name


_NAME = SortKey(_name, descending=False)
_SIZE = SortKey(_size, descending=True)
#: ``--sort`` of list: name (A to Z, ignoring case), size (largest first), modified (newest first).
LIST_SORTS = {
    "name": _NAME,
    "size": _SIZE,
    "modified": SortKey(_timestamp("modified_at", float("-inf")), descending=True),
}
#: ``--sort`` of ps: name, size (memory, largest first), until (the next to be unloaded first;
#: a model kept forever last).
PS_SORTS = {
    "name": _NAME,
    "size": _SIZE,
    "until": SortKey(_timestamp("expires_at", float("inf")), descending=False),
}


def sort_models(models: Iterable[Model], how: SortKey | None) -> list[Model]:
    """The models in the order ``how`` says (stable: ties keep the server's order)."""
    return sorted(models, key=how.key, reverse=how.descending) if how else list(models)


def matching(models: Iterable[Model], prefixes: Sequence[str], *, ignore_case: bool) -> list[Model]:
    """The models whose name starts with one of ``prefixes`` (all of them when there is none).

    >>> models = [{"name": "Tiny"}, {"name": "qwen"}, {"name": "xl"}]
    >>> [m["name"] for m in matching(models, ["t", "x"], ignore_case=True)]
    ['Tiny', 'xl']
    """
    fold: Callable[[str], str] = str.lower if ignore_case else str
    wanted = tuple(fold(prefix) for prefix in prefixes)
    return [m for m in models if not wanted or fold(str(m.get("name", ""))).startswith(wanted)]


def delimited(
    models: Iterable[Model], columns: Sequence[Column], output_format: str, *, headers: bool
) -> str:
    """The models as TSV or CSV, one line per model (RFC 4180 quoting for CSV).

    TSV has no quoting: a tab or line break inside a value becomes a space.
    """
    rows: list[Sequence[str]] = [[c.name for c in columns]] if headers else []
    rows += [[c.value(m) for c in columns] for m in models]
    if output_format == "tsv":
        clean = str.maketrans("\t\r\n", "   ")
        return "".join("\t".join(cell.translate(clean) for cell in row) + "\n" for row in rows)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def choose_format(
    output_format: str | None, *, as_json: bool, quiet: bool, no_headers: bool
) -> str:
    """The format asked for: ``--output-format``, ``--json`` (its shorthand) or ``-q`` (names).

    >>> choose_format(None, as_json=True, quiet=False, no_headers=False)
    'json'
    >>> choose_format("tsv", as_json=False, quiet=False, no_headers=True)
    'tsv'
    """
    if as_json and output_format not in (None, "json"):
        raise UsageError(f"--json is short for --output-format json, not {output_format}")
    chosen = "json" if as_json else output_format or "table"
    if quiet and chosen not in ("table", "json"):
        raise UsageError(
            f"-q prints names only; it cannot be combined with --output-format {chosen}"
        )
    if no_headers and chosen == "json":
        raise UsageError("--no-headers applies to the table, tsv and csv, not to JSON")
    return "names" if quiet and chosen == "table" else chosen
