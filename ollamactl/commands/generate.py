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
import os
import shutil
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TextIO, TypeVar

import click

from ollamactl import render
from ollamactl.cli import App, pass_app
from ollamactl.commands.models import echo_json, json_option
from ollamactl.completion import complete_models
from ollamactl.conversations import Conversation, ConversationStore
from ollamactl.errors import APIError, BadResponse, ModelNotFound, OllamactlError, UsageError
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

if TYPE_CHECKING:
    from ollamactl.client import JSON

F = TypeVar("F", bound=Callable[..., Any])

GREY = "\x1b[38;5;245m"
BOLD = "\x1b[1m"
RESET = "\x1b[0m"
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SESSION_COMMAND = "session"
NO_MESSAGE: JSON = {}  # stands in for a chat event's missing or malformed message


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
    parts = list(words)
    stdin_is_terminal = sys.stdin.isatty()
    if not stdin_is_terminal:
        piped = sys.stdin.read()
        if piped:
            parts.insert(0, piped)
    interactive = not parts and stdin_is_terminal and sys.stdout.isatty()
    return " ".join(parts), bool(parts), interactive


# -- the model ----------------------------------------------------------------------------


def show_or_pull(app: App, model: str, *, insecure: bool = False) -> JSON:
    """``/api/show`` the model; pull it with progress first if the server lacks it (as Go)."""
    try:
        return app.client.show(model)
    except ModelNotFound:
        from ollamactl.commands.transfer import pull_model

        pull_model(app, model, insecure=insecure)
        return app.client.show(model)


def capabilities(info: JSON) -> list[str]:
    """The model's capabilities from ``/api/show``."""
    found = info.get("capabilities")
    return [str(c) for c in found] if isinstance(found, list) else []


def is_multimodal(info: JSON) -> bool:
    """Whether the model takes images or audio (the Go CLI's test, old servers included)."""
    if {"vision", "audio"} & set(capabilities(info)) or info.get("projector_info"):
        return True
    model_info = info.get("model_info")
    return isinstance(model_info, dict) and any(".vision." in key for key in model_info)


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


# -- output -------------------------------------------------------------------------------


def use_color(stream: IO[str]) -> bool:
    """Escape codes only on a terminal, and not when NO_COLOR is set."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def char_width(char: str) -> int:
    """Terminal columns a character takes."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


class WordWrapper:
    """Wrap streamed text on a terminal as the Go CLI does: a word crossing the margin moves down.

    The word already printed is erased (cursor back, clear to end of line) and
    reprinted on the next line. Used only when the stream is a terminal.
    """

    def __init__(self, stream: TextIO, width: int) -> None:
        self.stream = stream
        self.limit = width - 5
        self.longest_word = width - 10
        self.column = 0
        self.word = ""

    def write(self, text: str) -> None:
        out = []
        for char in text:
            width = char_width(char)
            if char not in "\r\n" and self.column + width > self.limit:
                if char in " \t":
                    out.append("\n")
                    self.column, self.word = 0, ""
                    continue
                word_width = sum(map(char_width, self.word))
                if self.word and word_width <= self.longest_word:
                    out.append(f"\x1b[{word_width}D\x1b[K\n{self.word}")
                    self.column = word_width
                else:
                    out.append("\n")
                    self.column, self.word = 0, ""
            out.append(char)
            self.column += width
            if char in "\r\n":
                self.column, self.word = 0, ""
            elif char in " \t" or width > 1:
                self.word = ""
            else:
                self.word += char
        self.stream.write("".join(out))
        self.stream.flush()


def _writer(stream: TextIO, wrap: bool) -> Callable[[str], None]:
    """A function writing text to ``stream`` at once, wrapping words on a terminal if asked."""
    width = shutil.get_terminal_size().columns
    if wrap and stream.isatty() and width >= 10:
        return WordWrapper(stream, width).write
    write, flush = stream.write, stream.flush

    def write_now(text: str) -> None:
        write(text)
        flush()

    return write_now


class Spinner:
    """A spinner on stderr while waiting for the first token (only on a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = False

    def __enter__(self) -> Spinner:
        if self.stream.isatty():
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()

    def _spin(self) -> None:
        for frame in itertools.cycle(SPINNER_FRAMES):
            if self._stop.wait(0.1):
                return
            self.stream.write(f"\r{frame} ")
            self.stream.flush()
            self._drawn = True


@dataclass
class Reply:
    """What a streamed answer brought so far (complete, or partial when interrupted)."""

    content: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[Any] = field(default_factory=list)
    final: JSON | None = None

    @property
    def text(self) -> str:
        """The answer's text."""
        return "".join(self.content)

    def message(self) -> JSON:
        """The assistant message for the chat history."""
        message: JSON = {"role": "assistant", "content": self.text}
        if self.thinking:
            message["thinking"] = "".join(self.thinking)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message

    def response_object(self, *, chat: bool) -> JSON:
        """The final response object with the streamed text filled in (for --json)."""
        final = dict(self.final or {})
        if chat:
            final["message"] = self.message()
        else:
            final["response"] = self.text
            if self.thinking:
                final["thinking"] = "".join(self.thinking)
        return final


class StreamPrinter:
    """Shows a streamed answer: tokens to stdout, thinking to stderr, as they arrive."""

    def __init__(self, controls: RequestControls, *, quiet: bool = False) -> None:
        self.hide_thinking = controls.hide_thinking
        self.quiet = quiet
        self.color = use_color(sys.stderr)
        self._write = _writer(sys.stdout, controls.word_wrap)
        self._write_thinking = _writer(sys.stderr, controls.word_wrap)
        self._thinking_open = False
        self._thinking_ends_line = True

    def stream(self, events: Iterator[JSON], reply: Reply, *, chat: bool) -> None:
        """Consume ``events`` into ``reply``, showing them as they arrive.

        When Ctrl-C or an error stops the answer, its line is ended on a terminal
        so that what follows starts on a line of its own.
        """
        try:
            self._consume(events, reply, chat)
        except (KeyboardInterrupt, OllamactlError):
            self._close_thinking()
            shown = not self.quiet and reply.content and sys.stdout.isatty()
            if shown and not reply.content[-1].endswith("\n"):
                self._write("\n")
            raise
        self._close_thinking()

    def _consume(self, events: Iterator[JSON], reply: Reply, chat: bool) -> None:
        """The per-token path: kept minimal (it is benchmarked at 100,000 tokens)."""
        with Spinner(sys.stderr):
            first = next(events, None)
        if first is None:
            return
        key = "content" if chat else "response"
        content = reply.content
        write = None if self.quiet else self._write
        for event in itertools.chain((first,), events):
            part = event.get("message") if chat else event
            if part.__class__ is not dict:
                part = NO_MESSAGE
            thought = part.get("thinking")
            if thought and thought.__class__ is str:
                self._show_thinking(thought, reply)
            text = part.get(key)
            if text and text.__class__ is str:
                if self._thinking_open:
                    self._end_thinking()
                content.append(text)
                if write is not None:
                    write(text)
            calls = part.get("tool_calls")
            if calls and calls.__class__ is list:
                reply.tool_calls.extend(calls)
            if event.get("done"):
                reply.final = event

    def _show_thinking(self, text: str, reply: Reply) -> None:
        reply.thinking.append(text)
        if self.hide_thinking or self.quiet:
            return
        if not self._thinking_open:
            opening = "Thinking...\n"
            self._write_thinking(f"{GREY}{BOLD}{opening}{RESET}{GREY}" if self.color else opening)
            self._thinking_open = True
        self._write_thinking(text)
        self._thinking_ends_line = text.endswith("\n")

    def _end_thinking(self) -> None:
        closing = ("" if self._thinking_ends_line else "\n") + "...done thinking.\n\n"
        self._write_thinking(f"{GREY}{BOLD}{closing}{RESET}" if self.color else closing)
        self._thinking_open = False

    def _close_thinking(self) -> None:
        """End an open thinking block (an answer that was all thinking, or interrupted)."""
        if self._thinking_open:
            self._end_thinking()

    def tool_call_notes(self, calls: list[Any]) -> None:
        """Tool calls nobody asked for, described as the Go CLI does."""
        lines = []
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                function = {}
            arguments = json.dumps(function.get("arguments", {}), separators=(",", ":"))
            lines.append(
                f"  Model called a non-existent function '{function.get('name', '')}()'"
                f" with arguments: {arguments}"
            )
        self._write("\n".join(lines))


def go_duration(nanoseconds: int) -> str:
    """Format a duration as Go's ``time.Duration.String``.

    >>> [go_duration(n) for n in (0, 999, 982_037, 130_079_000, 4_232_710_583, 61_500_000_000)]
    ['0s', '999ns', '982.037µs', '130.079ms', '4.232710583s', '1m1.5s']
    >>> go_duration(3_600_000_000_000)
    '1h0m0s'
    """
    if nanoseconds == 0:
        return "0s"
    sign, value = ("-" if nanoseconds < 0 else ""), abs(nanoseconds)

    def fraction(part: int, digits: int) -> str:
        return ("." + str(part).zfill(digits).rstrip("0")) if part else ""

    if value < 1000:
        return f"{sign}{value}ns"
    if value < 1_000_000:
        whole, part = divmod(value, 1000)
        return f"{sign}{whole}{fraction(part, 3)}µs"
    if value < 1_000_000_000:
        whole, part = divmod(value, 1_000_000)
        return f"{sign}{whole}{fraction(part, 6)}ms"
    seconds, part = divmod(value, 1_000_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{seconds}{fraction(part, 9)}s"
    if minutes or hours:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def stats_summary(final: JSON) -> str:
    """The ``--verbose`` block of the Go CLI (a row only when its value is above zero).

    >>> final = {"total_duration": 864579129, "prompt_eval_count": 26,
    ...     "prompt_eval_duration": 2166574, "eval_count": 193, "eval_duration": 606940931}
    >>> print(stats_summary(final), end="")
    total duration:       864.579129ms
    prompt eval count:    26 token(s)
    prompt eval duration: 2.166574ms
    prompt eval rate:     12000.51 tokens/s
    eval count:           193 token(s)
    eval duration:        606.940931ms
    eval rate:            317.99 tokens/s
    """

    def number(key: str) -> int:
        value = final.get(key)
        return int(value) if isinstance(value, (int, float)) else 0

    lines = []
    if number("total_duration") > 0:
        lines.append(f"total duration:       {go_duration(number('total_duration'))}")
    if number("load_duration") > 0:
        lines.append(f"load duration:        {go_duration(number('load_duration'))}")
    for prefix, label in (("prompt_eval", "prompt eval"), ("eval", "eval")):
        count, duration = number(f"{prefix}_count"), number(f"{prefix}_duration")
        pad = " " * (len("prompt eval") - len(label))
        if count > 0:
            lines.append(f"{label} count:    {pad}{count} token(s)")
        if duration > 0:
            lines.append(f"{label} duration: {pad}{go_duration(duration)}")
            lines.append(f"{label} rate:     {pad}{count / (duration / 1e9):.2f} tokens/s")
    return "".join(line + "\n" for line in lines)


def finish_answer(reply: Reply, controls: RequestControls, *, blank_lines: bool) -> None:
    """After a streamed answer: the Go CLI's two newlines, then --verbose statistics."""
    if blank_lines and not controls.as_json:
        click.echo("\n")
    if controls.verbose and reply.final:
        click.echo(stats_summary(reply.final), err=True, nl=False)


# -- chat sessions ------------------------------------------------------------------------


class Session:
    """A conversation with a model: messages, request controls and where it is saved.

    ``store`` is ``None`` for ``run``'s REPL (nothing is saved); ``chat`` saves
    the conversation before each request (the question) and after it (the answer).
    """

    def __init__(
        self,
        app: App,
        info: JSON,
        controls: RequestControls,
        conversation: Conversation,
        store: ConversationStore | None = None,
        tools: list[Any] | None = None,
    ) -> None:
        self.app = app
        self.info = info
        self.controls = controls
        self.conversation = conversation
        self.store = store
        self.tools = tools

    @property
    def model(self) -> str:
        """The model the conversation talks to."""
        return self.conversation.model

    @property
    def messages(self) -> list[JSON]:
        """The history sent with every turn."""
        return self.conversation.messages

    def set_system(self, text: str) -> None:
        """Replace the last message if it is a system message, else append one (as Go)."""
        message = {"role": "system", "content": text}
        if self.messages and self.messages[-1].get("role") == "system":
            self.messages[-1] = message
        else:
            self.messages.append(message)
        self.controls.system = text

    def add_user(self, content: str, images: list[str]) -> None:
        """Append a user message."""
        message: JSON = {"role": "user", "content": content}
        if images:
            message["images"] = images
        self.messages.append(message)

    def request_fields(self) -> JSON:
        """The optional request fields, with ``think`` inferred from the model as Go does.

        A model that can think is asked to when --think (or /set think) was not given.
        """
        fields = self.controls.request_fields()
        if "think" not in fields and "thinking" in capabilities(self.info):
            fields["think"] = True
        return fields

    def save(self) -> None:
        """Save the conversation (chat only)."""
        if self.store is not None:
            self.conversation.options = dict(self.controls.options)
            self.store.save(self.conversation)

    def answer(self, *, quiet: bool = False) -> Reply:
        """Send the history to ``/api/chat`` and show the answer as it streams.

        Ctrl-C keeps the partial answer in the history, marked ``interrupted``, and
        re-raises KeyboardInterrupt.
        """
        body: JSON = {"model": self.model, "messages": self.conversation.api_messages()}
        body.update(self.request_fields())
        if self.tools is not None:
            body["tools"] = self.tools
            body["stream"] = False
        self.save()
        printer = StreamPrinter(self.controls, quiet=quiet or self.tools is not None)
        reply = Reply()
        try:
            printer.stream(self.app.client.chat(body), reply, chat=True)
        except KeyboardInterrupt:
            self._record(reply, interrupted=True)
            raise
        self._record(reply)
        if reply.tool_calls and not quiet:
            if self.tools is not None:
                echo_json(reply.tool_calls)
            else:
                printer.tool_call_notes(reply.tool_calls)
        elif self.tools is not None and not quiet:
            click.echo(reply.text)
        return reply

    def _record(self, reply: Reply, *, interrupted: bool = False) -> None:
        message = reply.message()
        if interrupted:
            message["interrupted"] = True
        self.messages.append(message)
        self.save()


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
    reply = Reply()
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
    pass


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


def transcript(conversation: Conversation) -> str:
    """A conversation as the REPL showed it: ``>>> question``, then the answer."""
    out = []
    for message in conversation.messages:
        role, content = message.get("role"), str(message.get("content", ""))
        if role == "user":
            images = len(message.get("images") or [])
            out.append(f">>> {content}" + (f" [{images} image(s)]" if images else "") + "\n")
        elif role == "assistant":
            calls = message.get("tool_calls")
            if calls:
                content += ("\n" if content else "") + json.dumps(calls, ensure_ascii=False)
            note = "\n[interrupted]" if message.get("interrupted") else ""
            out.append(f"{content}{note}\n\n")
        else:
            out.append(f"[{role}] {content}\n\n")
    return "".join(out)


def markdown(conversation: Conversation) -> str:
    """A conversation as a Markdown document (for /export)."""
    out = [f"# Chat with {conversation.model}\n"]
    for message in conversation.messages:
        role = str(message.get("role", "")).capitalize()
        out.append(f"\n## {role}\n\n{message.get('content', '')}\n")
        if message.get("tool_calls"):
            calls = json.dumps(message["tool_calls"], indent=2, ensure_ascii=False)
            out.append(f"\n```json\n{calls}\n```\n")
        if message.get("interrupted"):
            out.append("\n*(interrupted)*\n")
    return "".join(out)


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
    type=click.File("r", encoding="utf-8"),
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
        inputs = _lines(sys.stdin)
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
    """The vectors of an ``/api/embed`` answer (BadResponse if they are not a list of lists)."""
    embeddings = response.get("embeddings")
    if embeddings is None:
        return []
    if not isinstance(embeddings, list) or not all(isinstance(v, list) for v in embeddings):
        raise BadResponse("/api/embed answered an unexpected 'embeddings' field")
    return embeddings


def _merge_embed_responses(merged: JSON | None, response: JSON) -> JSON:
    """One response for several batches: embeddings concatenated, counts and times added."""
    if merged is None:
        return dict(response)
    merged["embeddings"] = [*embeddings_of(merged), *embeddings_of(response)]
    for key in ("total_duration", "load_duration", "prompt_eval_count"):
        if isinstance(response.get(key), int):
            merged[key] = int(merged.get(key) or 0) + response[key]
    return merged
