"""Every command documents itself, and README.md's command reference is its --help, current."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_readme", ROOT / "scripts" / "gen_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_readme = _load_generator()
#: Every registered command, subcommands included, whoever added it.
COMMANDS: list[tuple[click.Context, click.Command]] = gen_readme.commands()
every_command = pytest.mark.parametrize(
    ("ctx", "command"), COMMANDS, ids=[ctx.command_path for ctx, _ in COMMANDS]
)


def test_the_readme_command_reference_is_up_to_date() -> None:
    readme = README.read_text()
    assert gen_readme.updated(readme) == readme, (
        "README.md's command reference is stale: run python scripts/gen_readme.py"
    )


@every_command
def test_every_command_has_a_description_and_an_example(
    ctx: click.Context, command: click.Command
) -> None:
    description = (command.help or "").strip().split("\n\n")[0]
    assert len(description.split()) >= 3, f"{ctx.command_path} has no description"
    assert re.search(r"^ *Examples?:$", ctx.get_help(), re.MULTILINE), (
        f"{ctx.command_path} --help has no Example(s): block"
    )


@every_command
def test_every_command_has_a_readme_entry(ctx: click.Context, command: click.Command) -> None:
    block = README.read_text().partition(gen_readme.BEGIN)[2]
    assert f"\n### `{ctx.command_path}`\n" in block
