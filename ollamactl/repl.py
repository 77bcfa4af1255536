"""The interactive session of ``run`` and ``chat``: the Go CLI's REPL, over ``/api/chat``.

Every slash command of ``ollama run`` with its wording (``/set``, ``/show``,
``/load``, ``/save``, ``/clear``, ``/bye``, ``/?``), ``\"\"\"`` multi-line input,
line editing, history and tab completion through the standard library's
readline, plus ``/export``, ``/retry`` and ``/image``. Ctrl-C stops an answer
(its partial text stays in the history, marked interrupted); Ctrl-D exits.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path
from typing import Any, Callable

import click

from ollamactl import render
from ollamactl.answer import Spinner, finish_answer
from ollamactl.conversations import Conversation, markdown, transcript
from ollamactl.errors import APIError, ModelNotFound, OllamactlError, UsageError
from ollamactl.params import (
    KNOWN_PARAMS,
    extract_media,
    format_param,
    media_paths,
    parse_think,
    read_media,
    unescape_path,
)
from ollamactl.paths import data_dir, write_private_file
from ollamactl.session import Session, capabilities, is_multimodal

PROMPT = ">>> "
CONTINUATION_PROMPT = "... "
HISTORY_LENGTH = 1000
MULTILINE = '"""'
THINK_VALUES = 'must be "high", "medium", "low", "max", true, or false'

USAGE = """Available Commands:
  /set            Set session variables
  /show           Show model information
  /load <model>   Load a session or model
  /save <model>   Save your current session
  /clear          Clear session context
  /export <file>  Write the conversation to a Markdown or .json file
  /retry          Regenerate the last answer
  /image <path>   Attach an image to the next message
  /bye            Exit
  /?, /help       Help for a command
  /? shortcuts    Help for keyboard shortcuts

Use \"\"\" to begin a multi-line message.
"""
MEDIA_USAGE = "Use /path/to/file to include .jpg, .png, .webp images, or .wav audio files.\n"
SET_USAGE = """Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set history           Enable history
  /set nohistory         Disable history
  /set wordwrap          Enable wordwrap
  /set nowordwrap        Disable wordwrap
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
  /set think             Enable thinking
  /set nothink           Disable thinking
"""
SHOW_USAGE = """Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template
"""
SHORTCUTS_USAGE = """Available keyboard shortcuts:
  Ctrl + a            Move to the beginning of the line (Home)
  Ctrl + e            Move to the end of the line (End)
   Alt + b            Move back (left) one word
   Alt + f            Move forward (right) one word
  Ctrl + k            Delete the sentence after the cursor
  Ctrl + u            Delete the sentence before the cursor
  Ctrl + w            Delete the word before the cursor

  Ctrl + l            Clear the screen
  Ctrl + r            Search the history
  Ctrl + c            Stop the model from responding
  Ctrl + d            Exit ollamactl (/bye)
"""
PARAMETERS_USAGE = """Available Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter num_gpu <int>          The number of layers to send to the GPU
  /set parameter stop <string> <string> ...   Set the stop parameters
"""
SET_WORDS = (
    "parameter",
    "system",
    "history",
    "nohistory",
    "wordwrap",
    "nowordwrap",
    "format",
    "noformat",
    "verbose",
    "quiet",
    "think",
    "nothink",
)
SHOW_WORDS = ("info", "license", "modelfile", "parameters", "system", "template")
COMMANDS = ("/set", "/show", "/load", "/save", "/clear", "/export", "/retry", "/image", "/bye")
COMMANDS += ("/exit", "/help", "/?")
COMPLETIONS = {
    "/set": SET_WORDS,
    "/show": SHOW_WORDS,
    "/?": ("set", "show", "shortcuts"),
    "/help": ("set", "show", "shortcuts"),
}


def history_disabled() -> bool:
    """``OLLAMA_NOHISTORY`` as Go reads it: any set value but a false one disables saving."""
    value = os.environ.get("OLLAMA_NOHISTORY", "")
    return bool(value) and value not in ("0", "f", "F", "FALSE", "false", "False")


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


def out(text: str = "") -> None:
    """A line on stdout."""
    click.echo(text)


def note(text: str) -> None:
    """Text on stderr, as is (help blocks, notices)."""
    click.echo(text, err=True, nl=False)


class Repl:
    """The read-eval-print loop around a :class:`Session`."""

    def __init__(self, session: Session, *, resumed: bool = False) -> None:
        self.session = session
        self.resumed = resumed
        self.save_history = not history_disabled()
        self.history_path: Path = data_dir() / "history"
        self.pending_images: list[str] = list(session.controls.images)  # -i: the first message
        self.model_names: list[str] | None = None
        self.readline: Any = None
        session.controls.as_json = False

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Preload the model, replay what came before, then read and handle lines until exit."""
        self._setup_readline()
        self._preload(self.session.model, self.session.info)
        self._replay()
        try:
            self._loop()
        finally:
            if self.save_history:
                self._write_history()
            self._say_where_saved()

    def _loop(self) -> None:
        block: list[str] | None = None  # the lines of an open """ block
        block_is_system = False
        while True:
            try:
                line = input(PROMPT if block is None else CONTINUATION_PROMPT)
            except EOFError:
                out()
                return
            except KeyboardInterrupt:
                typed = self.readline.get_line_buffer() if self.readline else ""
                out("" if typed else "\nUse Ctrl + d or /bye to exit.")
                block = None
                continue
            words = line.split()
            try:
                self._remember()
                if block is not None:
                    ended = line.endswith(MULTILINE)
                    block.append(line[: -len(MULTILINE)] if ended else line)
                    if ended:
                        text, block = "\n".join(block), None
                        self._set_system(text) if block_is_system else self._send(text)
                elif (start := block_start(line)) is not None:
                    if start[1]:
                        block, block_is_system = [start[0]], False
                    else:
                        self._send(start[0])
                elif words[:2] == ["/set", "system"] and _opens_block(" ".join(words[2:])):
                    block, block_is_system = [" ".join(words[2:])[len(MULTILINE) :]], True
                elif self._command(line, words) == "bye":
                    return
            except KeyboardInterrupt:
                out()

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
            out(f"Unknown command '{words[0]}'. Type /? for help")
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
        models = self.session.app.client.tags()
        prefix = words[1].lower() if len(words) > 1 else ""
        models = [m for m in models if str(m.get("name", "")).lower().startswith(prefix)]
        click.echo(render.model_table(models), nl=False)

    def _load(self, line: str, words: list[str]) -> None:
        """/load MODEL: switch to another model with a fresh history."""
        if len(words) != 2:
            out("Usage:\n  /load <modelname>")
            return
        name = words[1]
        out(f"Loading model '{name}'")
        client = self.session.app.client
        try:
            info = client.show(name)
            self._preload(name, info)
        except ModelNotFound:
            out(f"Couldn't find model '{name}'")
            return
        except APIError as e:
            out(f"error: {e}")
            return
        self.session.info = info
        self._start_over(name)

    def _save(self, line: str, words: list[str]) -> None:
        """/save MODEL: create a server-side model from this session, as Go does."""
        if len(words) != 2:
            out("Usage:\n  /save <modelname>")
            return
        name = words[1]
        session = self.session
        parent = (session.info.get("details") or {}).get("parent_model") or ""
        body: dict[str, Any] = {"model": name, "from": parent or session.model}
        if session.controls.system:
            body["system"] = session.controls.system
        if session.controls.options:
            body["parameters"] = session.controls.options
        messages = list(session.info.get("messages") or []) + session.conversation.api_messages()
        if messages:
            body["messages"] = messages
        try:
            for _ in session.app.client.create(body):
                pass
        except APIError as e:
            if "invalid model name" in str(e):
                out(f"error: The model name '{name}' is invalid")
            else:
                out(f"error: {e}")
            return
        out(f"Created new model '{name}'")

    def _clear(self, line: str, words: list[str]) -> None:
        """/clear: forget the history (keeping the system message)."""
        self._start_over(self.session.model)
        out("Cleared session context")

    def _start_over(self, model: str) -> None:
        """A fresh history (a new saved conversation for chat), keeping the system message."""
        session = self.session
        store = session.store
        session.conversation = store.new(model) if store else Conversation(id="", model=model)
        if session.controls.system:
            session.set_system(session.controls.system)

    def _set(self, line: str, words: list[str]) -> None:
        """/set ...: session settings, with the Go CLI's messages."""
        if len(words) < 2:
            note(SET_USAGE + "\n")
            return
        controls, what = self.session.controls, words[1]
        switches = {
            "wordwrap": ("word_wrap", True, "Set 'wordwrap' mode."),
            "nowordwrap": ("word_wrap", False, "Set 'nowordwrap' mode."),
            "verbose": ("verbose", True, "Set 'verbose' mode."),
            "quiet": ("verbose", False, "Set 'quiet' mode."),
            "noformat": ("format", None, "Disabled format."),
        }
        if what in switches:
            attribute, value, message = switches[what]
            setattr(controls, attribute, value)
            out(message)
        elif what in ("history", "nohistory"):
            self.save_history = what == "history"
        elif what in ("think", "nothink"):
            level = words[2] if what == "think" and len(words) > 2 else None
            try:
                controls.think = parse_think(level) if level else what == "think"
            except UsageError:
                out(f"error: invalid think value: {json.dumps(level)} ({THINK_VALUES})")
                return
            if "thinking" not in capabilities(self.session.info):
                model = json.dumps(self.session.model)
                note(f"warning: model {model} does not support thinking output\n")
            out(f"Set 'think' mode to '{level}'." if level else f"Set '{what}' mode.")
        elif what == "format":
            if words[2:3] != ["json"]:
                out("Invalid or missing format. For 'json' mode use '/set format json'")
            else:
                controls.format = "json"
                out("Set format to 'json' mode.")
        elif what == "parameter":
            self._set_parameter(words[2:])
        elif what == "system":
            self._set_system_line(words[2:])
        else:
            out(f"Unknown command '/set {what}'. Type /? for help")

    def _set_parameter(self, words: list[str]) -> None:
        if len(words) < 2:
            note(PARAMETERS_USAGE + "\n")
            return
        key, values = words[0], words[1:]
        try:
            value = format_param(key, values)
        except UsageError as e:
            out(f"Couldn't set parameter: {json.dumps(e.message, ensure_ascii=False)}")
            return
        self.session.controls.options[key] = value
        out(f"Set parameter '{key}' to '{', '.join(values)}'")

    def _set_system_line(self, words: list[str]) -> None:
        if not words:
            note(SET_USAGE + "\n")
            return
        text = " ".join(words)
        start = block_start(text)
        self._set_system(text if start is None else start[0])

    def _set_system(self, text: str) -> None:
        self.session.set_system(text)
        out("Set system message.")

    def _show(self, line: str, words: list[str]) -> None:
        """/show info|license|modelfile|parameters|system|template."""
        if len(words) < 2:
            note(SHOW_USAGE + "\n")
            return
        session = self.session
        try:
            info = session.app.client.show(
                session.model, system=session.controls.system, options=session.controls.options
            )
        except OllamactlError:
            out("error: couldn't get model")
            return
        what = words[1]
        if what == "info":
            note(render.show_info(info))
        elif what == "license":
            out(info.get("license") or "No license was specified for this model.")
        elif what == "modelfile":
            out(str(info.get("modelfile", "")))
        elif what == "parameters":
            self._show_parameters(info)
        elif what == "system":
            system = session.controls.system or info.get("system")
            out(f"{system}\n" if system else "No system message was specified for this model.")
        elif what == "template":
            out(info.get("template") or "No prompt template was specified for this model.")
        else:
            out(f"Unknown command '/show {what}'. Type /? for help")

    def _show_parameters(self, info: dict[str, Any]) -> None:
        out("Model defined parameters:")
        if info.get("parameters"):
            for parameter_line in str(info["parameters"]).split("\n"):
                out(f"  {parameter_line}")
        else:
            out("  No additional parameters were specified for this model.")
        out()
        options = self.session.controls.options
        if options:
            out("User defined parameters:")
            for key, value in options.items():
                out(f"  {key:<30} {render.go_value(value, 21, shorten_lists=False)}")
            out()

    def _help(self, line: str, words: list[str]) -> None:
        """/? [set|show|shortcuts]: help on stderr."""
        topic = words[1] if len(words) > 1 else None
        if topic in ("set", "/set"):
            note(SET_USAGE + "\n")
        elif topic in ("show", "/show"):
            note(SHOW_USAGE + "\n")
        elif topic in ("shortcut", "shortcuts"):
            note(SHORTCUTS_USAGE + "\n")
        elif topic is None:
            media = MEDIA_USAGE if is_multimodal(self.session.info) else ""
            note(USAGE + media + "\n")

    def _export(self, line: str, words: list[str]) -> None:
        """/export FILE: the conversation as JSON (.json) or Markdown (anything else)."""
        target = line.partition(" ")[2].strip()
        if not target:
            out("Usage:\n  /export <file.md|file.json>")
            return
        path = os.path.expanduser(target)
        conversation = self.session.conversation
        if path.lower().endswith(".json"):
            text = json.dumps(conversation.to_dict(), indent=2, ensure_ascii=False) + "\n"
        else:
            text = markdown(conversation)
        try:
            write_private_file(Path(path), text.encode("utf-8"))
        except OSError as e:
            out(f"error: cannot write '{target}': {e.strerror or e}")
            return
        out(f"Exported {len(conversation.messages)} messages to '{target}'")

    def _retry(self, line: str, words: list[str]) -> None:
        """/retry: drop the last answer and ask again."""
        messages = self.session.messages
        if messages and messages[-1].get("role") == "assistant":
            messages.pop()
        if not messages or messages[-1].get("role") != "user":
            out("Nothing to retry.")
            return
        self._answer()

    def _image(self, line: str, words: list[str]) -> None:
        """/image PATH: attach an image (or WAV file) to the next message."""
        path = unescape_path(line.partition(" ")[2].strip()).strip("'\"")
        if not path:
            out("Usage:\n  /image <path>")
            return
        try:
            kind, data = read_media(path)
        except UsageError as e:
            note(f"Couldn't process file: {json.dumps(str(e), ensure_ascii=False)}\n")
            return
        self.pending_images.append(data)
        note(f"Added {kind} '{path}'\n")

    # -- talking to the model -------------------------------------------------------------

    def _send(self, text: str) -> None:
        images, self.pending_images = self.pending_images, []
        if is_multimodal(self.session.info):
            try:
                text, found = extract_media(text)
            except UsageError as e:
                note(f"Couldn't process file: {json.dumps(str(e), ensure_ascii=False)}\n")
                return
            for path, kind, data in found:
                note(f"Added {kind} '{path}'\n")
                images.append(data)
        if not text and not images:
            return
        self.session.add_user(text, images)
        self._answer()

    def _answer(self) -> None:
        """Ask for the answer to the history; errors are reported and the REPL goes on."""
        try:
            reply = self.session.answer()
        except KeyboardInterrupt:
            out()
            return
        except OllamactlError as e:
            if "upstream error" in str(e):
                out("An error occurred while processing your message. Please try again.\n")
            else:
                note(f"Error: {self.session.app.redact(str(e))}\n")
                note("(/retry sends the message again)\n")
            return
        finish_answer(reply, self.session.controls, blank_lines=True)

    def _preload(self, model: str, info: dict[str, Any]) -> None:
        """Load the model before the first prompt (or say where a remote model runs)."""
        if info.get("remote_host"):
            remote = info.get("remote_model") or model
            note(f"Connecting to '{remote}' on '{info['remote_host']}'\n")
            return
        with Spinner(self.session.app.terminal):
            self.session.app.client.load(model, self.session.controls.keep_alive)

    def _replay(self) -> None:
        """Show the Modelfile's messages (as Go), or the conversation being resumed."""
        if self.resumed:
            click.echo(transcript(self.session.conversation), nl=False)
            return
        for message in self.session.info.get("messages") or []:
            if message.get("role") == "user":
                out(f">>> {message.get('content', '')}")
            elif message.get("role") == "assistant":
                out(f"{message.get('content', '')}\n")

    def _say_where_saved(self) -> None:
        session = self.session
        if session.store is not None and session.messages:
            conversation_id = session.conversation.id
            note(
                f"Saved as conversation {conversation_id}"
                f" (continue with: ollamactl chat --resume {conversation_id})\n"
            )

    # -- readline -------------------------------------------------------------------------

    def _setup_readline(self) -> None:
        try:
            import readline
        except ImportError:  # pragma: no cover - Windows without pyreadline
            return
        self.readline = readline
        readline.set_completer_delims(" \t\n")
        readline.set_completer(self._complete)
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
        readline.set_history_length(HISTORY_LENGTH)
        with suppress(OSError):
            readline.read_history_file(self.history_path)

    def _remember(self) -> None:
        """Append the line just read to the history file (when history is saved)."""
        if not (self.save_history and self.readline):
            return
        try:
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.history_path, os.O_WRONLY | os.O_CREAT, 0o600))
            self.readline.append_history_file(1, self.history_path)
        except OSError:
            pass

    def _write_history(self) -> None:
        """Rewrite the history file, keeping the last HISTORY_LENGTH lines."""
        if not self.readline:
            return
        with suppress(OSError):
            self.readline.write_history_file(self.history_path)

    def _complete(self, text: str, state: int) -> str | None:
        """Tab completion of slash commands, their words, parameters and model names."""
        buffer = self.readline.get_line_buffer()[: self.readline.get_endidx()]
        words = buffer.split()
        if len(words) <= 1 and not buffer.endswith(" "):
            candidates: tuple[str, ...] | list[str] = COMMANDS if buffer.startswith("/") else ()
        elif words[:2] == ["/set", "parameter"]:
            candidates = sorted(KNOWN_PARAMS) if len(words) <= 3 else ()
        elif words[0] in ("/load", "/save"):
            candidates = self._models()
        else:
            candidates = COMPLETIONS.get(words[0], ())
        matches = [c + " " for c in candidates if c.startswith(text)]
        return matches[state] if state < len(matches) else None

    def _models(self) -> list[str]:
        if self.model_names is None:
            try:
                self.model_names = [str(m.get("name")) for m in self.session.app.client.tags()]
            except OllamactlError:
                self.model_names = []
        return self.model_names
