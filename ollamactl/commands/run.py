"""``run``: one answer to a prompt, or the REPL on a terminal (as ``ollama run``).

Show the model (pulling it when missing), then one ``/api/generate`` call. Tokens go
to stdout as they arrive (a flush per chunk); thinking, progress and statistics go to
stderr. On an embedding model it prints the embedding.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ollamactl.answer import Reply, StreamPrinter, finish_answer
from ollamactl.app import App, echo_json, pass_app
from ollamactl.completion import complete_models
from ollamactl.conversations import Conversation
from ollamactl.errors import APIError, UsageError
from ollamactl.generation import (
    apply_profile_defaults,
    check_can_generate,
    controls_from,
    default_model,
    embed_body,
    embeddings_of,
    read_prompt,
    show_or_pull,
    take_prompt_media,
)
from ollamactl.options import GenerationCommand, embedding_options, generation_options
from ollamactl.params import RequestControls
from ollamactl.session import Session, capabilities

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
    **flags: Any,
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
      ollamactl run llama3.2 "Why is the sky blue?" -o temperature=0 -o seed=1
      git diff | ollamactl run qwen3 --think=low "Write a commit message"
      ollamactl run llama3.2 --format @schema.json --json "List 3 colors" | jq .response
      ollamactl run gemma3 "What is in this picture?" -i photo.jpg
      ollamactl run llama3.2 "" --keepalive -1
    """
    controls = controls_from(**flags)
    model = default_model(app, model)
    apply_profile_defaults(app, controls)
    text, _, interactive = read_prompt(prompt, app.terminal)
    info = show_or_pull(app, model, insecure=insecure)
    if "embedding" in capabilities(info):
        _embed_prompt(app, model, text, controls, truncate, dimensions)
        return
    check_can_generate(info)
    session = Session(app, info, controls, Conversation(id="", model=model))
    if interactive:
        from ollamactl.repl import Repl

        if controls.system:
            session.set_system(controls.system)
        Repl(session).run()
        return
    _generate_once(session, text)


def _generate_once(session: Session, text: str) -> None:
    controls = session.controls
    text, found = take_prompt_media(text, session.info)
    body: JSON = {"model": session.model, "prompt": text}
    if controls.system:
        body["system"] = controls.system
    images = controls.images + found
    if images:
        body["images"] = images
    body.update(session.request_fields())
    printer = StreamPrinter(controls, session.app.terminal, quiet=controls.as_json)
    reply = Reply() if controls.as_json else Reply.display_only()
    printer.stream(session.app.client.generate(body), reply, chat=False)
    if reply.tool_calls and not controls.as_json:
        printer.tool_call_notes(reply.tool_calls)
    if controls.as_json:
        echo_json(reply.response_object(chat=False))
    finish_answer(reply, controls, blank_lines=bool(text))


def _embed_prompt(
    app: App,
    model: str,
    text: str,
    controls: RequestControls,
    truncate: bool | None,
    dimensions: int | None,
) -> None:
    """`run` on an embedding model: print ``embeddings[0]`` as a compact JSON array (as Go)."""
    if not text:
        raise UsageError(
            f'embedding models require input text. Usage: ollamactl run {model} "your text here"'
        )
    body = embed_body(model, text, controls.keep_alive, controls.options, truncate, dimensions)
    response = app.client.embed(body)
    if controls.as_json:
        echo_json(response)
        return
    embeddings = embeddings_of(response)
    if not embeddings:
        raise APIError("no embeddings returned")
    click.echo(json.dumps(embeddings[0], separators=(",", ":")))
