"""What run, chat and embed share: the prompt, the profile's defaults, the model, its media.

Pure preparation before any answer is shown: every local check (options, formats,
images) happens here, before a request is sent.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import click

from ollamactl.answer import DisplayOptions, Reply, StreamPrinter, finish_answer
from ollamactl.app import App, echo_json
from ollamactl.errors import ModelNotFound, UsageError
from ollamactl.params import (
    RequestOptions,
    extract_media,
    parse_format,
    parse_keep_alive,
    parse_options,
    parse_think,
    profile_request,
    read_media,
)
from ollamactl.session import capabilities, check_takes_images, fit_think, is_multimodal
from ollamactl.terminal import Terminal, without_surrogates

if TYPE_CHECKING:
    from ollamactl.client import JSON


def request_from(
    *,
    system: str | None,
    options: tuple[str, ...],
    response_format: str | None,
    keepalive: str | None,
    think: str | None,
    no_stream: bool,
) -> RequestOptions:
    """Parse the options of :func:`~ollamactl.options.request_options` (checked locally)."""
    return RequestOptions(
        system=system,
        options=parse_options(options),
        format=parse_format(response_format),
        keep_alive=parse_keep_alive(keepalive),
        think=parse_think(think),
        stream=not no_stream,
    )


def display_from(
    *, hidethinking: bool, nowordwrap: bool, verbose: bool, as_json: bool
) -> DisplayOptions:
    """The options of :func:`~ollamactl.options.display_options`."""
    return DisplayOptions(
        as_json=as_json, hide_thinking=hidethinking, word_wrap=not nowordwrap, verbose=verbose
    )


def flags_of_generation(
    *,
    images: tuple[str, ...],
    hidethinking: bool,
    nowordwrap: bool,
    verbose: bool,
    as_json: bool,
    **request_flags: Any,
) -> tuple[RequestOptions, list[str], DisplayOptions]:
    """The options of :func:`~ollamactl.options.generation_options` but ``--insecure``: the
    request, the ``-i`` images (read) and the display."""
    display = display_from(
        hidethinking=hidethinking, nowordwrap=nowordwrap, verbose=verbose, as_json=as_json
    )
    return request_from(**request_flags), read_images(images), display


def read_images(paths: tuple[str, ...]) -> list[str]:
    """The ``-i`` files as base64, each checked to be an image or a WAV file."""
    return [read_media(path)[1] for path in paths]


def apply_profile_defaults(app: App, request: RequestOptions) -> None:
    """A profile's ``options`` (under the -p flags) and ``keep_alive`` (unless --keepalive)."""
    profile = profile_request(app.settings.defaults)
    request.options = {**profile.options, **request.options}
    if request.keep_alive is None:
        request.keep_alive = profile.keep_alive


def default_model(app: App, model: str | None) -> str:
    """MODEL, or the profile's ``model`` when no MODEL was given."""
    model = model or app.settings.defaults.get("model")
    if not model:
        raise UsageError("missing MODEL", hint="give one, or set `model` in the profile")
    return str(model)


def read_prompt(words: tuple[str, ...], terminal: Terminal) -> tuple[str, bool, bool]:
    """The prompt as the Go CLI builds it: (text, whether one was given, interactive).

    Piped stdin is prepended to the words; the session is interactive only when
    there is no prompt and both stdin and stdout are terminals.
    """
    parts = [without_surrogates(word) for word in words]
    if not terminal.stdin_is_tty:
        piped = terminal.read_stdin()
        if piped:
            parts.insert(0, piped)
    return " ".join(parts), bool(parts), not parts and terminal.interactive


def show_or_pull(app: App, model: str, *, insecure: bool = False) -> JSON:
    """``/api/show`` the model; pull it with progress first if the server lacks it (as Go)."""
    try:
        return app.client.show(model)
    except ModelNotFound:
        from ollamactl.transfers import Transfer, pull_model

        pull_model(app.client, app.terminal, model, Transfer(insecure=insecure))
        return app.client.show(model)


def check_can_generate(info: JSON) -> None:
    """Refuse image-generation models, as the Go CLI does."""
    if "image" in capabilities(info):
        raise UsageError("image generation models are not currently supported")


def ready_to_generate(
    app: App, model: str, info: JSON, request: RequestOptions, images: list[str]
) -> None:
    """The checks of run and chat once the model is known, and the --think it takes."""
    check_can_generate(info)
    if images:
        check_takes_images(model, info)
    request.think = fit_think(app.client, request.think, partial(click.echo, err=True))


def show_answer(
    printer: StreamPrinter,
    reply: Reply,
    display: DisplayOptions,
    terminal: Terminal,
    *,
    chat: bool,
    offered: bool,
    blank_lines: bool,
) -> None:
    """After the stream: the response object (--json) or the tool calls, then the statistics."""
    if display.as_json:
        echo_json(reply.response_object(chat=chat))
    else:
        printer.tool_calls(reply, offered=offered)
    finish_answer(reply, display, terminal, blank_lines=blank_lines)


def take_prompt_media(text: str, info: JSON, terminal: Terminal) -> tuple[str, list[str]]:
    """For a multimodal model, move the image files named in the prompt into the request."""
    if not is_multimodal(info):
        return text, []
    text, found = extract_media(text)
    for path, kind, _ in found:
        click.echo(f"Added {kind} '{path}'", file=terminal.stderr)
    return text, [data for _, _, data in found]


def embeddings_of(response: JSON) -> list[list[Any]]:
    """The vectors of an ``/api/embed`` answer (their shape is checked by ``Client.embed``)."""
    return response.get("embeddings") or []
