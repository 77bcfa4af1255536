"""The docs are current: every command documents itself, and the generated parts of README.md,
docs/reference.md and docs/scripting.md are what scripts/gen_docs.py writes from the code."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import click
import pytest

from ollamactl.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REGENERATE = "run python scripts/gen_docs.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_docs = _load_generator()
#: Every registered command, subcommands included, whoever added it.
COMMANDS: list[tuple[click.Context, click.Command]] = gen_docs.commands()
every_command = pytest.mark.parametrize(
    ("ctx", "command"), COMMANDS, ids=[ctx.command_path for ctx, _ in COMMANDS]
)
#: The hand-written and generated Markdown files whose links are checked.
MARKDOWN = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_generated_docs_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in gen_docs.outputs().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"{', '.join(stale)} differ from the code: {REGENERATE}"


@every_command
def test_every_command_has_a_description_and_an_example(
    ctx: click.Context, command: click.Command
) -> None:
    text = gen_docs.help_text(command.help)
    assert len(text.split("\n\n")[0].split()) >= 3, f"{ctx.command_path} has no description"
    assert re.search(r"^ *Examples?:$", text, re.MULTILINE), (
        f"{ctx.command_path}'s help has no Example(s): block"
    )


@every_command
def test_every_command_has_a_reference_entry(ctx: click.Context, command: click.Command) -> None:
    reference = gen_docs.REFERENCE.read_text()
    assert f"\n## `{ctx.command_path}`\n" in reference, f"{REGENERATE}"


def test_every_top_level_command_is_in_the_readme_table() -> None:
    table = README.read_text().partition("<!-- BEGIN GENERATED commands -->")[2]
    ctx = COMMANDS[0][0]
    missing = [name for name, _ in gen_docs.subcommands(ctx) if f"`{name}" not in table]
    assert not missing, f"README.md's command table lacks {missing}: {REGENERATE}"


def test_the_exit_code_table_is_exit_code() -> None:
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| (.+) \|$", gen_docs.SCRIPTING.read_text(), re.M)
    assert rows == [(str(code.value), code.name, code.description) for code in ExitCode], (
        f"docs/scripting.md's exit codes are not ExitCode's: {REGENERATE}"
    )


def test_every_module_says_what_it_holds() -> None:
    bare = [
        str(path.relative_to(ROOT))
        for path in gen_docs.modules()
        if not gen_docs.module_summary(path)
    ]
    assert not bare, f"no module docstring for CONTRIBUTING.md's layout: {bare}"


def test_the_rendering_does_not_depend_on_click_s_help_layout() -> None:
    @click.command()
    @click.argument("model", required=False)
    @click.argument("prompt", nargs=-1)
    @click.option("-n", "--count", type=click.IntRange(0, 10), default=2, show_default=True)
    @click.option("--mode", type=click.Choice(["a", "b"]), help="The *mode*.")
    @click.option("--wrap/--no-wrap", default=True, help="Wrap lines.")
    @click.option("--secret", hidden=True)
    def toy(**_: object) -> None:
        """Do a thing with MODEL.

        More words, wrapped
        over two lines.

        \b
        Examples:
          toy llama3.2 hi
            --mode a
        """

    ctx = toy.make_context("toy", [], resilient_parsing=True)
    assert "\n\n".join(gen_docs.command_section(ctx, toy)) == (
        "```text\ntoy [OPTIONS] [MODEL] [PROMPT]...\n```\n\n"
        "Do a thing with MODEL.\n\n"
        "More words, wrapped over two lines.\n\n"
        "Examples:\n\n```sh\ntoy llama3.2 hi\n  --mode a\n```\n\n"
        "Arguments:\n\n- `[MODEL]`: optional\n- `[PROMPT]...`: any number, optional\n\n"
        "Options:\n\n"
        "- `-n, --count INTEGER`: (default: `2`; range: `0 <= x <= 10`)\n"
        "- `--mode [a|b]`: The \\*mode\\*.\n"
        "- `--wrap / --no-wrap`: Wrap lines."
    )


def test_chat_lists_its_arguments_apart_from_its_options() -> None:
    section = gen_docs.REFERENCE.read_text().partition("\n## `ollamactl chat`\n")[2]
    section = section.partition("\n## ")[0]
    arguments = section.partition("\nArguments:\n\n")[2].partition("\n\n")[0]
    options = section.partition("\nOptions:\n\n")[2].partition("\n\n")[0]
    assert "- `[MODEL]`" in arguments and "- `[PROMPT]...`" in arguments
    assert "MODEL" not in options and "PROMPT" not in options
    assert "- `--continue`" in options


def test_the_readme_has_exactly_the_two_set_up_commands() -> None:
    """What .ci/run runs: the code lines of README's "Install and test" section."""
    section = README.read_text().partition("\n## Install and test\n")[2].partition("\n## ")[0]
    assert "```" not in section
    commands = [line[4:] for line in section.splitlines() if re.match(r"^    \S", line)]
    assert commands == ["pip install -e '.[test]'", "python -m pytest"]


@pytest.mark.parametrize(
    "path",
    [README, *sorted(set((ROOT / "docs").glob("*.md")) - {gen_docs.REFERENCE})],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_options_the_docs_name_exist(path: Path) -> None:
    known = {"--help"}
    for _, command in COMMANDS:
        for option in gen_docs.options(command):
            known.update(option.opts + option.secondary_opts)
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", path.read_text()))
    unknown = sorted(named - known)
    assert not unknown, f"{path.relative_to(ROOT)} names options no command has: {unknown}"


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_between_the_docs_lead_somewhere(path: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (anchor and anchor not in _anchors(linked)):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links nowhere: {broken}"
