"""Presentation: tables, sizes, relative times and JSON, the way the Go CLI prints them.

Pure functions of data to text; the commands decide where the text goes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from ollamactl.terminal import sanitise

TABLE_PADDING = "    "


def _whole(value: Any) -> int:
    """A count sent by the server as an int: 0 when missing or not a finite number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return 0


def _mapping(value: Any) -> dict[str, Any]:
    """A JSON object sent by the server, or an empty one when it sent another type."""
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    """A JSON array sent by the server, or an empty one when it sent another type."""
    return value if isinstance(value, list) else []


def human_bytes(size: int) -> str:
    """Format a byte count with decimal units, as Go's ``format.HumanBytes``.

    >>> [human_bytes(n) for n in (0, 999, 1000, 1500, 605814, 2_019_393_189, 42_000_000_000)]
    ['0 B', '999 B', '1 KB', '1.5 KB', '605 KB', '2.0 GB', '42 GB']
    """
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            value = size / scale
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{size} B"


def human_number(count: int) -> str:
    """Format a parameter count, as Go's ``format.HumanNumber``.

    >>> [human_number(n) for n in (137, 137_000, 133_700_000, 8_000_000_000, 7_600_000_000)]
    ['137', '137K', '133.70M', '8B', '7.6B']
    """
    if count >= 10**9:
        value = count / 10**9
        return f"{value:.0f}B" if value == math.floor(value) else f"{value:.1f}B"
    if count >= 10**6:
        value = count / 10**6
        return f"{value:.0f}M" if value == math.floor(value) else f"{value:.2f}M"
    if count >= 10**3:
        return f"{count / 10**3:.0f}K"
    return str(count)


def human_duration(seconds: float) -> str:
    """Approximate a positive duration, as Go's ``format.humanDuration``.

    >>> [human_duration(s) for s in (0.5, 1, 59, 61, 3000, 3600, 7200, 86400 * 3, 86400 * 20)]
    ['Less than a second', '1 second', '59 seconds', 'About a minute', '50 minutes', \
'About an hour', '2 hours', '3 days', '2 weeks']
    """
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = _go_round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def _go_round(value: float) -> int:
    """Round half away from zero, like Go's ``math.Round``."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def parse_time(text: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp as the server sends it (nanoseconds allowed).

    >>> parse_time("2026-11-24T21:28:34.382694951Z").isoformat()
    '2026-11-24T21:28:34.382694+00:00'
    >>> parse_time("2026-11-25T12:14:48.039015+01:00").isoformat()
    '2026-11-25T12:14:48.039015+01:00'
    >>> parse_time("0001-01-01T00:00:00Z") is None
    True
    """
    if not text or not isinstance(text, str):
        return None
    head, dot, rest = text.partition(".")
    if dot:
        zone = rest.lstrip("0123456789")
        digits = rest[: len(rest) - len(zone)]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def human_time(text: str | None, now: datetime | None = None) -> str:
    """Say how long ago (or from now) a timestamp is, as Go's ``format.HumanTime``.

    >>> now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    >>> human_time("2026-01-09T23:56:00Z", now=now), human_time("2026-01-10T00:04:30Z", now=now)
    ('4 minutes ago', '4 minutes from now')
    >>> human_time("2318-01-01T00:00:00Z", now=now), human_time(None, now=now)
    ('Forever', 'Never')
    """
    moment = parse_time(text)
    if moment is None:
        return "Never"
    delta = ((now or datetime.now(timezone.utc)) - moment).total_seconds()
    if delta <= -21 * 365 * 86400:  # Go: more than 20 whole years ahead
        return "Forever"
    if delta < 0:
        return human_duration(-delta) + " from now"
    return human_duration(delta) + " ago"


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """Lay out rows as the Go CLI's tables (tablewriter): borderless, left-aligned, padded.

    A table is for a person: control characters in a cell (a model name a server chose)
    are shown, not obeyed (see :func:`~ollamactl.terminal.sanitise`).

    >>> print(table([["a", "bb"], ["ccc", "d"]], header=["X", "Y"]).replace(" ", "."), end="")
    X......Y..
    a......bb....
    ccc....d.....
    """
    lines = [list(header)] if header else []
    lines += [[sanitise(cell) for cell in r] for r in rows]
    if not lines:
        return ""
    widths: list[int] = []
    for line in lines:
        for i, cell in enumerate(line):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell))
    out = []
    for line in lines:
        cells = [*line, *[""] * (len(widths) - len(line))]
        out.append("".join(c.ljust(w) + TABLE_PADDING for c, w in zip(cells, widths)))
    if header:  # tablewriter ends the header line with one space, not the padding
        out[0] = out[0][: -len(TABLE_PADDING)] + " "
    return "\n".join(out) + "\n"


def to_json(value: Any) -> str:
    """Serialise for ``--json``: indented, keys in server order, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def model_table(models: Iterable[dict[str, Any]]) -> str:
    """The ``list`` table: NAME, ID, SIZE, MODIFIED."""
    rows = [
        [
            str(m.get("name", "")),
            str(m.get("digest", ""))[:12],
            "-" if m.get("remote_model") else human_bytes(_whole(m.get("size"))),
            human_time(m.get("modified_at")),
        ]
        for m in models
    ]
    return table(rows, header=["NAME", "ID", "SIZE", "MODIFIED"])


def processor(size: int, size_vram: int) -> str:
    """The PROCESSOR column of ``ps``.

    >>> processor(100, 0), processor(100, 100), processor(100, 52), processor(0, 5)
    ('100% CPU', '100% GPU', '48%/52% CPU/GPU', 'Unknown')
    """
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = _go_round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def running_table(models: list[dict[str, Any]], now: datetime | None = None) -> str:
    """The ``ps`` table: NAME, ID, SIZE, PROCESSOR, CONTEXT, UNTIL.

    CONTEXT is shown when the server reports ``context_length`` (Ollama >= 0.11),
    so the table matches the Go CLI of the server's own generation.
    """
    now = now or datetime.now(timezone.utc)
    with_context = any("context_length" in m for m in models)
    rows = []
    for m in models:
        size, vram = _whole(m.get("size")), _whole(m.get("size_vram"))
        expires = parse_time(m.get("expires_at"))
        until = (
            "Stopping..." if expires and expires < now else human_time(m.get("expires_at"), now=now)
        )
        row = [str(m.get("name", "")), str(m.get("digest", ""))[:12], human_bytes(size)]
        row.append(processor(size, vram))
        if with_context:
            row.append(str(m.get("context_length") or ""))
        rows.append([*row, until])
    header = ["NAME", "ID", "SIZE", "PROCESSOR", *(["CONTEXT"] if with_context else []), "UNTIL"]
    return table(rows, header=header)


def _go_float(value: float, exponent_at: int) -> str:
    """Format a float as Go's shortest ``%g`` (exponent_at=6) or ``%v`` (exponent_at=21).

    >>> [_go_float(v, 6) for v in (8e9, 148032.0, 1e-05, 0.8, 10000.0, -2.5)]
    ['8e+09', '148032', '1e-05', '0.8', '10000', '-2.5']
    >>> _go_float(8e9, 21)
    '8000000000'
    """
    if value == 0 or not math.isfinite(value):
        return {math.inf: "+Inf", -math.inf: "-Inf"}.get(value, "0" if value == 0 else "NaN")
    from decimal import Decimal

    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    point = len(digit_tuple) + int(exponent)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    minus = "-" if sign else ""
    exp = point - 1
    if exp < -4 or exp >= exponent_at:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return f"{minus}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return minus + digits + "0" * (point - len(digits))
    return f"{minus}{digits[:point]}.{digits[point:]}"


def go_value(value: Any, exponent_at: int = 6, *, shorten_lists: bool = True) -> str:
    """Format a JSON value as Go prints it after decoding (numbers are float64).

    ``exponent_at`` as for :func:`_go_float`; lists are shortened as ``show -v`` does
    unless ``shorten_lists`` is false (then all items, as ``%v``).

    >>> go_value(0.5), go_value(2.0), go_value(True), go_value(None), go_value(8e9, 21)
    ('0.5', '2', 'true', '<nil>', '8000000000')
    >>> go_value(list(range(9))), go_value(["a", "b"] * 4, 21, shorten_lists=False)
    ('[0 1 2 ...+6 more]', '[a b a b a b a b]')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _go_float(float(value), exponent_at)
    if isinstance(value, list):
        if shorten_lists:
            return _go_array(value)
        return "[" + " ".join(go_value(v, 21, shorten_lists=False) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def _go_array(items: list[Any], target_width: int = 10) -> str:
    """An array shortened as ``show -v`` does: ``[a b ...+N more]``."""
    shown, width = 0, 1
    for i, item in enumerate(items):
        item_width = len(go_value(item, 21)) + (2 if i else 0)
        if width + item_width > target_width and i:
            break
        width += item_width
        shown += 1
    inner = " ".join(go_value(v, 21) for v in items[:shown])
    if shown < len(items):
        return f"[{inner} ...+{len(items) - shown} more]"
    return f"[{inner}]"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def show_info(info: dict[str, Any], *, verbose: bool = False) -> str:
    """The plain ``show`` layout: Model, Capabilities, Projector, Parameters, ... sections."""
    sections: list[tuple[str, list[list[str]]]] = []
    details = _mapping(info.get("details"))
    model_info = info.get("model_info") if isinstance(info.get("model_info"), dict) else None
    rows: list[list[str]] = []
    if info.get("remote_host"):
        rows += [["", "Remote model", str(info.get("remote_model", ""))]]
        rows += [["", "Remote URL", str(info["remote_host"])]]
    if model_info is not None:
        arch = str(model_info.get("general.architecture") or "")
        if arch:
            rows.append(["", "architecture", arch])
        params = details.get("parameter_size") or ""
        count = model_info.get("general.parameter_count")
        if not params and isinstance(count, (int, float)):
            params = human_number(_whole(count))
        if params:
            rows.append(["", "parameters", str(params)])
        for key, label in (
            ("context_length", "context length"),
            ("embedding_length", "embedding length"),
        ):
            value = model_info.get(f"{arch}.{key}")
            if isinstance(value, (int, float)):
                rows.append(["", label, _number(value)])
    else:
        rows += [["", "architecture", str(details.get("family", ""))]]
        rows += [["", "parameters", str(details.get("parameter_size", ""))]]
    rows.append(["", "quantization", str(details.get("quantization_level", ""))])
    if info.get("requires"):
        rows.append(["", "requires", str(info["requires"])])
    sections.append(("Model", rows))
    if _items(info.get("capabilities")):
        sections.append(("Capabilities", [["", str(c)] for c in info["capabilities"]]))
    projector = _mapping(info.get("projector_info"))
    if projector:
        sections.append(("Projector", _projector_rows(projector)))
    if info.get("parameters"):
        lines = str(info["parameters"]).splitlines()
        sections.append(("Parameters", [["", *line.split()] for line in lines if line]))
    if model_info is not None and verbose:
        sections.append(
            ("Metadata", [["", k, go_value(model_info[k])] for k in sorted(model_info)])
        )
    tensors = [t for t in _items(info.get("tensors")) if isinstance(t, dict)]
    if tensors and verbose:
        sections.append(
            (
                "Tensors",
                [
                    ["", str(t.get("name")), str(t.get("type")), _go_array_plain(t.get("shape"))]
                    for t in tensors
                ],
            )
        )
    for key, title in (("system", "System"), ("license", "License")):
        if info.get(key):
            sections.append((title, _head(str(info[key]), 2)))
    return "".join(f"  {title}\n{table(rows)}\n" for title, rows in sections)


def _go_array_plain(values: Any) -> str:
    return "[" + " ".join(str(v) for v in _items(values)) + "]"


def _projector_rows(projector: dict[str, Any]) -> list[list[str]]:
    arch = str(projector.get("general.architecture") or "")
    rows = [["", "architecture", arch]] if arch else []
    count = projector.get("general.parameter_count")
    if isinstance(count, (int, float)):
        rows.append(["", "parameters", human_number(_whole(count))])
    for suffix, label in (
        ("embedding_length", "embedding length"),
        ("projection_dim", "dimensions"),
    ):
        for modality in ("vision", "audio"):
            value = projector.get(f"{arch}.{modality}.{suffix}")
            if isinstance(value, (int, float)):
                rows.append(["", label, _number(value)])
                break
    return rows


def _head(text: str, n: int) -> list[list[str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [["", line] for line in lines[:n]]
    if len(lines) > n:
        rows.append(["", "..."])
    return rows
