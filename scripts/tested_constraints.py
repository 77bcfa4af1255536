"""Write constraints/tested.txt from the `pip freeze` of each Python that a green run used.

    python scripts/tested_constraints.py 3.9=f39.txt 3.13=f313.txt > constraints/tested.txt

A package installed at one version everywhere gets a plain pin; otherwise one pin per Python,
with an environment marker, so that `pip install -e '.[test]' -c constraints/tested.txt`
reproduces the run on each of those Pythons. .ci/run prints what this writes, and how it
differs from the committed file.
"""

from __future__ import annotations

import sys
from collections import defaultdict


def read_freeze(path: str) -> dict[str, str]:
    """``name==version`` lines of a freeze file (editable installs and comments left out)."""
    pins = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            name, sep, version = line.strip().partition("==")
            if sep and not name.startswith(("#", "-e")):
                pins[name.lower()] = version
    return pins


def merged(freezes: dict[str, dict[str, str]]) -> list[str]:
    """Constraint lines: one pin where every Python agrees, per-Python pins where not."""
    versions: dict[str, dict[str, str]] = defaultdict(dict)
    for python, pins in freezes.items():
        for name, version in pins.items():
            versions[name][python] = version
    lines = []
    for name in sorted(versions):
        by_python = versions[name]
        if len(set(by_python.values())) == 1 and len(by_python) == len(freezes):
            lines.append(f"{name}=={next(iter(by_python.values()))}")
            continue
        for python in sorted(by_python, key=_version):
            lines.append(f'{name}=={by_python[python]}; python_version == "{python}"')
    return lines


def _version(python: str) -> tuple[int, ...]:
    """``3.13`` as ``(3, 13)``, so that 3.9 sorts before 3.13."""
    return tuple(map(int, python.split(".")))


def main(arguments: list[str]) -> None:
    """Print the merged constraints of ``PYTHON=FREEZE_FILE`` arguments."""
    if not arguments or not all("=" in a for a in arguments):
        sys.exit(__doc__)
    freezes = {python: read_freeze(path) for python, path in (a.split("=", 1) for a in arguments)}
    print("# The versions the last green .ci/run installed (newest releases), per Python.")
    print("# Regenerated with scripts/tested_constraints.py; see CONTRIBUTING.md.")
    print(f"# Pythons: {', '.join(sorted(freezes, key=_version))}")
    print("\n".join(merged(freezes)))


if __name__ == "__main__":
    main(sys.argv[1:])
