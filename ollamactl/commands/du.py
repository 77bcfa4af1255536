"""``ollamactl du``: the disk the server's models take, largest first, and the memory in use."""

from __future__ import annotations

from typing import Any

import click

from ollamactl import render
from ollamactl.app import App, echo_json, pass_app
from ollamactl.options import json_option

NOTE = (
    "note: layers shared by different models count in each; copies (same ID) once in TOTAL."
    " Partial downloads and orphaned blobs do not show: see `ollamactl du --help`."
)


def usage(tags: list[dict[str, Any]], running: list[dict[str, Any]]) -> dict[str, Any]:
    """The models largest first, each with its memory if loaded and the model it copies; totals.

    A copy (same digest) names the oldest model of that digest (``tags`` is newest first).

    >>> report = usage(
    ...     [{"name": "b", "digest": "d", "size": 5}, {"name": "a", "digest": "d", "size": 5}],
    ...     [{"name": "b", "size": 9, "size_vram": 0}],
    ... )
    >>> [(m["name"], m["copy_of"]) for m in report["models"]], report["total"]
    ([('a', None), ('b', 'a')], {'models': 2, 'size': 5, 'memory': 9, 'size_vram': 0})
    """
    loaded = {str(m.get("name", "")): m for m in running}
    oldest: dict[str, str] = {}  # digest -> name; the server lists the newest first
    for tag in reversed(tags):
        oldest.setdefault(str(tag.get("digest", "")), str(tag.get("name", "")))
    models = []
    for tag in sorted(tags, key=lambda m: (-_bytes(m.get("size")), str(m.get("name", "")))):
        name, digest = str(tag.get("name", "")), str(tag.get("digest", ""))
        first = oldest[digest] if digest else name
        memory = loaded.get(name)
        models.append(
            {
                "name": name,
                "digest": digest,
                "size": _bytes(tag.get("size")),
                "copy_of": None if first == name else first,
                "memory": None if memory is None else _bytes(memory.get("size")),
                "size_vram": None if memory is None else _bytes(memory.get("size_vram")),
            }
        )
    total = {
        "models": len(models),
        "size": sum(m["size"] for m in models if m["copy_of"] is None),
        "memory": sum(_bytes(m.get("size")) for m in running),
        "size_vram": sum(_bytes(m.get("size_vram")) for m in running),
    }
    return {"models": models, "total": total}


def _bytes(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _table(report: dict[str, Any]) -> str:
    def row(name: str, digest: str, size: int, memory: int | None, vram: int | None) -> list[str]:
        cells = [name, digest[:12], render.human_bytes(size)]
        if memory is None or vram is None:
            return [*cells, "-", "-"]
        processor = render.processor(memory, vram) if memory else "-"
        return [*cells, render.human_bytes(memory), processor]

    rows = [
        row(m["name"], m["digest"], m["size"], m["memory"], m["size_vram"])
        for m in report["models"]
    ]
    total = report["total"]
    rows.append(row("TOTAL", "", total["size"], total["memory"], total["size_vram"]))
    return render.table(rows, header=["NAME", "ID", "SIZE", "MEMORY", "PROCESSOR"])


@click.command()
@json_option("the models, their memory and the totals (in bytes)")
@pass_app
def du(app: App, as_json: bool) -> None:
    """Show the disk and memory the models use.

    Lists the models largest first with their size on disk (as `list`), and
    for those loaded now, the memory they take and where (as `ps`). TOTAL
    counts copies of a model (same ID) once; layers that different models
    share (a model created FROM another) are counted in each of them.

    Partial downloads and orphaned blobs are not visible through the API.
    To see and clean them, on the server:

    \b
      cd "${OLLAMA_MODELS:-$HOME/.ollama/models}"  # service: /usr/share/ollama/.ollama/models
      du -sh blobs                                 # what the blobs take on disk
      du -ch blobs/*-partial* | tail -1            # partial downloads
      comm -23 <(ls blobs | grep -E '^sha256-[0-9a-f]{64}$' | sort) \\
        <(grep -rhoE 'sha256:[0-9a-f]{64}' manifests | tr : - | sort -u)  # orphaned blobs
      sudo systemctl restart ollama  # removes both at start, unless OLLAMA_NOPRUNE is set

    \b
    Examples:
      ollamactl du
      ollamactl du --json | jq '.total.size'
    """
    report = usage(app.client.tags(), app.client.ps())
    if as_json:
        echo_json(report)
        return
    click.echo(_table(report), nl=False)
    click.echo(NOTE, err=True)
