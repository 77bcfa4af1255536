"""Where ollamactl keeps files: the config, data and cache folders, and private file writes.

One lookup for the three folders, highest first: ``$OLLAMACTL_<KIND>_DIR``, then the
platform's place (XDG on Linux and other Unixes, ``~/Library`` on macOS, ``%APPDATA%`` or
``%LOCALAPPDATA%`` on Windows), each with an ``ollamactl`` folder of its own.
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

APP_NAME = "ollamactl"


class _Folder(NamedTuple):
    """Where one kind of folder lives on each platform."""

    override: str  # the environment variable that names it outright
    xdg_variable: str
    xdg_default: str  # below the home folder
    macos: str  # below the home folder
    windows_variable: str
    windows_default: str  # below the home folder
    windows_suffix: str = ""  # below the ollamactl folder, on Windows (where data lives too)


_FOLDERS = {
    "config": _Folder(
        "OLLAMACTL_CONFIG_DIR",
        "XDG_CONFIG_HOME",
        ".config",
        "Library/Application Support",
        "APPDATA",
        "AppData/Roaming",
    ),
    "data": _Folder(
        "OLLAMACTL_DATA_DIR",
        "XDG_DATA_HOME",
        ".local/share",
        "Library/Application Support",
        "LOCALAPPDATA",
        "AppData/Local",
    ),
    "cache": _Folder(
        "OLLAMACTL_CACHE_DIR",
        "XDG_CACHE_HOME",
        ".cache",
        "Library/Caches",
        "LOCALAPPDATA",
        "AppData/Local",
        "Cache",
    ),
}


def _user_dir(kind: str) -> Path:
    folder = _FOLDERS[kind]
    override = os.environ.get(folder.override)
    if override:
        return Path(override)
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get(folder.windows_variable) or home / folder.windows_default)
        return base / APP_NAME / folder.windows_suffix
    if sys.platform == "darwin":
        return home / folder.macos / APP_NAME
    xdg = os.environ.get(folder.xdg_variable, "")
    return (Path(xdg) if os.path.isabs(xdg) else home / folder.xdg_default) / APP_NAME


def config_dir() -> Path:
    """The folder of ``config.toml``: ``$OLLAMACTL_CONFIG_DIR`` or the user config dir."""
    return _user_dir("config")


def data_dir() -> Path:
    """The folder of saved chats and the REPL history: ``$OLLAMACTL_DATA_DIR`` or the user's."""
    return _user_dir("data")


def cache_dir() -> Path:
    """The folder of the completion cache: ``$OLLAMACTL_CACHE_DIR`` or the user cache dir."""
    return _user_dir("cache")


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by the owner only (mode 0600).

    The bytes go to a temporary file in the same folder, are flushed to disk, and the
    file is renamed over ``path``: a reader sees the old or the new content, never a
    mix, and a failure (disk full, read-only folder) leaves the old file untouched. A
    missing folder is created with mode 0700. Raises OSError.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    import tempfile

    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
