"""A conversation with a model over ``/api/chat``: the history, the request and the reply.

Shared by ``chat`` and the REPL of ``run``/``chat``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ollamactl.answer import Reply, StreamPrinter
from ollamactl.conversations import Conversation, ConversationStore
from ollamactl.params import RequestControls
from ollamactl.render import to_json

if TYPE_CHECKING:
    from ollamactl.app import App
    from ollamactl.client import JSON


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
        printer = StreamPrinter(
            self.controls, self.app.terminal, quiet=quiet or self.tools is not None
        )
        reply = Reply()
        try:
            printer.stream(self.app.client.chat(body), reply, chat=True)
        except KeyboardInterrupt:
            self._record(reply, interrupted=True)
            raise
        self._record(reply)
        if reply.tool_calls and not quiet:
            if self.tools is not None:
                click.echo(to_json(reply.tool_calls))
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
