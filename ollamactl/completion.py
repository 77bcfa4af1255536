"""Shell completion: model and profile names, the bash script, and the ``completion`` command.

Completion runs the program on every TAB, so this module stays cheap to import and
never prints: its output *is* the protocol. Model names come from the server with a
short timeout and are cached per server (base URL) for a short time in the user cache
dir. The cache is read before any credential is resolved, so a second TAB reads one
small file: it neither imports requests nor runs a profile's ``api_key_cmd``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    add_completion_class,
    get_completion_class,
    split_arg_string,
)

from ollamactl.config import Flags, Settings, load_config, resolve, write_private_file
from ollamactl.errors import OllamactlError

PROG_NAME = "ollamactl"
COMPLETE_VAR = "_OLLAMACTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
#: Seconds to connect, and then to wait for the answer, when TAB asks the server.
SERVER_TIMEOUT = 1.0
#: Seconds a cached list of names stays fresh, per endpoint (running models change faster).
CACHE_SECONDS = {"tags": 60.0, "ps": 15.0}

# Click's bash script with two changes. It reads COMP_LINE/COMP_POINT instead of
# COMP_WORDS, because bash splits COMP_WORDS at every COMP_WORDBREAKS character, so
# `gemma3:12b` arrives as three words; the Python side then answers with the part
# after the last break character, which is what readline replaces. (The break
# characters travel as COMP_BREAK_CHARS: a bash wrapper such as a pyenv shim would
# reset a variable named COMP_WORDBREAKS.) And values are quoted, so a `*` in a
# candidate is not globbed.
_BASH_SOURCE = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response

    COMPREPLY=()
    response=$(env COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" \\
        COMP_BREAK_CHARS="$COMP_WORDBREAKS" %(complete_var)s=bash_complete "$1")

    for completion in $response; do
        IFS=',' read -r type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=("$value")
        fi
    done

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


@add_completion_class
class ColonSafeBashComplete(BashComplete):
    """Bash completion that keeps words such as ``gemma3:12b`` whole (see ``_BASH_SOURCE``)."""

    source_template = _BASH_SOURCE
    _replaced_prefix = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        if "COMP_LINE" not in os.environ:  # called the way click's own script calls it
            return super().get_completion_args()
        line = os.environ["COMP_LINE"][: int(os.environ.get("COMP_POINT", 10**9))]
        # A NUL after the cursor makes the word being typed the last token, even when
        # it is empty ("rm ") or inside an open quote ("rm 'my mo").
        *words, current = split_arg_string(line + "\0")
        incomplete = current[:-1]
        if not _inside_quotes(line):  # readline ignores break characters inside quotes
            breaks = set(os.environ.get("COMP_BREAK_CHARS", "")) - set(" \t\n\"'")
            cut = max((incomplete.rfind(c) for c in breaks), default=-1)
            self._replaced_prefix = incomplete[: cut + 1]
        return words[1:], incomplete

    def format_completion(self, item: CompletionItem) -> str:
        value = str(item.value)
        if self._replaced_prefix and value.startswith(self._replaced_prefix):
            value = value[len(self._replaced_prefix) :]
        return f"{item.type},{value}"


def _inside_quotes(line: str) -> bool:
    """True when ``line`` ends inside an open quote."""
    try:
        shlex.split(line)
    except ValueError:
        return True
    return False


def cache_dir() -> Path:
    """The folder of the completion cache: ``$OLLAMACTL_CACHE_DIR`` or the user cache dir."""
    override = os.environ.get("OLLAMACTL_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(local) / PROG_NAME / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / PROG_NAME
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / PROG_NAME


def complete_models(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """``shell_complete`` callback: the server's model names (``/api/tags``)."""
    return _candidates(ctx, param, incomplete, "tags")


def complete_running_models(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[str]:
    """``shell_complete`` callback: the names of the models in memory (``/api/ps``)."""
    return _candidates(ctx, param, incomplete, "ps")


def complete_profiles(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """``shell_complete`` callback: the profile names of the config file."""
    try:
        profiles = load_config().get("profiles")
    except OllamactlError:
        return []
    names = profiles if isinstance(profiles, dict) else {}
    return sorted(name for name in names if name.startswith(incomplete))


def _candidates(
    ctx: click.Context, param: click.Parameter, incomplete: str, endpoint: str
) -> list[str]:
    given = ctx.params.get(param.name or "")
    already = set(given) if isinstance(given, tuple) else set()  # earlier words of `rm a b`
    return [n for n in _model_names(ctx, endpoint) if n.startswith(incomplete) and n not in already]


def _model_names(ctx: click.Context, endpoint: str) -> list[str]:
    """Model names from the cache, or from the server; [] on any problem."""
    try:
        root = ctx.find_root().params
        flags = {f.name: root.get(f.name) for f in dataclasses.fields(Flags)}
        flags["headers"] = tuple(root.get("headers") or ())
        base_url = resolve(Flags(**flags), with_secrets=False).base_url
        path = cache_dir() / f"{endpoint}-{_digest(base_url)}.json"
        names = _read_cache(path, base_url, CACHE_SECONDS[endpoint])
        if names is None:  # only now run a profile's api_key_cmd or read its api_key_env
            names = _fetch(resolve(Flags(**flags)), endpoint)
            write_private_file(path, _cache_entry(base_url, names))
        return names
    except Exception:  # a TAB must never show a traceback or an error: no candidates instead
        return []


def _digest(base_url: str) -> str:
    import hashlib

    return hashlib.sha256(base_url.encode()).hexdigest()[:16]


def _cache_entry(base_url: str, names: list[str]) -> bytes:
    """The cache file's content: the base URL (never credentials), the time, the names."""
    return json.dumps({"url": base_url, "time": time.time(), "names": names}).encode()


def _read_cache(path: Path, base_url: str, max_age: float) -> list[str] | None:
    """The cached names if the entry is for ``base_url`` and fresh, else None."""
    try:
        entry: Any = json.loads(path.read_bytes())
        age = time.time() - float(entry["time"])
        if entry["url"] == base_url and 0 <= age < max_age:
            return [str(name) for name in entry["names"]]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return None


def _fetch(settings: Settings, endpoint: str) -> list[str]:
    """Ask the server, with a short timeout and no retries; stray log lines are swallowed."""
    from ollamactl.client import Client

    quick = dataclasses.replace(
        settings, connect_timeout=SERVER_TIMEOUT, read_timeout=SERVER_TIMEOUT, retries=0
    )
    with contextlib.redirect_stderr(io.StringIO()):
        client = Client(quick)
        with client.session:
            models = client.tags() if endpoint == "tags" else client.ps()
    return [str(m["name"]) for m in models if m.get("name")]


def completion_script(cli: click.Command, shell: str) -> str:
    """The completion script for ``shell``, as ``ollamactl completion SHELL`` prints it."""
    complete_class = get_completion_class(shell)
    assert complete_class is not None, shell  # SHELLS are shells click knows
    source = complete_class(cli, {}, PROG_NAME, COMPLETE_VAR).source()
    return source if source.endswith("\n") else source + "\n"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    Completes commands, options, profile names and model names; model names
    come from the server (1 s timeout) and are cached for 60 s per server in
    the user cache dir (or $OLLAMACTL_CACHE_DIR).

    \b
    Examples:
      ollamactl completion bash > ~/.local/share/bash-completion/completions/ollamactl
      echo 'eval "$(ollamactl completion zsh)"' >> ~/.zshrc
      ollamactl completion fish > ~/.config/fish/completions/ollamactl.fish
    """
    click.echo(completion_script(ctx.find_root().command, shell), nl=False)
