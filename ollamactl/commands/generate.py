"""Generation: run, chat (with saved conversations) and embed.

``run`` follows the Go CLI: show the model (pulling it when missing), then one
``/api/generate`` call, or the REPL on a terminal. ``chat`` talks through
``/api/chat`` with the whole history and saves it locally after every message.
Tokens go to stdout as they arrive (a flush per chunk); thinking, progress and
statistics go to stderr.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from ollamactl import render
from ollamactl.answer import Reply, StreamPrinter, finish_answer
from ollamactl.cli import App, echo_json, json_option, pass_app
from ollamactl.completion import complete_models
from ollamactl.conversations import Conversation, ConversationStore, transcript
from ollamactl.errors import APIError, ModelNotFound, UsageError
from ollamactl.params import (
    THINK_LEVELS,
    RequestControls,
    extract_media,
    parse_format,
    parse_keep_alive,
    parse_options,
    parse_think,
    read_media,
)
from ollamactl.session import Session, capabilities, is_multimodal

if TYPE_CHECKING:
    from ollamactl.client import JSON

F = TypeVar("F", bound=Callable[..., Any])

SESSION_COMMAND = "session"


# -- command-line plumbing ----------------------------------------------------------------


def _explicit_think(args: list[str]) -> list[str]:
    """Make a bare ``--think`` not swallow the next word unless that word is a level.

    >>> _explicit_think(["m", "--think", "why?"]), _explicit_think(["m", "--think", "high"])
    (['m', '--think=true', 'why?'], ['m', '--think', 'high'])
    """
    rewritten = []
    for index, arg in enumerate(args):
        if arg == "--":
            return rewritten + args[index:]
        following = args[index + 1] if index + 1 < len(args) else None
        is_bare = arg == "--think" and following not in THINK_LEVELS
        rewritten.append("--think=true" if is_bare else arg)
    return rewritten


class GenerationCommand(click.Command):
    """A command whose ``--think`` takes an optional level, as ``ollama run --think``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _explicit_think(args))


def generation_options(func: F) -> F:
    """The request controls shared by run and chat."""
    decorators = [
        click.option("--system", metavar="TEXT", help="System message for the model."),
        click.option(
            "-o",
            "--option",
            "options",
            multiple=True,
            metavar="KEY=VALUE",
            help="Model parameter (repeatable), e.g. -o temperature=0 -o num_ctx=8192.",
        ),
        click.option(
            "--format",
            "response_format",
            metavar="json|@FILE|SCHEMA",
            help="Response format: json, a JSON schema file (@schema.json) or inline schema.",
        ),
        click.option(
            "-i",
            "--image",
            "images",
            multiple=True,
            metavar="PATH",
            help="Attach an image (repeatable).",
        ),
        keepalive_option,
        click.option(
            "--think",
            is_flag=False,
            flag_value="true",
            default=None,
            metavar="[=LEVEL]",
            help="Think before answering: --think, --think=false or --think=high|medium|low|max.",
        ),
        click.option("--hidethinking", is_flag=True, help="Do not show the thinking output."),
        click.option("--nowordwrap", is_flag=True, help="Do not wrap words on a terminal."),
        click.option("--verbose", is_flag=True, help="Show timings and token rates (stderr)."),
        click.option("--no-stream", is_flag=True, help="Wait for the whole answer."),
        click.option(
            "--json", "as_json", is_flag=True, help="Print the final response object as JSON."
        ),
        click.option("--insecure", is_flag=True, help="Pull a missing model over plain HTTP."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def keepalive_option(func: F) -> F:
    """``--keepalive``: how long the model stays loaded after the request."""
    return click.option(
        "--keepalive",
        metavar="DURATION",
        help="Keep the model loaded this long: 5m, 1h30m, 300 (seconds), -1 (forever), 0.",
    )(func)


def embedding_options(func: F) -> F:
    """``--truncate/--no-truncate`` and ``--dimensions`` for embedding models."""
    func = click.option(
        "--dimensions", type=click.IntRange(1), help="Embedding dimensions (embedding models)."
    )(func)
    return click.option(
        "--truncate/--no-truncate",
        default=None,
        help="Truncate inputs longer than the context [server default: truncate].",
    )(func)


def json_file_option(flag: str, help: str) -> Callable[[F], F]:
    """An option naming a JSON file (``-``: stdin), passed as ``<name>_file``."""
    destination = flag.lstrip("-") + "_file"
    return click.option(
        flag, destination, type=click.File("r", encoding="utf-8"), metavar="FILE", help=help
    )


def controls_from(
    *,
    system: str | None,
    options: tuple[str, ...],
    response_format: str | None,
    images: tuple[str, ...],
    keepalive: str | None,
    think: str | None,
    hidethinking: bool,
    nowordwrap: bool,
    verbose: bool,
    no_stream: bool,
    as_json: bool,
) -> RequestControls:
    """Parse the request-control flags (all local checks happen before any request)."""
    return RequestControls(
        system=system,
        options=parse_options(options),
        format=parse_format(response_format),
        images=[read_media(path)[1] for path in images],
        keep_alive=parse_keep_alive(keepalive),
        think=parse_think(think),
        hide_thinking=hidethinking,
        word_wrap=not nowordwrap,
        verbose=verbose,
        stream=not no_stream,
        as_json=as_json,
    )


def apply_profile_defaults(app: App, controls: RequestControls) -> None:
    """A profile's ``options`` (under the -o flags) and ``keep_alive`` (unless --keepalive)."""
    defaults = app.settings.defaults
    if isinstance(defaults.get("options"), dict):
        controls.options = {**defaults["options"], **controls.options}
    if controls.keep_alive is None and defaults.get("keep_alive") is not None:
        controls.keep_alive = parse_keep_alive(str(defaults["keep_alive"]))


def default_model(app: App, model: str | None) -> str:
    """MODEL, or the profile's ``model`` when no MODEL was given."""
    model = model or app.settings.defaults.get("model")
    if not model:
        raise UsageError("missing MODEL", hint="give one, or set `model` in the profile")
    return str(model)


def read_prompt(words: tuple[str, ...]) -> tuple[str, bool, bool]:
    """The prompt as the Go CLI builds it: (text, whether one was given, interactive).

    Piped stdin is prepended to the words; the session is interactive only when
    there is no prompt and both stdin and stdout are terminals.
    """
    parts = [_without_surrogates(word) for word in words]
    stdin_is_terminal = sys.stdin.isatty()
    if not stdin_is_terminal:
        piped = _read_stdin()
        if piped:
            parts.insert(0, piped)
    interactive = not parts and stdin_is_terminal and sys.stdout.isatty()
    return " ".join(parts), bool(parts), interactive


def _read_stdin() -> str:
    """All of stdin as UTF-8, undecodable bytes replaced by U+FFFD (as Go's JSON encoder does)."""
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:
        return _without_surrogates(sys.stdin.read())
    return binary.read().decode("utf-8", errors="replace")


def _without_surrogates(text: str) -> str:
    """Text with the bytes Python could not decode (surrogate escapes) replaced by U+FFFD.

    >>> _without_surrogates("caf\\udce9 ?")
    'caf\\ufffd ?'
    """
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


# -- the model ----------------------------------------------------------------------------


def show_or_pull(app: App, model: str, *, insecure: bool = False) -> JSON:
    """``/api/show`` the model; pull it with progress first if the server lacks it (as Go)."""
    try:
        return app.client.show(model)
    except ModelNotFound:
        from ollamactl.commands.transfer import pull_model

        pull_model(app, model, insecure=insecure)
        return app.client.show(model)


def check_can_generate(info: JSON) -> None:
    """Refuse image-generation models, as the Go CLI does."""
    if "image" in capabilities(info):
        raise UsageError("image generation models are not currently supported")


def take_prompt_media(text: str, info: JSON) -> tuple[str, list[str]]:
    """For a multimodal model, move the image files named in the prompt into the request."""
    if not is_multimodal(info):
        return text, []
    text, found = extract_media(text)
    for path, kind, _ in found:
        click.echo(f"Added {kind} '{path}'", err=True)
    return text, [data for _, _, data in found]


# -- run ----------------------------------------------------------------------------------


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
    text, _, interactive = read_prompt(prompt)
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
    printer = StreamPrinter(controls, quiet=controls.as_json)
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
    body = _embed_body(model, text, controls.keep_alive, controls.options, truncate, dimensions)
    response = app.client.embed(body)
    if controls.as_json:
        echo_json(response)
        return
    embeddings = embeddings_of(response)
    if not embeddings:
        raise APIError("no embeddings returned")
    click.echo(json.dumps(embeddings[0], separators=(",", ":")))


# -- chat ---------------------------------------------------------------------------------

CHAT_HELP = """Chat with a model; conversations are saved locally after every message.

\b
  ollamactl chat [OPTIONS] [MODEL] [PROMPT]...   one answer, or a REPL on a terminal
  ollamactl chat list | show ID | rm ID...       the saved conversations

The whole history goes to /api/chat at every turn. --continue picks the
last conversation up again, --resume ID any other (an ID prefix is enough;
the words after it are all prompt, the model is the conversation's); the
REPL has the commands of `ollama run` plus /export, /retry and /image.
--tools sends tool definitions and prints the tool calls as JSON;
--messages sends a prepared JSON array of messages. Without MODEL, the
profile's `model` is used; its `options` and `keep_alive` apply too.

\b
Examples:
  ollamactl chat llama3.2
  ollamactl chat llama3.2 "Name three rivers" --system "Answer in French"
  ollamactl chat --continue "And three lakes?"
  ollamactl chat qwen3 --tools tools.json "Weather in Paris?" | jq .
  ollamactl chat list
"""


class _SessionContext(click.Context):
    """The context of ``chat``'s default command: its path is just ``ollamactl chat``."""

    @property
    def command_path(self) -> str:
        return super().command_path.rstrip()


class _SessionCommand(GenerationCommand):
    context_class = _SessionContext


class ChatGroup(click.Group):
    """``chat list|show|rm ...``; anything else goes to the default (session) command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [SESSION_COMMAND, *args]
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        return ("" if name == SESSION_COMMAND else name), command, rest

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records = [p.get_help_record(ctx) for p in self.commands[SESSION_COMMAND].get_params(ctx)]
        with formatter.section("Options"):
            formatter.write_dl([r for r in records if r is not None])
        self.format_commands(ctx, formatter)


@click.group(
    cls=ChatGroup,
    help=CHAT_HELP,
    short_help="Chat with a model; conversations are saved locally.",
    subcommand_metavar="[MODEL] [PROMPT]... | COMMAND [ARGS]...",
)
def chat() -> None:
    """The ``chat`` group (its help is CHAT_HELP)."""


@chat.command(SESSION_COMMAND, cls=_SessionCommand, hidden=True, help=CHAT_HELP)
@click.argument("model", required=False, shell_complete=complete_models)
@click.argument("prompt", nargs=-1)
@click.option("--continue", "continue_last", is_flag=True, help="Continue the last conversation.")
@click.option("--resume", metavar="ID", help="Continue a saved conversation.")
@json_file_option("--messages", "Send a prepared JSON array of messages ('-': stdin).")
@json_file_option("--tools", "Offer the tools of a JSON array; print tool calls as JSON.")
@generation_options
@pass_app
def chat_session(
    app: App,
    model: str | None,
    prompt: tuple[str, ...],
    continue_last: bool,
    resume: str | None,
    messages_file: IO[str] | None,
    tools_file: IO[str] | None,
    insecure: bool,
    **flags: Any,
) -> None:
    """One chat turn, or the REPL; saves the conversation (its help is CHAT_HELP)."""
    controls = controls_from(**flags)
    if continue_last and resume:
        raise UsageError("use either --continue or --resume ID, not both")
    store = ConversationStore()
    conversation = store.load(resume) if resume else store.latest() if continue_last else None
    if continue_last and conversation is None:
        raise UsageError("there is no saved conversation to continue", hint="start one first")
    if conversation is not None:  # the words are all prompt; the model is the conversation's
        prompt = ((model,) if model else ()) + prompt
        model = conversation.model
    model = default_model(app, model)
    apply_profile_defaults(app, controls)
    prepared = _read_json_list(messages_file, "messages") if messages_file else []
    tools = _read_json_list(tools_file, "tools") if tools_file else None
    text, given, interactive = read_prompt(prompt)
    info = show_or_pull(app, model, insecure=insecure)
    if "embedding" in capabilities(info):
        raise UsageError(f"{model} is an embedding model", hint="use `ollamactl embed`")
    check_can_generate(info)
    if conversation is None:
        conversation = store.new(model)
    else:
        controls.options = {**conversation.options, **controls.options}
    conversation.messages.extend(prepared)
    session = Session(app, info, controls, conversation, store, tools)
    if controls.system:
        session.set_system(controls.system)
    if interactive:
        from ollamactl.repl import Repl

        Repl(session, resumed=bool(resume or continue_last)).run()
        return
    if given or controls.images:
        text, found = take_prompt_media(text, info)
        session.add_user(text, controls.images + found)
    elif not prepared:
        raise UsageError(
            "no prompt", hint="give a PROMPT, pipe it on stdin, or start the chat on a terminal"
        )
    reply = session.answer(quiet=controls.as_json)
    if controls.as_json:
        echo_json(reply.response_object(chat=True))
    finish_answer(reply, controls, blank_lines=tools is None)


def _read_json_list(source: IO[str], what: str) -> list[Any]:
    name = getattr(source, "name", what)
    try:
        value = json.load(source)
    except ValueError as e:
        raise UsageError(f"the {what} file {name} is not valid JSON: {e}") from None
    if isinstance(value, dict) and isinstance(value.get(what), list):
        value = value[what]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise UsageError(f"the {what} file {name} must hold a JSON array of objects")
    if what == "messages" and not all(isinstance(m.get("role"), str) for m in value):
        raise UsageError(f"every message in {name} needs a 'role'")
    return value


@chat.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the conversations as JSON.")
def chat_list(as_json: bool) -> None:
    """List the saved conversations, the most recent first.

    \b
    Example:
      ollamactl chat list
    """
    conversations, errors = ConversationStore().all()
    for error in errors:
        click.echo(f"Warning: {error}", err=True)
    if as_json:
        echo_json(
            [
                {
                    "id": c.id,
                    "model": c.model,
                    "turns": c.turns,
                    "title": c.title,
                    "created_at": c.created_at,
                    "updated_at": c.updated_at,
                }
                for c in conversations
            ]
        )
        return
    rows = [
        [c.id, c.model, str(c.turns), render.human_time(c.updated_at), c.title]
        for c in conversations
    ]
    click.echo(render.table(rows, header=["ID", "MODEL", "TURNS", "UPDATED", "TITLE"]), nl=False)


@chat.command("show")
@click.argument("conversation_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the stored conversation as JSON.")
def chat_show(conversation_id: str, as_json: bool) -> None:
    """Print a saved conversation (an ID prefix is enough).

    \b
    Examples:
      ollamactl chat show 3fa9c1
      ollamactl chat show 3fa9c1 --json | jq '.messages[-1].content'
    """
    conversation = ConversationStore().load(conversation_id)
    if as_json:
        echo_json(conversation.to_dict())
    else:
        click.echo(transcript(conversation), nl=False)


@chat.command("rm")
@click.argument("conversation_ids", metavar="ID...", nargs=-1, required=True)
def chat_rm(conversation_ids: tuple[str, ...]) -> None:
    """Delete saved conversations.

    \b
    Example:
      ollamactl chat rm 3fa9c1
    """
    store = ConversationStore()
    for reference in conversation_ids:
        click.echo(f"deleted conversation '{store.delete(reference)}'")


# -- embed --------------------------------------------------------------------------------


def _embed_body(
    model: str,
    inputs: str | list[str],
    keep_alive: Any,
    options: dict[str, Any],
    truncate: bool | None,
    dimensions: int | None,
) -> JSON:
    body: JSON = {"model": model, "input": inputs}
    if truncate is not None:
        body["truncate"] = truncate
    if dimensions:
        body["dimensions"] = dimensions
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    if options:
        body["options"] = options
    return body


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _lines(stream: IO[str]) -> Iterator[str]:
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
    type=click.File("r", encoding="utf-8", errors="replace"),
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
@click.option(
    "-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Model parameter."
)
@json_option
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
    elif not sys.stdin.isatty():
        inputs = _lines(click.get_text_stream("stdin", encoding="utf-8", errors="replace"))
    else:
        inputs = ()
    merged: JSON | None = None
    sent = 0
    for batch in _batches(inputs, batch_size):
        response = app.client.embed(
            _embed_body(model, batch, keep_alive, parsed_options, truncate, dimensions)
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


def embeddings_of(response: JSON) -> list[list[Any]]:
    """The vectors of an ``/api/embed`` answer (their shape is checked by ``Client.embed``)."""
    return response.get("embeddings") or []


def _merge_embed_responses(merged: JSON | None, response: JSON) -> JSON:
    """One response for several batches: embeddings concatenated, counts and times added."""
    if merged is None:
        return dict(response)
    merged["embeddings"] = [*embeddings_of(merged), *embeddings_of(response)]
    for key in ("total_duration", "load_duration", "prompt_eval_count"):
        if isinstance(response.get(key), int):
            merged[key] = int(merged.get(key) or 0) + response[key]
    return merged
