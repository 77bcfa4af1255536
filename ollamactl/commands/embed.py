"""``embed``: embeddings of texts, one JSON array per input and line."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING

import click

from ollamactl.app import App, echo_json, pass_app
from ollamactl.completion import complete_models
from ollamactl.errors import UsageError
from ollamactl.generation import default_model, embeddings_of
from ollamactl.options import (
    InputFile,
    embedding_options,
    json_option,
    keepalive_option,
    model_options_option,
    retired_o_option,
)
from ollamactl.params import parse_keep_alive, parse_options

if TYPE_CHECKING:
    from ollamactl.client import JSON


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _lines(stream: Iterable[str]) -> Iterator[str]:
    """The non-blank lines of a text stream, without their line ends."""
    for line in stream:
        line = line.rstrip("\r\n")
        if line.strip():
            yield line


@click.command()
@click.argument("model", required=False, shell_complete=complete_models)
@click.argument("texts", nargs=-1)
@click.option(
    "-f",
    "--file",
    "input_file",
    type=InputFile("the input file", text=True),
    help="Read the inputs from a file, one per line ('-': stdin).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Inputs per request.",
)
@embedding_options
@keepalive_option
@model_options_option
@retired_o_option
@json_option()
@pass_app
def embed(
    app: App,
    model: str | None,
    texts: tuple[str, ...],
    input_file: IO[str] | None,
    batch_size: int,
    truncate: bool | None,
    dimensions: int | None,
    keepalive: str | None,
    options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Compute embeddings: one JSON array per input, one per line.

    Inputs are the TEXT arguments, the lines of -f FILE, or the lines of stdin
    (blank lines are skipped). They are sent in batches of --batch-size; --json
    prints one response object for all of them. Without MODEL, the profile's
    `model` is used.

    \b
    Examples:
      ollamactl embed nomic-embed-text "The sky is blue" "Grass is green"
      ollamactl embed nomic-embed-text -f sentences.txt --dimensions 256 > vectors.jsonl
      ollamactl embed nomic-embed-text --json "hello" | jq '.embeddings[0] | length'
    """
    parsed_options = parse_options(options)
    keep_alive = parse_keep_alive(keepalive)
    model = default_model(app, model)
    if texts and input_file is not None:
        raise UsageError("give the inputs either as TEXT arguments or with -f FILE, not both")
    inputs: Iterable[str]
    if texts:
        inputs = texts
    elif input_file is not None:
        inputs = _lines(input_file)
    elif not app.terminal.stdin_is_tty:
        inputs = _lines(app.terminal.stdin_lines())
    else:
        inputs = ()
    merged: JSON | None = None
    sent = 0
    for batch in _batches(inputs, batch_size):
        response = app.client.embed(
            model,
            batch,
            truncate=truncate,
            dimensions=dimensions,
            keep_alive=keep_alive,
            options=parsed_options,
        )
        sent += len(batch)
        if as_json:
            merged = _merge_embed_responses(merged, response)
            continue
        for vector in embeddings_of(response):
            click.echo(json.dumps(vector, separators=(",", ":")))
    if not sent:
        raise UsageError("no input", hint="give TEXT arguments, -f FILE, or lines on stdin")
    if merged is not None:
        echo_json(merged)


def _merge_embed_responses(merged: JSON | None, response: JSON) -> JSON:
    """One response for several batches: embeddings concatenated, counts and times added."""
    if merged is None:
        return dict(response)
    merged["embeddings"] = [*embeddings_of(merged), *embeddings_of(response)]
    for key in ("total_duration", "load_duration", "prompt_eval_count"):
        if isinstance(response.get(key), int):
            merged[key] = int(merged.get(key) or 0) + response[key]
    return merged
