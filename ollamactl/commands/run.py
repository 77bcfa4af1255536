"""``run``: one answer to a prompt, or the REPL on a terminal (as ``ollama run``).

Show the model (pulling it when missing), then one ``/api/generate`` call. Tokens go
to stdout as they arrive (a flush per chunk); thinking, progress and statistics go to
stderr. On an embedding model it prints the embedding.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ollamactl.answer import DisplayOptions, Reply, StreamPrinter
from ollamactl.app import App, echo_json, pass_app
from ollamactl.completion import complete_models
from ollamactl.conversations import Conversation
from ollamactl.errors import APIError, UsageError
from ollamactl.generation import (
    apply_profile_defaults,
    default_model,
    embeddings_of,
    flags_of_generation,
    read_prompt,
    ready_to_generate,
    show_answer,
    show_or_pull,
    take_prompt_media,
)
from ollamactl.options import GenerationCommand, embedding_options, generation_options
from ollamactl.params import RequestOptions
from ollamactl.session import (
    Session,
    capabilities,
    request_arguments,
)

if TYPE_CHECKING:
    from ollamactl.client import JSON


@click.command(cls=GenerationCommand)
@click.argument("model", required=False, shell_complete=complete_models)
@click.argument("prompt", nargs=-1)
@generation_options
@embedding_options
@pass_app
def run(
    app: App,
    model: str | None,
    prompt: tuple[str, ...],
    insecure: bool,
    truncate: bool | None,
    dimensions: int | None,
    **generation_flags: Any,
) -> None:
    """Run a model: answer PROMPT, or chat in a REPL on a terminal.

    As `ollama run`: a missing model is pulled first; piped stdin is put in
    front of the prompt; with no prompt on a terminal an interactive session
    starts (/? for help); `run MODEL ""` only loads the model. Tokens stream to
    stdout, thinking and --verbose statistics to stderr. For an embedding
    model it prints the embedding as a JSON array. Without MODEL, the
    profile's `model` is used; its `options` and `keep_alive` apply too.

    \b
    Examples:
      ollamactl run llama3.2
      ollamactl run llama3.2 "Why is the sky blue?" -p temperature=0 -p seed=1
      git diff | ollamactl run qwen3 --think=low "Write a commit message"
      ollamactl run llama3.2 --format @schema.json --json "List 3 colors" | jq .response
      ollamactl run gemma3 "What is in this picture?" -i photo.jpg
      ollamactl run llama3.2 "" --keepalive -1
    """
    request, attached, display = flags_of_generation(**generation_flags)
    model = default_model(app, model)
    apply_profile_defaults(app, request)
    text, _, interactive = read_prompt(prompt, app.terminal)
    info = show_or_pull(app, model, insecure=insecure)
    if "embedding" in capabilities(info):
        _embed_prompt(app, model, text, request, display, truncate, dimensions)
        return
    ready_to_generate(app, model, info, request, attached)
    if interactive:
        from ollamactl.repl import Repl

        session = Session(app.client, info, request, Conversation(id="", model=model))
        if request.system:
            session.set_system(request.system)
        Repl(session, display, app.terminal, images=attached, redact=app.redact).run()
        return
    _generate_once(app, model, info, text, attached, request, display)


def _generate_once(
    app: App,
    model: str,
    info: JSON,
    text: str,
    images: list[str],
    request: RequestOptions,
    display: DisplayOptions,
) -> None:
    """One ``/api/generate`` call, its answer shown as it streams (or as JSON at the end)."""
    text, found = take_prompt_media(text, info, app.terminal)
    events = app.client.generate(
        model,
        text,
        system=request.system,
        images=images + found,
        **request_arguments(request, info),
    )
    printer = StreamPrinter(display, app.terminal, quiet=display.as_json)
    reply = Reply() if display.as_json else Reply.display_only()
    printer.stream(events, reply, chat=False)
    show_answer(
        printer, reply, display, app.terminal, chat=False, offered=False, blank_lines=bool(text)
    )


def _embed_prompt(
    app: App,
    model: str,
    text: str,
    request: RequestOptions,
    display: DisplayOptions,
    truncate: bool | None,
    dimensions: int | None,
) -> None:
    """`run` on an embedding model: print ``embeddings[0]`` as a compact JSON array (as Go)."""
    if not text:
        raise UsageError(
            f'embedding models require input text. Usage: ollamactl run {model} "your text here"'
        )
    response = app.client.embed(
        model,
        text,
        truncate=truncate,
        dimensions=dimensions,
        keep_alive=request.keep_alive,
        options=request.options,
    )
    if display.as_json:
        echo_json(response)
        return
    embeddings = embeddings_of(response)
    if not embeddings:
        raise APIError("no embeddings returned")
    click.echo(json.dumps(embeddings[0], separators=(",", ":")))
