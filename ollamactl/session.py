"""A conversation with a model over ``/api/chat``: its history and every server call it makes.

Shared by ``chat`` and the REPL of ``run``/``chat``. The session takes a client and the
request options; how an answer is shown is the caller's (a :class:`StreamPrinter`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

from ollamactl.answer import Reply, StreamPrinter
from ollamactl.conversations import Conversation, ConversationStore
from ollamactl.errors import OllamactlError, UsageError
from ollamactl.names import is_valid_name
from ollamactl.params import RequestOptions, Think
from ollamactl.security import parse_version

if TYPE_CHECKING:
    from ollamactl.client import JSON, Client

#: The first server version whose API takes a think level ("high") besides true and false.
THINK_LEVELS_SINCE = (0, 11, 0, 0)


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


def check_takes_images(model: str, info: JSON) -> None:
    """Refuse images for a model that cannot see them: the server would drop them silently."""
    if not is_multimodal(info):
        raise UsageError(f"model {json.dumps(model)} does not take images")


def request_arguments(request: RequestOptions, info: JSON) -> dict[str, Any]:
    """The keyword arguments of a generate or chat call, ``think`` inferred as Go does.

    A model that can think is asked to when --think (or /set think) was not given.
    """
    arguments = request.arguments()
    if arguments["think"] is None and "thinking" in capabilities(info):
        arguments["think"] = True
    return arguments


def fit_think(client: Client, think: Think | None, note: Callable[[str], None]) -> Think | None:
    """``think`` as the server takes it: a level becomes ``true`` before Ollama 0.11.0.

    Older servers answer a level with ``json: cannot unmarshal string``; ``note`` is told
    when the level is dropped. The version is asked only when a level is set, and a
    server that does not say (or a development build, 0.0.0) is taken to know levels.
    """
    if not isinstance(think, str):
        return think
    try:
        version = str(client.version().get("version", ""))
    except OllamactlError:
        return think
    parsed = parse_version(version)
    if parsed is None or parsed >= THINK_LEVELS_SINCE or parsed[:3] == (0, 0, 0):
        return think
    note(f"note: this server ({version}) has no think levels; thinking on")
    return True


class Session:
    """A conversation with a model: messages, request options, where it is saved, its calls.

    ``store`` is ``None`` for ``run``'s REPL (nothing is saved); ``chat`` saves the
    conversation before each request (the question) and after it (the answer).
    """

    def __init__(
        self,
        client: Client,
        info: JSON,
        request: RequestOptions,
        conversation: Conversation,
        store: ConversationStore | None = None,
        tools: list[Any] | None = None,
    ) -> None:
        self.client = client
        self.info = info
        self.request = request
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
        self.request.system = text

    def add_user(self, content: str, images: list[str]) -> None:
        """Append a user message."""
        message: JSON = {"role": "user", "content": content}
        if images:
            message["images"] = images
        self.messages.append(message)

    def start_over(self, model: str | None = None) -> None:
        """A fresh history (a new saved conversation for chat), keeping the system message."""
        model = model or self.model
        store = self.store
        self.conversation = store.new(model) if store else Conversation(id="", model=model)
        if self.request.system:
            self.set_system(self.request.system)

    def save(self) -> None:
        """Save the conversation (chat only)."""
        if self.store is not None:
            self.conversation.options = dict(self.request.options)
            self.store.save(self.conversation)

    # -- server calls -----------------------------------------------------------------------

    def send(self, printer: StreamPrinter) -> Reply:
        """Send the history to ``/api/chat``; ``printer`` shows the answer as it streams.

        Ctrl-C keeps the partial answer in the history, marked ``interrupted``, and
        re-raises KeyboardInterrupt. So does an error once part of the answer arrived (a
        stream cut short or broken off, an error line): the answer is complete only with
        the server's last event, which the client checks.
        """
        arguments = request_arguments(self.request, self.info)
        if self.tools is not None:
            arguments["stream"] = False
        self.save()
        events = self.client.chat(
            self.model, self.conversation.api_messages(), tools=self.tools, **arguments
        )
        reply = Reply()
        try:
            printer.stream(events, reply, chat=True)
        except KeyboardInterrupt:
            self._record(reply, interrupted=True)
            raise
        except OllamactlError:
            if reply.text or reply.thinking or reply.tool_calls:
                self._record(reply, interrupted=True)
            raise
        self._record(reply)
        return reply

    def _record(self, reply: Reply, *, interrupted: bool = False) -> None:
        message = reply.message()
        if interrupted:
            message["interrupted"] = True
        self.messages.append(message)
        self.save()

    def lookup(self, model: str) -> JSON:
        """``/api/show`` of another model (before switching to it)."""
        return self.client.show(model)

    def load(self, model: str | None = None) -> None:
        """Load the model (this one, or the one being switched to) into the server's memory."""
        self.client.load(model or self.model, self.request.keep_alive)

    def switch_to(self, model: str, info: JSON) -> None:
        """Talk to ``model`` (its ``/api/show`` is ``info``) from now on, with a fresh history."""
        self.info = info
        self.start_over(model)

    def show(self) -> JSON:
        """``/api/show`` with this session's system message and options in its Modelfile."""
        return self.client.show(
            self.model, system=self.request.system, options=self.request.options
        )

    def save_as(self, name: str) -> None:
        """Create a server-side model ``name`` from this session, as the Go CLI's /save does.

        ``from`` is the model's parent, or the model itself when the parent is no model name
        (a model created from a GGUF file has the file's blob path there).
        """
        parent = str((self.info.get("details") or {}).get("parent_model") or "")
        messages = list(self.info.get("messages") or []) + self.conversation.api_messages()
        for _ in self.client.create(
            name,
            from_model=parent if is_valid_name(parent) else self.model,  # not a blob path
            system=self.request.system,
            parameters=self.request.options,
            messages=messages,
        ):
            pass

    def models(self) -> list[JSON]:
        """The models on the server (for /list and completion)."""
        return self.client.tags()
