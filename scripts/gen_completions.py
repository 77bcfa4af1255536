"""Regenerate completions/ from the code: what `ollamactl completion SHELL` prints.

    python scripts/gen_completions.py

tests/test_completion.py fails when a committed file differs from the generated one.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ollamactl.cli import cli  # noqa: E402
from ollamactl.completion import completion_script  # noqa: E402

#: The file each shell loads, named as the shell looks for it.
FILES = {"bash": "ollamactl.bash", "zsh": "_ollamactl", "fish": "ollamactl.fish"}


def main() -> None:
    """Write every completion file."""
    for shell, name in FILES.items():
        path = ROOT / "completions" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(completion_script(cli, shell))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
