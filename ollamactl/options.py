"""Every option used by more than one command, defined once (as pip's ``cli/cmdoptions.py``).

Each name has one meaning everywhere: ``--json`` prints the API objects, ``-q/--quiet`` on a
listing prints names only, ``--quiet`` on a transfer shows no progress, ``--retries`` is the
HTTP retries of the root command and ``--resume-retries`` the re-issues of a pull or push,
``--output-format`` the format of a listing, ``-o/--output`` a file and ``-p/--parameter`` a
model parameter (``-o`` is refused on run and chat, where it once was ``--option``).
Older spellings keep working without being shown (:class:`AliasOption`).

This module is imported on every start (``--version`` included): it imports click alone,
and the modules behind an option's choices only when a command module applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_RESUME_RETRIES = 3
DEFAULT_STALL_TIMEOUT = 60.0


class AliasOption(click.Option):
    """An option whose ``aliases`` (older spellings) still work but are left out of ``--help``."""

    def __init__(
        self, param_decls: Sequence[str], *, aliases: Sequence[str] = (), **attrs: Any
    ) -> None:
        super().__init__([*param_decls, *aliases], **attrs)
        self.aliases = tuple(aliases)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, [o for o in self.opts if o not in self.aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def apply(func: F, *decorators: Callable[[Any], Any]) -> F:
    """Apply ``decorators`` so that they list in ``--help`` in the order given."""
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def json_option(what: str = "the API response") -> Callable[[F], F]:
    """``--json``: print ``what`` (the API objects as returned) as JSON, for scripts."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")


class Seconds(click.FloatRange):
    """A number of seconds, checked by ``profiles.parse_seconds`` (finite, at most a bound) as
    every timeout is: a bad one is one ``Error:`` line (exit 2). Its range shows in the help."""

    name = "seconds"

    def __init__(self, *, minimum: float = 0, inclusive: bool = False) -> None:
        from ollamactl.profiles import MAX_SECONDS

        super().__init__(min=minimum, max=MAX_SECONDS, min_open=not inclusive)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ollamactl.profiles import parse_seconds

        flag = param.opts[0] if param is not None and param.opts else "the value"
        return parse_seconds(flag, value, minimum=self.min or 0, inclusive=not self.min_open)


class InputFile(click.ParamType):
    """A file the user names for reading (``-``: stdin), opened by ``paths.open_input``.

    A directory or a device is refused at once (exit 2, one line), a FIFO or a pipe is read
    as a stream. The value is the binary file, or with ``text`` its UTF-8 text (undecodable
    bytes replaced).
    """

    name = "file"

    def __init__(self, what: str, *, text: bool = False) -> None:
        self.what = what
        self.text = text

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        from ollamactl.paths import open_input

        if value == "-":
            from ollamactl.terminal import binary_stream

            binary = binary_stream("stdin")
        else:
            binary = open_input(value, self.what)
            if ctx is not None:
                ctx.call_on_close(binary.close)
        if not self.text:
            return binary
        import io

        text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace")
        if ctx is not None:
            ctx.call_on_close(text.detach if value == "-" else text.close)
        return text

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """File names, as click completes a ``click.File``."""
        from click.shell_completion import CompletionItem

        return [CompletionItem(incomplete, type="file")]


def json_file_option(flag: str, help: str) -> Callable[[F], F]:
    """An option naming a JSON file (``-``: stdin), passed as ``<name>_file`` (binary)."""
    destination = flag.lstrip("-") + "_file"
    what = f"the {flag.lstrip('-')} file"
    return click.option(flag, destination, type=InputFile(what), metavar="FILE", help=help)


def names_only_option(what: str = "model") -> Callable[[F], F]:
    """``-q/--quiet`` of a listing: print the names only, one per line (for ``xargs``)."""
    return click.option("-q", "--quiet", is_flag=True, help=f"Print {what} names only.")


def listing_options(sorts: Sequence[str], sort_help: str) -> Callable[[F], F]:
    """``--sort KEY``, ``--output-format FORMAT`` and ``--no-headers`` of a listing.

    Not ``--output``/``-o``: ``-o/--output`` is a file (batch's answers).
    """
    from ollamactl.tables import FORMATS

    def decorate(func: F) -> F:
        return apply(
            func,
            click.option("--sort", type=click.Choice(sorts), help=sort_help),
            click.option(
                "--output-format",
                type=click.Choice(FORMATS),
                help="table (the Go CLI's, the default), or for scripts json (as --json), tsv"
                " or csv: sizes in bytes, times in ISO 8601 (UTC), the full digest.",
            ),
            click.option(
                "--no-headers", is_flag=True, help="Leave out the header line (table, tsv, csv)."
            ),
        )

    return decorate


def no_progress_option(*, short: bool = False) -> Callable[[F], F]:
    """``--quiet`` of pull, push, create: no progress (``-q`` too, its old name, if ``short``)."""
    return click.option(
        "--quiet",
        cls=AliasOption,
        aliases=("-q",) if short else (),
        is_flag=True,
        help="Show no progress (--progress none).",
    )


#: ``-H``: a global option, and a field of ``config profile add``.
header_option = click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="HTTP header for every request (repeatable).",
)
#: ``--ca-cert``: a global option, and a field of ``config profile add``.
ca_cert_option = click.option(
    "--ca-cert",
    type=click.Path(),
    metavar="PATH",
    help="CA bundle to verify the server's certificate.",
)


def client_cert_options(func: F) -> F:
    """``--client-cert``/``--client-key`` (mutual TLS): global options, and fields of a profile."""
    return apply(
        func,
        click.option(
            "--client-cert",
            type=click.Path(dir_okay=False),
            metavar="PATH",
            help="Client certificate (PEM) for a server that requires one, as curl --cert"
            " (env OLLAMACTL_CLIENT_CERT).",
        ),
        click.option(
            "--client-key",
            type=click.Path(dir_okay=False),
            metavar="PATH",
            help="Its private key (PEM, unencrypted) if not in the certificate file"
            " (env OLLAMACTL_CLIENT_KEY).",
        ),
    )


def insecure_option(func: F) -> F:
    """``--insecure``: the registry of a pull or push (also a missing model's) is insecure."""
    return click.option(
        "--insecure", is_flag=True, help="Use an insecure registry (http, unverified TLS)."
    )(func)


def progress_option(func: F) -> F:
    """``--progress MODE``."""
    from ollamactl.progress import MODES

    return click.option(
        "--progress",
        type=click.Choice(MODES),
        default="auto",
        show_default=True,
        help="Progress on stderr: bars on a terminal (tty), lines (plain), server events (json),"
        " or none. auto = tty on a terminal, else plain.",
    )(func)


def transfer_options(func: F) -> F:
    """pull and push: --insecure, --resume-retries, --stall-timeout, --progress, --quiet."""
    return apply(
        func,
        insecure_option,
        click.option(
            "--resume-retries",
            "resume_retries",
            cls=AliasOption,
            aliases=("--retries",),
            type=click.IntRange(0, 100),
            default=DEFAULT_RESUME_RETRIES,
            show_default=True,
            help="How often to re-issue a broken or stalled transfer (the server resumes it).",
        ),
        click.option(
            "--stall-timeout",
            type=Seconds(),
            default=DEFAULT_STALL_TIMEOUT,
            show_default=True,
            metavar="SECONDS",
            help="Re-issue the transfer when no progress arrives for this long.",
        ),
        progress_option,
        no_progress_option(short=True),
    )


def _all_profiles(help: str) -> Callable[[F], F]:
    return click.option("--all-profiles", is_flag=True, help=help)


def all_profiles_option(func: F) -> F:
    """``--all-profiles``: the fleet view, one query per profile of the config file."""
    from ollamactl.fleet import FLEET_TIMEOUT

    return _all_profiles(
        "Ask every profile of the config file in parallel (each gets --read-timeout"
        f" seconds, default {FLEET_TIMEOUT:g}) and add a HOST column."
    )(func)


def spread_options(func: F) -> F:
    """``--profiles A,B`` and ``--all-profiles``: the servers a batch is spread over."""
    return apply(
        func,
        click.option(
            "--profiles", metavar="A,B,...", help="Spread the prompts over these profiles."
        ),
        _all_profiles("Spread the prompts over every profile of the config file."),
    )


# -- generation -----------------------------------------------------------------------------


def model_options_option(func: F) -> F:
    """``-p/--parameter KEY=VALUE``: a model parameter, repeatable (Go's ``PARAMETER``)."""
    return click.option(
        "-p",
        "--parameter",
        "options",
        cls=AliasOption,
        aliases=("--option",),
        multiple=True,
        metavar="KEY=VALUE",
        help="Model parameter (repeatable), e.g. -p temperature=0 -p num_ctx=8192.",
    )(func)


def _refuse_o(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    if value:
        from ollamactl.errors import UsageError

        raise UsageError("-o is not a model parameter: use -p KEY=VALUE (or --parameter)")


def retired_o_option(func: F) -> F:
    """A hidden ``-o`` that says model parameters are ``-p`` now (``-o`` is an output file)."""
    return click.option(
        "-o", "retired_o", multiple=True, hidden=True, expose_value=False, callback=_refuse_o
    )(func)


def keepalive_option(func: F) -> F:
    """``--keepalive``: how long the model stays loaded after the request."""
    return click.option(
        "--keepalive",
        metavar="DURATION",
        help="Keep the model loaded this long: 5m, 1h30m, 300 (seconds), -1 (forever), 0.",
    )(func)


def embedding_options(func: F) -> F:
    """``--truncate/--no-truncate`` and ``--dimensions`` for embedding models."""
    return apply(
        func,
        click.option(
            "--truncate/--no-truncate",
            default=None,
            help="Truncate inputs longer than the context [server default: truncate].",
        ),
        click.option(
            "--dimensions", type=click.IntRange(1), help="Embedding dimensions (embedding models)."
        ),
    )


def _complete_format(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from ollamactl.completion import complete_format  # on a TAB only

    return complete_format(ctx, param, incomplete)


def shared_request_options(func: F) -> F:
    """What run, chat and batch send besides the prompt: system, -p, format, keepalive, think.

    ``--think`` takes an optional level in a :class:`GenerationCommand`."""
    return apply(
        func,
        click.option("--system", metavar="TEXT", help="System message for the model."),
        model_options_option,
        click.option(
            "--format",
            "response_format",
            metavar="json|@FILE|SCHEMA",
            help="Response format: json, a JSON schema file (@schema.json) or inline schema.",
            shell_complete=_complete_format,
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
    )


def request_options(func: F) -> F:
    """What run and chat send: :func:`shared_request_options`, images and --no-stream."""
    return apply(
        func,
        shared_request_options,
        click.option(
            "-i",
            "--image",
            "images",
            type=click.Path(),
            multiple=True,
            metavar="PATH",
            help="Attach an image (repeatable).",
        ),
        click.option("--no-stream", is_flag=True, help="Wait for the whole answer."),
        retired_o_option,
    )


def display_options(func: F) -> F:
    """How run and chat show the answer: --hidethinking, --nowordwrap, --verbose, --json."""
    return apply(
        func,
        click.option("--hidethinking", is_flag=True, help="Do not show the thinking output."),
        click.option("--nowordwrap", is_flag=True, help="Do not wrap words on a terminal."),
        click.option("--verbose", is_flag=True, help="Show timings and token rates (stderr)."),
        json_option("the final response object"),
    )


def generation_options(func: F) -> F:
    """The options of run and chat: what is sent, how it is shown, and ``--insecure``."""
    return apply(func, request_options, display_options, insecure_option)


def _explicit_think(args: list[str]) -> list[str]:
    """Make a bare ``--think`` not swallow the next word unless that word is a level.

    >>> _explicit_think(["m", "--think", "why?"]), _explicit_think(["m", "--think", "high"])
    (['m', '--think=true', 'why?'], ['m', '--think', 'high'])
    """
    from ollamactl.params import THINK_LEVELS

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
