"""``chat``: a conversation over ``/api/chat``, saved locally after every message.

One answer, or the REPL on a terminal; ``chat list|show|rm`` manage the saved ones.
"""

from __future__ import annotations

from typing import IO, Any

import click

from ollamactl import render
from ollamactl.answer import StreamPrinter, text_writer
from ollamactl.app import App, echo_json, pass_app, warn
from ollamactl.completion import complete_conversations, complete_models
from ollamactl.conversations import ConversationStore, transcript
from ollamactl.errors import UsageError
from ollamactl.generation import (
    apply_profile_defaults,
    default_model,
    flags_of_generation,
    read_prompt,
    ready_to_generate,
    show_answer,
    show_or_pull,
    take_prompt_media,
)
from ollamactl.options import (
    GenerationCommand,
    generation_options,
    json_file_option,
    json_option,
)
from ollamactl.params import parse_json
from ollamactl.session import Session, capabilities

SESSION_COMMAND = "session"
#: What the arguments of ``chat [MODEL] [PROMPT]...`` are, for its help.
ARGUMENTS = {
    "model": "The model (default: the profile's); after --continue or --resume, a word of PROMPT.",
    "prompt": "The message; piped stdin goes in front of it.",
}

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
        """The default command's arguments and options, then the subcommands.

        Arguments get a section of their own with the texts of ``ARGUMENTS``: click 8.5
        lists an argument among the options, click 8.1 to 8.4 takes no help for one.
        """
        params = self.commands[SESSION_COMMAND].get_params(ctx)
        arguments = [p for p in params if isinstance(p, click.Argument)]
        with formatter.section("Arguments"):
            formatter.write_dl(
                [(" ".join(a.get_usage_pieces(ctx)), ARGUMENTS[a.name or ""]) for a in arguments]
            )
        records = [p.get_help_record(ctx) for p in params if not isinstance(p, click.Argument)]
        with formatter.section("Options"):
            formatter.write_dl([r for r in records if r is not None])
        self.format_commands(ctx, formatter)


@click.group(
    cls=ChatGroup,
    help=CHAT_HELP,
    subcommand_metavar="[MODEL] [PROMPT]... | COMMAND [ARGS]...",
)
def chat() -> None:
    """The ``chat`` group (its help is CHAT_HELP)."""


@chat.command(SESSION_COMMAND, cls=_SessionCommand, hidden=True, help=CHAT_HELP)
@click.argument("model", required=False, shell_complete=complete_models)
@click.argument("prompt", nargs=-1)
@click.option("--continue", "continue_last", is_flag=True, help="Continue the last conversation.")
@click.option(
    "--resume",
    metavar="ID",
    help="Continue a saved conversation.",
    shell_complete=complete_conversations,
)
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
    messages_file: IO[bytes] | None,
    tools_file: IO[bytes] | None,
    insecure: bool,
    **generation_flags: Any,
) -> None:
    """One chat turn, or the REPL; saves the conversation (its help is CHAT_HELP)."""
    request, attached, display = flags_of_generation(**generation_flags)
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
    apply_profile_defaults(app, request)
    prepared = _read_json_list(messages_file, "messages") if messages_file else []
    tools = _read_json_list(tools_file, "tools") if tools_file else None
    text, given, interactive = read_prompt(prompt, app.terminal)
    info = show_or_pull(app, model, insecure=insecure)
    if "embedding" in capabilities(info):
        raise UsageError(f"{model} is an embedding model", hint="use `ollamactl embed`")
    ready_to_generate(app, model, info, request, attached)
    if conversation is None:
        conversation = store.new(model)
    else:
        request.options = {**conversation.options, **request.options}
    conversation.messages.extend(prepared)
    session = Session(app.client, info, request, conversation, store, tools)
    if request.system:
        session.set_system(request.system)
    if interactive:
        from ollamactl.repl import Repl

        resumed = bool(resume or continue_last)
        Repl(
            session, display, app.terminal, resumed=resumed, images=attached, redact=app.redact
        ).run()
        return
    if given or attached:
        text, found = take_prompt_media(text, info, app.terminal)
        session.add_user(text, attached + found)
    elif not prepared:
        raise UsageError(
            "no prompt", hint="give a PROMPT, pipe it on stdin, or start the chat on a terminal"
        )
    offered = tools is not None
    printer = StreamPrinter(display, app.terminal, quiet=display.as_json or offered)
    reply = session.send(printer)
    show_answer(
        printer, reply, display, app.terminal, chat=True, offered=offered, blank_lines=not offered
    )


def _read_json_list(source: IO[bytes], what: str) -> list[Any]:
    name = getattr(source, "name", what)
    value = parse_json(source.read(), f"the {what} file {name}")
    if isinstance(value, dict) and isinstance(value.get(what), list):
        value = value[what]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise UsageError(f"the {what} file {name} must hold a JSON array of objects")
    if what == "messages" and not all(isinstance(m.get("role"), str) for m in value):
        raise UsageError(f"every message in {name} needs a 'role'")
    return value


@chat.command("list")
@json_option("the conversations")
def chat_list(as_json: bool) -> None:
    """List the saved conversations, the most recent first.

    \b
    Example:
      ollamactl chat list
    """
    conversations, errors = ConversationStore().all()
    for error in errors:
        warn(error)
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
@click.argument("conversation_id", metavar="ID", shell_complete=complete_conversations)
@json_option("the stored conversation")
@pass_app
def chat_show(app: App, conversation_id: str, as_json: bool) -> None:
    """Print a saved conversation (an ID prefix is enough).

    \b
    Examples:
      ollamactl chat show 3fa9c1
      ollamactl chat show 3fa9c1 --json | jq '.messages[-1].content'
    """
    conversation = ConversationStore().load(conversation_id)
    if as_json:
        echo_json(conversation.to_dict())
    else:  # words wrapped on a terminal, as the REPL showed them
        text_writer(app.terminal, app.terminal.stdout, wrap=True)(transcript(conversation))


@chat.command("rm")
@click.argument(
    "conversation_ids",
    metavar="ID...",
    nargs=-1,
    required=True,
    shell_complete=complete_conversations,
)
def chat_rm(conversation_ids: tuple[str, ...]) -> None:
    """Delete saved conversations.

    \b
    Example:
      ollamactl chat rm 3fa9c1
    """
    store = ConversationStore()
    for reference in conversation_ids:
        click.echo(f"deleted conversation '{store.delete(reference)}'")
