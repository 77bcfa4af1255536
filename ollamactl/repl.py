"""The interactive session of ``run`` and ``chat``: the Go CLI's REPL, over ``/api/chat``.

Every slash command of ``ollama run`` with its wording (``/set``, ``/show``,
``/load``, ``/save``, ``/clear``, ``/bye``, ``/?``), ``\"\"\"`` multi-line input,
line editing, history and tab completion (:mod:`ollamactl.line_editor`), plus
``/export``, ``/retry`` and ``/image``. A pasted block is one message, whatever its
lines say. Ctrl-C stops an answer (its partial text stays in the history, marked
interrupted); Ctrl-D exits.

The REPL only reads lines and dispatches them: the server calls are the session's, the
lines come from ``read_line`` and the output goes to the terminal's streams, so a test
can drive it in-process with a list of lines and string streams.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import click

from ollamactl import render
from ollamactl.answer import DisplayOptions, Spinner, StreamPrinter, finish_answer, text_writer
from ollamactl.conversations import markdown, transcript
from ollamactl.errors import APIError, OllamactlError, UsageError
from ollamactl.generation import take_prompt_media
from ollamactl.http_errors import is_invalid_name, is_upstream_error
from ollamactl.line_editor import LineEditor
from ollamactl.params import (
    KNOWN_PARAMS,
    format_param,
    media_paths,
    parse_think,
    read_media,
    unescape_path,
)
from ollamactl.paths import data_dir, write_private_file
from ollamactl.repl_texts import (
    COMMANDS,
    COMPLETIONS,
    CONTINUATION_PROMPT,
    MEDIA_USAGE,
    PARAMETERS_USAGE,
    PLACEHOLDERS,
    PROMPT,
    SET_USAGE,
    SHORTCUTS_USAGE,
    SHOW_USAGE,
    USAGE,
)
from ollamactl.session import (
    Session,
    capabilities,
    check_takes_images,
    fit_think,
    is_multimodal,
)
from ollamactl.terminal import Terminal, Terminated

MULTILINE = '"""'
THINK_VALUES = 'must be "high", "medium", "low", "max", true, or false'


def block_start(text: str) -> tuple[str, bool] | None:
    """For text opening a triple-quote block: (its text, whether the block goes on), else None.

    >>> q = MULTILINE
    >>> block_start(q + "hello"), block_start(q + "one line" + q), block_start("plain")
    (('hello', True), ('one line', False), None)
    """
    if not text.startswith(MULTILINE):
        return None
    rest = text[len(MULTILINE) :]
    if rest.endswith(MULTILINE):
        return rest[: -len(MULTILINE)], False
    return rest, True


def _opens_block(text: str) -> bool:
    start = block_start(text)
    return start is not None and start[1]


def completions(line: str, models: Callable[[], list[str]]) -> Sequence[str]:
    """What TAB may complete on ``line`` (up to the cursor): commands, their words, models.

    >>> completions("/show ", list)[:2], completions("/set parameter ", list)[:1]
    (('info', 'license'), ['draft_num_predict'])
    """
    words = line.split()
    if len(words) <= 1 and not line.endswith(" "):
        return COMMANDS if line.startswith("/") else ()
    if words[:2] == ["/set", "parameter"]:
        return sorted(KNOWN_PARAMS) if len(words) <= 3 else ()
    if words[0] in ("/load", "/save"):
        return models()
    return COMPLETIONS.get(words[0], ())


class Repl:
    """The read-eval-print loop around a :class:`Session`.

    ``read_line(prompt)`` reads a line (EOFError ends the loop): by default a
    :class:`LineEditor` with history and completion. Output goes to ``terminal``;
    ``images`` go with the first message (``-i``); ``redact`` cleans error messages.
    """

    def __init__(
        self,
        session: Session,
        display: DisplayOptions,
        terminal: Terminal,
        *,
        read_line: Callable[[str], str] | None = None,
        resumed: bool = False,
        images: Sequence[str] = (),
        redact: Callable[[str], str] = str,
    ) -> None:
        self.session = session
        self.display = dataclasses.replace(display, as_json=False)
        self.terminal = terminal
        self.resumed = resumed
        self.redact = redact
        self.pending_images = list(images)
        self.model_names: list[str] | None = None
        self.earlier_conversations: list[str] = []  # left by /clear and /load (chat)
        self.editor: LineEditor | None = None
        if read_line is None:
            self.editor = LineEditor(
                data_dir() / "history",
                self._completions,
                paste=terminal.fancy(terminal.stdout),
                placeholders=PLACEHOLDERS if terminal.color(terminal.stdout) else None,
            )
            read_line = self.editor.read_line
        self.read_line = read_line

    def out(self, text: str = "") -> None:
        """A line on stdout."""
        click.echo(text, file=self.terminal.stdout)

    def note(self, text: str) -> None:
        """Text on stderr, as is (help blocks, notices)."""
        click.echo(text, file=self.terminal.stderr, nl=False)

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Preload the model, replay what came before, then read and handle lines until exit."""
        self._preload(self.session.model, self.session.info)
        self._replay()
        try:
            self._loop()
        finally:
            if self.editor is not None:
                self.editor.close()
            self._say_where_saved()

    def _loop(self) -> None:
        block: list[str] | None = None  # the lines of an open """ block
        block_is_system = False
        while True:
            try:
                line = self.read_line(PROMPT if block is None else CONTINUATION_PROMPT)
            except EOFError:
                self.out()
                return
            except Terminated:  # SIGTERM/SIGHUP end the REPL (Ctrl-C does not)
                raise
            except KeyboardInterrupt:
                typed = self.editor.typed() if self.editor else ""
                self.out("" if typed else "\nUse Ctrl + d or /bye to exit.")
                block = None
                continue
            words = line.split()
            try:
                if block is not None:
                    ended = line.endswith(MULTILINE)
                    block.append(line[: -len(MULTILINE)] if ended else line)
                    if ended:
                        text, block = "\n".join(block), None
                        self._set_system(text) if block_is_system else self._send(text)
                elif "\n" in line:  # pasted: one message, never a command
                    self._send(line)
                elif (start := block_start(line)) is not None:
                    if start[1]:
                        block, block_is_system = [start[0]], False
                    else:
                        self._send(start[0])
                elif words[:2] == ["/set", "system"] and _opens_block(" ".join(words[2:])):
                    block, block_is_system = [" ".join(words[2:])[len(MULTILINE) :]], True
                elif self._command(line, words) == "bye":
                    return
            except Terminated:
                raise
            except KeyboardInterrupt:
                self.out()

    # -- commands -------------------------------------------------------------------------

    def _command(self, line: str, words: list[str]) -> str | None:
        """Handle one line; returns ``"bye"`` to leave the REPL."""
        handlers: list[tuple[tuple[str, ...], Callable[[str, list[str]], None]]] = [
            (("/list",), self._list),
            (("/load",), self._load),
            (("/save",), self._save),
            (("/clear",), self._clear),
            (("/set",), self._set),
            (("/show",), self._show),
            (("/help", "/?"), self._help),
            (("/export",), self._export),
            (("/retry",), self._retry),
            (("/image",), self._image),
        ]
        if line.startswith(("/exit", "/bye")):
            return "bye"
        for prefixes, handler in handlers:
            if line.startswith(prefixes):
                handler(line, words)
                return None
        if line.startswith("/") and not self._is_media_path(line, words[0]):
            self.out(f"Unknown command '{words[0]}'. Type /? for help")
            return None
        if line:
            self._send(line)
        return None

    def _is_media_path(self, line: str, first: str) -> bool:
        """A line starting with a media file path is a prompt for a multimodal model (as Go)."""
        return is_multimodal(self.session.info) and any(
            path.startswith(first) for path in media_paths(line)
        )

    def _list(self, line: str, words: list[str]) -> None:
        """/list [PREFIX]: the models on the server (not in the help, as in Go)."""
        models = self.session.models()
        prefix = words[1].lower() if len(words) > 1 else ""
        models = [m for m in models if str(m.get("name", "")).lower().startswith(prefix)]
        click.echo(render.model_table(models), file=self.terminal.stdout, nl=False)

    def _load(self, line: str, words: list[str]) -> None:
        """/load MODEL: switch to another model with a fresh history."""
        if len(words) != 2:
            self.out("Usage:\n  /load <modelname>")
            return
        name = words[1]
        self.out(f"Loading model '{name}'")
        try:
            info = self.session.lookup(name)
            self._preload(name, info)
        except OllamactlError as e:
            self.out(f"error: {self.redact(str(e))}")
            return
        self._keep_conversation_name()
        self.session.switch_to(name, info)

    def _save(self, line: str, words: list[str]) -> None:
        """/save MODEL: create a server-side model from this session, as Go does."""
        if len(words) != 2:
            self.out("Usage:\n  /save <modelname>")
            return
        name = words[1]
        try:
            self.session.save_as(name)
        except APIError as e:
            if is_invalid_name(str(e)):
                self.out(f"error: The model name '{name}' is invalid")
            else:
                self.out(f"error: {e}")
            return
        self.out(f"Created new model '{name}'")

    def _clear(self, line: str, words: list[str]) -> None:
        """/clear: forget the history (keeping the system message)."""
        self._keep_conversation_name()
        self.session.start_over()
        self.out("Cleared session context")

    def _set(self, line: str, words: list[str]) -> None:
        """/set ...: session settings, with the Go CLI's messages."""
        if len(words) < 2:
            self.note(SET_USAGE + "\n")
            return
        request, what = self.session.request, words[1]
        switches: dict[str, tuple[object, str, Any, str]] = {
            "wordwrap": (self.display, "word_wrap", True, "Set 'wordwrap' mode."),
            "nowordwrap": (self.display, "word_wrap", False, "Set 'nowordwrap' mode."),
            "verbose": (self.display, "verbose", True, "Set 'verbose' mode."),
            "quiet": (self.display, "verbose", False, "Set 'quiet' mode."),
            "noformat": (request, "format", None, "Disabled format."),
        }
        if what in switches:
            options, attribute, value, message = switches[what]
            setattr(options, attribute, value)
            self.out(message)
        elif what in ("history", "nohistory"):
            if self.editor is not None:
                self.editor.save_history = what == "history"
        elif what in ("think", "nothink"):
            level = words[2] if what == "think" and len(words) > 2 else None
            try:
                think = parse_think(level) if level else what == "think"
            except UsageError:
                self.out(f"error: invalid think value: {json.dumps(level)} ({THINK_VALUES})")
                return
            request.think = fit_think(self.session.client, think, lambda t: self.note(t + "\n"))
            if "thinking" not in capabilities(self.session.info):
                model = json.dumps(self.session.model)
                self.note(f"warning: model {model} does not support thinking output\n")
            if level and request.think == think:
                self.out(f"Set 'think' mode to '{level}'.")
            else:  # no level, or one the server does not take
                self.out(f"Set '{what}' mode.")
        elif what == "format":
            if words[2:3] != ["json"]:
                self.out("Invalid or missing format. For 'json' mode use '/set format json'")
            else:
                request.format = "json"
                self.out("Set format to 'json' mode.")
        elif what == "parameter":
            self._set_parameter(words[2:])
        elif what == "system":
            self._set_system_line(words[2:])
        else:
            self.out(f"Unknown command '/set {what}'. Type /? for help")

    def _set_parameter(self, words: list[str]) -> None:
        if len(words) < 2:
            self.note(PARAMETERS_USAGE + "\n")
            return
        key, values = words[0], words[1:]
        try:
            value = format_param(key, values)
        except UsageError as e:
            self.out(f"Couldn't set parameter: {json.dumps(e.message, ensure_ascii=False)}")
            return
        self.session.request.options[key] = value
        self.out(f"Set parameter '{key}' to '{', '.join(values)}'")

    def _set_system_line(self, words: list[str]) -> None:
        if not words:
            self.note(SET_USAGE + "\n")
            return
        text = " ".join(words)
        start = block_start(text)
        self._set_system(text if start is None else start[0])

    def _set_system(self, text: str) -> None:
        self.session.set_system(text)
        self.out("Set system message.")

    def _show(self, line: str, words: list[str]) -> None:
        """/show info|license|modelfile|parameters|system|template."""
        if len(words) < 2:
            self.note(SHOW_USAGE + "\n")
            return
        session = self.session
        try:
            info = session.show()
        except OllamactlError:
            self.out("error: couldn't get model")
            return
        what = words[1]
        if what == "info":
            self.note(render.show_info(info))
        elif what == "license":
            self.out(info.get("license") or "No license was specified for this model.")
        elif what == "modelfile":
            self.out(str(info.get("modelfile", "")))
        elif what == "parameters":
            self._show_parameters(info)
        elif what == "system":
            system = session.request.system or info.get("system")
            self.out(f"{system}\n" if system else "No system message was specified for this model.")
        elif what == "template":
            self.out(info.get("template") or "No prompt template was specified for this model.")
        else:
            self.out(f"Unknown command '/show {what}'. Type /? for help")

    def _show_parameters(self, info: dict[str, Any]) -> None:
        self.out("Model defined parameters:")
        if info.get("parameters"):
            for parameter_line in str(info["parameters"]).split("\n"):
                self.out(f"  {parameter_line}")
        else:
            self.out("  No additional parameters were specified for this model.")
        self.out()
        options = self.session.request.options
        if options:
            self.out("User defined parameters:")
            for key, value in options.items():
                self.out(f"  {key:<30} {render.go_value(value, 21, shorten_lists=False)}")
            self.out()

    def _help(self, line: str, words: list[str]) -> None:
        """/? [set|show|shortcuts]: help on stderr."""
        topic = words[1] if len(words) > 1 else None
        if topic in ("set", "/set"):
            self.note(SET_USAGE + "\n")
        elif topic in ("show", "/show"):
            self.note(SHOW_USAGE + "\n")
        elif topic in ("shortcut", "shortcuts"):
            self.note(SHORTCUTS_USAGE + "\n")
        elif topic is None:
            media = MEDIA_USAGE if is_multimodal(self.session.info) else ""
            self.note(USAGE + media + "\n")

    def _export(self, line: str, words: list[str]) -> None:
        """/export FILE: the conversation as JSON (.json) or Markdown (anything else)."""
        target = line.partition(" ")[2].strip()
        if not target:
            self.out("Usage:\n  /export <file.md|file.json>")
            return
        path = Path(os.path.expanduser(target))
        conversation = self.session.conversation
        if not conversation.messages:
            self.out("Nothing to export.")
            return
        if not path.parent.is_dir():  # never made here: a typo would leave folders behind
            self.out(f"error: cannot write '{target}': No such file or directory")
            return
        conversation.options = dict(self.session.request.options)
        if path.suffix.lower() == ".json":
            text = json.dumps(conversation.to_dict(), indent=2, ensure_ascii=False) + "\n"
        else:
            text = markdown(conversation)
        try:
            write_private_file(path, text.encode("utf-8"))
        except OSError as e:
            self.out(f"error: cannot write '{target}': {e.strerror or e}")
            return
        self.out(f"Exported {len(conversation.messages)} messages to '{target}'")

    def _retry(self, line: str, words: list[str]) -> None:
        """/retry: drop the last answer and ask again."""
        messages = self.session.messages
        if messages and messages[-1].get("role") == "assistant":
            messages.pop()
        if not messages or messages[-1].get("role") != "user":
            self.out("Nothing to retry.")
            return
        self._answer()

    def _image(self, line: str, words: list[str]) -> None:
        """/image PATH: attach an image (or WAV file) to the next message of a vision model."""
        path = unescape_path(line.partition(" ")[2].strip()).strip("'\"")
        if not path:
            self.out("Usage:\n  /image <path>")
            return
        try:
            check_takes_images(self.session.model, self.session.info)
        except UsageError as e:
            self.out(f"error: {e}")
            return
        try:
            kind, data = read_media(path)
        except UsageError as e:
            self._unreadable(e)
            return
        self.pending_images.append(data)
        self.note(f"Added {kind} '{path}'\n")

    def _unreadable(self, error: UsageError) -> None:
        self.note(f"Couldn't process file: {json.dumps(str(error), ensure_ascii=False)}\n")

    # -- talking to the model -------------------------------------------------------------

    def _send(self, text: str) -> None:
        images, self.pending_images = self.pending_images, []
        try:
            text, found = take_prompt_media(text, self.session.info, self.terminal)
        except UsageError as e:
            self._unreadable(e)
            return
        images += found
        if not text and not images:
            return
        self.session.add_user(text, images)
        self._answer()

    def _answer(self) -> None:
        """Ask for the answer to the history; errors are reported and the REPL goes on."""
        offered = self.session.tools is not None
        printer = StreamPrinter(self.display, self.terminal, quiet=offered)
        try:
            reply = self.session.send(printer)
        except Terminated:
            raise
        except KeyboardInterrupt:
            self.out()
            return
        except OllamactlError as e:
            if is_upstream_error(str(e)):
                self.out("An error occurred while processing your message. Please try again.\n")
            else:
                self.note(f"Error: {self.redact(str(e))}\n")
                self.note("(/retry sends the message again)\n")
            return
        printer.tool_calls(reply, offered=offered)
        finish_answer(reply, self.display, self.terminal, blank_lines=True)

    def _preload(self, model: str, info: dict[str, Any]) -> None:
        """Load the model before the first prompt (or say where a remote model runs)."""
        if info.get("remote_host"):
            remote = info.get("remote_model") or model
            self.note(f"Connecting to '{remote}' on '{info['remote_host']}'\n")
            return
        with Spinner(self.terminal):
            self.session.load(model)

    def _replay(self) -> None:
        """Show the Modelfile's messages (as Go), or the conversation being resumed, wrapped."""
        write = text_writer(self.terminal, self.terminal.stdout, self.display.word_wrap)
        if self.resumed:
            write(transcript(self.session.conversation))
            return
        for message in self.session.info.get("messages") or []:
            if message.get("role") == "user":
                write(f">>> {message.get('content', '')}\n")
            elif message.get("role") == "assistant":
                write(f"{message.get('content', '')}\n\n")

    def _keep_conversation_name(self) -> None:
        """Before /clear or /load starts a new conversation: remember the saved one's ID."""
        if self._saved(self.session.conversation.id):
            self.earlier_conversations.append(self.session.conversation.id)

    def _saved(self, conversation_id: str) -> bool:
        store = self.session.store
        return store is not None and store.path(conversation_id).exists()

    def _say_where_saved(self) -> None:
        """At exit: every conversation this session saved, and how to continue it."""
        current = self.session.conversation.id
        saved = self.earlier_conversations + ([current] if self._saved(current) else [])
        for conversation_id in dict.fromkeys(saved):
            self.note(
                f"Saved as conversation {conversation_id}"
                f" (continue with: ollamactl chat --resume {conversation_id})\n"
            )

    def _completions(self, line: str) -> Sequence[str]:
        return completions(line, self._models)

    def _models(self) -> list[str]:
        if self.model_names is None:
            try:
                self.model_names = [str(m.get("name")) for m in self.session.models()]
            except OllamactlError:
                self.model_names = []
        return self.model_names
