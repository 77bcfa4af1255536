"""Shell completion: model and profile names, the bash script, and the ``completion`` command.

Completion runs the program on every TAB, so this module stays cheap to import and
never prints: its output *is* the protocol. Model names come from the server within a
deadline (DNS included) and are cached per server (base URL) for a short time in the user
cache dir; a server that failed is not asked again for a few seconds. The cache is read
before any credential is resolved, so a second TAB reads one small file: it neither
imports requests nor runs a profile's ``api_key_cmd``. Commands that change the models
drop the server's entries (:func:`forget_server`), so the next TAB asks again.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ZshComplete,
    add_completion_class,
    get_completion_class,
    split_arg_string,
)

from ollamactl import paths
from ollamactl.errors import OllamactlError
from ollamactl.paths import write_private_file

if TYPE_CHECKING:  # config is imported when a name is completed, not for a command name
    from ollamactl.config import Flags, Settings

PROG_NAME = "ollamactl"
COMPLETE_VAR = "_OLLAMACTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
#: Seconds a TAB may spend asking the server, all in: DNS, connecting, the answer.
SERVER_TIMEOUT = 1.0
#: Seconds a cached list of names stays fresh, per endpoint (running models change faster).
CACHE_SECONDS = {"tags": 60.0, "ps": 15.0}
#: Seconds a server that failed to answer is not asked again (each TAB would wait again).
DOWN_SECONDS = 10.0
#: Saved conversations described (model and first words) per TAB; more get the ID alone.
DESCRIBED_CONVERSATIONS = 20

# Click's bash script with two changes. It reads COMP_LINE/COMP_POINT instead of
# COMP_WORDS, because bash splits COMP_WORDS at every COMP_WORDBREAKS character, so
# `gemma3:12b` arrives as three words; the Python side then answers with the part
# after the last break character, which is what readline replaces. (The break
# characters travel as COMP_BREAK_CHARS: a bash wrapper such as a pyenv shim would
# reset a variable named COMP_WORDBREAKS.) And values are quoted, so a `*` in a
# candidate is not globbed. A single value that ends in / (a folder) gets no space.
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
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
        compopt -o nospace  # a folder (--format @dir/): go on typing inside it
    fi

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

    name = "bash"
    source_template = _BASH_SOURCE
    _replaced_prefix = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        if "COMP_LINE" not in os.environ:  # called the way click's own script calls it
            return _words_and_index()
        line = os.environ["COMP_LINE"][: int(os.environ.get("COMP_POINT", 10**9))]
        # A NUL after the cursor makes the word being typed the last token, even when
        # it is empty ("rm ") or inside an open quote ("rm 'my mo").
        *words, current = split_arg_string(line + "\0")
        incomplete = current[:-1]
        if not _inside_quotes(line):  # readline ignores break characters inside quotes
            breaks = set(os.environ.get("COMP_BREAK_CHARS", "")) - set(" \t\n\"'")
            cut = max((incomplete.rfind(c) for c in breaks), default=-1)
            if cut >= 0 and incomplete[cut] in "$@":  # bash's special prefixes stay in the word
                cut -= 1
            self._replaced_prefix = incomplete[: cut + 1]
        return words[1:], incomplete

    def format_completion(self, item: CompletionItem) -> str:
        value = str(item.value)
        if self._replaced_prefix and value.startswith(self._replaced_prefix):
            value = value[len(self._replaced_prefix) :]
        return f"{item.type},{value}"


# ollamactl's own zsh script: values without a description go through compadd, which
# takes them as they are (``gemma3:12b``), with no space after a folder (a value ending
# in /); values with one go through _describe, which splits at the first unescaped colon,
# so their colons are escaped. compdef exists only after compinit: a stock zsh without it
# still gets completion instead of an error at every start. Autoloaded from $fpath, the file
# is the body of _ollamactl at every TAB (click's check of zsh_eval_context holds only for
# the first, which loads it).
_ZSH_SOURCE = """\
#compdef %(prog_name)s

%(complete_func)s() {
    local -a completions
    local -a folders
    local -a completions_with_descriptions
    local -a response
    (( ! $+commands[%(prog_name)s] )) && return 1

    response=("${(@f)$(env COMP_WORDS="${words[*]}" COMP_CWORD=$((CURRENT-1)) \\
        %(complete_var)s=zsh_complete %(prog_name)s)}")

    for type key descr in ${response}; do
        if [[ "$type" == "plain" ]]; then
            if [[ "$descr" == "_" && "$key" == */ ]]; then
                folders+=("$key")
            elif [[ "$descr" == "_" ]]; then
                completions+=("$key")
            else
                completions_with_descriptions+=("$key":"$descr")
            fi
        elif [[ "$type" == "dir" ]]; then
            _path_files -/
        elif [[ "$type" == "file" ]]; then
            _path_files -f
        fi
    done

    if [ -n "$completions_with_descriptions" ]; then
        _describe -V unsorted completions_with_descriptions -U
    fi

    if [ -n "$completions" ]; then
        compadd -U -V unsorted -a completions
    fi

    if [ -n "$folders" ]; then
        compadd -U -S '' -V unsorted -a folders
    fi
}

if [[ $funcstack[1] == _%(prog_name)s ]]; then
    # autoloaded from fpath: this file is the body of _%(prog_name)s, run at every TAB
    %(complete_func)s "$@"
else
    # sourced or eval'd: register the function, loading compinit first if needed
    (( $+functions[compdef] )) || { autoload -Uz compinit && compinit }
    compdef %(complete_func)s %(prog_name)s
fi
"""


@add_completion_class
class OllamactlZshComplete(ZshComplete):
    """ollamactl's own zsh script and protocol (type, value and description, one line each)."""

    name = "zsh"
    source_template = _ZSH_SOURCE

    def get_completion_args(self) -> tuple[list[str], str]:
        return _words_and_index()

    def format_completion(self, item: CompletionItem) -> str:
        description = _one_line(item.help) or "_"
        value = str(item.value)
        if description != "_":
            value = value.replace(":", r"\:")
        return f"{item.type}\n{value}\n{description}"


# ollamactl's own fish script: each answer line is TYPE,VALUE[<tab>DESCRIPTION]; the split
# is at the first comma only, so values may contain commas, and ``--`` keeps a value that
# starts with a dash (an option) from being read as a flag of ``string split``.
_FISH_SOURCE = """\
function %(complete_func)s
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \\
        COMP_CWORD=(commandline -t) %(prog_name)s)

    for completion in $response
        set -l metadata (string split -m 1 "," -- $completion)
        switch $metadata[1]
            case dir
                __fish_complete_directories $metadata[2]
            case file
                __fish_complete_path $metadata[2]
            case plain
                echo $metadata[2]
        end
    end
end

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)"
"""


@add_completion_class
class OllamactlFishComplete(FishComplete):
    """ollamactl's own fish script and protocol (``TYPE,VALUE`` and a tab before the help)."""

    name = "fish"
    source_template = _FISH_SOURCE

    def get_completion_args(self) -> tuple[list[str], str]:
        words = split_arg_string(os.environ.get("COMP_WORDS", ""))
        typed = os.environ.get("COMP_CWORD", "")
        incomplete = split_arg_string(typed)[0] if typed else ""
        args = words[1:]
        if incomplete and args and args[-1] == incomplete:  # fish sends the word in both
            args.pop()
        return args, incomplete

    def format_completion(self, item: CompletionItem) -> str:
        description = _one_line(item.help)
        line = f"{item.type},{item.value}"
        return f"{line}\t{description}" if description else line


def _words_and_index() -> tuple[list[str], str]:
    """The arguments before the cursor and the word being typed, from COMP_WORDS/COMP_CWORD."""
    words = split_arg_string(os.environ.get("COMP_WORDS", ""))
    index = int(os.environ.get("COMP_CWORD", len(words)))
    incomplete = words[index] if index < len(words) else ""
    return words[1:index], incomplete


def _one_line(text: str | None) -> str:
    """A description as one line without tabs (the protocols are line- and tab-separated)."""
    return " ".join((text or "").split())


def _inside_quotes(line: str) -> bool:
    """True when ``line`` ends inside an open quote."""
    try:
        shlex.split(line)
    except ValueError:
        return True
    return False


def cache_dir() -> Path:
    """The folder of the completion cache: ``$OLLAMACTL_CACHE_DIR`` or the user cache dir."""
    return paths.cache_dir()


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
    from ollamactl.config import load_config

    try:
        profiles = load_config().get("profiles")
    except OllamactlError:
        return []
    names = profiles if isinstance(profiles, dict) else {}
    return sorted(name for name in names if name.startswith(incomplete))


def complete_format(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``shell_complete`` callback of ``--format``: ``json``, or a schema file after ``@``."""
    if incomplete.startswith("@"):
        return [CompletionItem("@" + path) for path in _paths_starting(incomplete[1:])]
    return [CompletionItem("json")] if "json".startswith(incomplete) else []


def _paths_starting(prefix: str) -> list[str]:
    """The files and folders whose path starts with ``prefix``, as typed (folders end in /).

    Hidden entries only when the name typed starts with a dot, as shells do.
    """
    folder, _, start = prefix.rpartition("/")
    head = folder + "/" if folder or prefix.startswith("/") else ""
    try:
        entries = list(os.scandir(os.path.expanduser(folder) or "."))
    except OSError:
        return []
    return sorted(
        head + entry.name + ("/" if entry.is_dir() else "")
        for entry in entries
        if entry.name.startswith(start) and (start.startswith(".") or entry.name[0] != ".")
    )


def complete_conversations(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``shell_complete`` callback: saved conversation IDs, the newest first, described.

    The description is the model and the first words; only the newest
    :data:`DESCRIBED_CONVERSATIONS` are read, so a TAB stays fast with thousands saved.
    """
    from ollamactl.conversations import ConversationStore

    store = ConversationStore()
    given = ctx.params.get(param.name or "")
    already = set(given) if isinstance(given, tuple) else set()
    ids = [i for i in store.ids() if i.startswith(incomplete) and i not in already]
    items = []
    for number, conversation_id in enumerate(ids):
        description = None
        if number < DESCRIBED_CONVERSATIONS:
            with contextlib.suppress(OllamactlError):
                conversation = store.load(conversation_id)
                description = " ".join(filter(None, [conversation.model, conversation.title]))
        items.append(CompletionItem(conversation_id, help=description))
    return items


def complete_help_topics(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``shell_complete`` callback of ``help``: the commands below the words given so far."""
    shown = subcommand_context(ctx.find_root(), ctx.params.get(param.name or "") or ())
    if shown is None or not isinstance(shown.command, click.Group):
        return []
    items = shown.command.shell_complete(shown, incomplete)
    return [item for item in items if not str(item.value).startswith("-")]


def subcommand_context(root: click.Context, names: tuple[str, ...]) -> click.Context | None:
    """The context of the command that ``names`` lead to from ``root`` (None: no such command).

    Its arguments are not parsed, so it serves for help and completion only.
    """
    shown = root
    for name in names:
        group = shown.command if isinstance(shown.command, click.Group) else None
        found = group.get_command(shown, name) if group else None
        if found is None:
            return None
        shown = found.make_context(name, [], parent=shown, resilient_parsing=True)
    return shown


def _candidates(
    ctx: click.Context, param: click.Parameter, incomplete: str, endpoint: str
) -> list[str]:
    given = ctx.params.get(param.name or "")
    already = set(given) if isinstance(given, tuple) else set()  # earlier words of `rm a b`
    return [n for n in _model_names(ctx, endpoint) if n.startswith(incomplete) and n not in already]


def _root_flags(ctx: click.Context) -> Flags:
    """The root command's flags (``--host``, ``--profile``, ...) of the line being completed."""
    import dataclasses

    from ollamactl.config import Flags

    root = ctx.find_root().params
    flags = {f.name: root.get(f.name) for f in dataclasses.fields(Flags)}
    flags["headers"] = tuple(root.get("headers") or ())
    return Flags(**flags)


def _cache_files(base_url: str) -> dict[str, Path]:
    """The cache files of one server: each endpoint's names, and ``down`` after a failure."""
    import hashlib  # hashlib, json, dataclasses and config: for model names, not command names

    digest = hashlib.sha256(base_url.encode()).hexdigest()[:16]
    return {kind: cache_dir() / f"{kind}-{digest}.json" for kind in (*CACHE_SECONDS, "down")}


def _model_names(ctx: click.Context, endpoint: str) -> list[str]:
    """Model names from the cache, or from the server; [] on any problem."""
    from ollamactl.config import resolve

    try:
        flags = _root_flags(ctx)
        base_url = resolve(flags, with_secrets=False).base_url
        files = _cache_files(base_url)
        names = _read_cache(files[endpoint], base_url, CACHE_SECONDS[endpoint])
        if names is not None:
            return names
        if _read_cache(files["down"], base_url, DOWN_SECONDS) is not None:
            return []
        try:  # only now run a profile's api_key_cmd or read its api_key_env
            names = _fetch_in_time(flags, endpoint, SERVER_TIMEOUT)
        except Exception:
            write_private_file(files["down"], _cache_entry(base_url, []))
            raise
        write_private_file(files[endpoint], _cache_entry(base_url, names))
        return names
    except Exception:  # a TAB must never show a traceback or an error: no candidates instead
        return []


def forget_server(flags: Flags) -> None:
    """Drop what the cache holds about the server of ``flags``: the next TAB asks it again.

    Called after every command that changes the server's models or the ones in memory.
    """
    from ollamactl.config import resolve

    with contextlib.suppress(Exception):  # a cache that cannot be cleaned is no error
        for path in _cache_files(resolve(flags, with_secrets=False).base_url).values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _cache_entry(base_url: str, names: list[str]) -> bytes:
    """The cache file's content: the base URL (never credentials), the time, the names."""
    import json

    return json.dumps({"url": base_url, "time": time.time(), "names": names}).encode()


def _read_cache(path: Path, base_url: str, max_age: float) -> list[str] | None:
    """The cached names if the entry is for ``base_url`` and fresh, else None."""
    import json

    try:
        entry: Any = json.loads(path.read_bytes())
        age = time.time() - float(entry["time"])
        if entry["url"] == base_url and 0 <= age < max_age:
            return [str(name) for name in entry["names"]]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return None


def _fetch_in_time(flags: Flags, endpoint: str, seconds: float) -> list[str]:
    """:func:`_fetch` in a thread that gets ``seconds``, resolving the host name included.

    A resolver or a server that hangs is left behind (the thread is a daemon, and the
    process ends after this TAB); TimeoutError then. Stray log lines are swallowed.
    """
    import threading

    import ollamactl.client  # noqa: F401 - imported before the clock starts
    from ollamactl.config import resolve

    answer: list[list[str]] = []
    failure: list[BaseException] = []

    def ask() -> None:
        try:
            answer.append(_fetch(resolve(flags), endpoint, seconds))
        except BaseException as e:  # handed to the waiting thread
            failure.append(e)

    with contextlib.redirect_stderr(io.StringIO()):
        worker = threading.Thread(target=ask, name="ollamactl-completion", daemon=True)
        worker.start()
        worker.join(seconds)
    if answer:
        return answer[0]
    raise failure[0] if failure else TimeoutError(f"no answer within {seconds:g}s")


def _fetch(settings: Settings, endpoint: str, seconds: float) -> list[str]:
    """Ask the server once, with no retries."""
    import dataclasses

    from ollamactl.client import Client

    quick = dataclasses.replace(settings, connect_timeout=seconds, read_timeout=seconds, retries=0)
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

    Completes commands, options, profile names, model names, saved
    conversations and file names. Model names come from the server (1 s at
    most; a server that failed is not asked again for 10 s) and are cached for
    60 s per server in the user cache dir (or $OLLAMACTL_CACHE_DIR); commands
    that change the models drop that cache. Set-up for each shell:
    docs/configuration.md.

    \b
    Examples:
      echo 'eval "$(ollamactl completion bash)"' >> ~/.bashrc
      echo 'eval "$(ollamactl completion zsh)"' >> ~/.zshrc
      mkdir -p ~/.config/fish/completions
      ollamactl completion fish > ~/.config/fish/completions/ollamactl.fish
    """
    click.echo(completion_script(ctx.find_root().command, shell), nl=False)
