"""Start-up stays cheap: the CLI module must not import the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("requests", "urllib3", "tqdm")


def imported_after(code: str) -> set[str]:
    """The modules loaded after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nsys.stderr.write('MODULES ' + ' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stderr.rpartition("MODULES ")[2].split())


def test_importing_the_cli_does_not_import_heavy_modules() -> None:
    loaded = imported_after("import ollamactl.cli")
    assert "click" in loaded  # the probe works
    assert not loaded & set(HEAVY)


def test_help_and_version_do_not_import_heavy_modules() -> None:
    for argv in (["--help"], ["--version"], ["list", "--help"], ["run", "--help"]):
        code = (
            "import sys\nfrom ollamactl.cli import cli\n"
            f"try:\n    cli.main({argv!r}, prog_name='ollamactl')\nexcept SystemExit:\n    pass"
        )
        assert not imported_after(code) & set(HEAVY), argv


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ollamactl", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.startswith("ollamactl version ")
