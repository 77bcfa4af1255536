"""Where ollamactl keeps files: the config, data and cache folders, and private file writes.

One lookup for the three folders, highest first: ``$OLLAMACTL_<KIND>_DIR``, then the
platform's place (XDG on Linux and other Unixes, ``~/Library`` on macOS, ``%APPDATA%`` or
``%LOCALAPPDATA%`` on Windows), each with an ``ollamactl`` folder of its own.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ollamactl.errors import UsageError

APP_NAME = "ollamactl"
#: Longest wait for another ollamactl writing the same folder (see :func:`locked_folder`).
LOCK_WAIT_SECONDS = 30.0
LOCK_POLL_SECONDS = 0.01
#: The names of the temporary files of :func:`write_private_file`: ``.NAME.XXXXXXXX.tmp``.
TEMPORARY_SUFFIX = ".tmp"
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TEMPORARY_SUFFIX))


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


def private_folder(folder: Path) -> Path:
    """Create ``folder`` and its missing parents with mode 0700, whatever the umask."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.is_dir():
            break
        missing.append(parent)
    for path in reversed(missing):
        with suppress(FileExistsError):
            path.mkdir(mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask only downwards
    return folder


def write_private_file(path: Path, data: bytes, *, locked: bool = False) -> None:
    """Replace ``path`` atomically with ``data``, readable by the owner only (mode 0600).

    The bytes go to a temporary file in the same folder, are flushed to disk, and the
    file is renamed over ``path``: a reader sees the old or the new content, never a
    mix, and a failure (disk full, read-only folder) leaves the old file untouched. A
    missing folder is created with mode 0700. ``locked``: the caller holds
    :func:`locked_folder`, so the temporary files a killed writer left in the folder are
    removed first. Raises OSError.
    """
    private_folder(path.parent)
    if locked:
        remove_stray_temporaries(path.parent)
    import tempfile

    fd, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent
    )
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


def remove_stray_temporaries(folder: Path) -> None:
    """Remove the temporary files of :func:`write_private_file` left by a killed writer.

    Only under :func:`locked_folder`: then no other ollamactl is writing one in ``folder``.
    """
    with suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if _TEMPORARY.fullmatch(entry.name):
                with suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)


@contextmanager
def locked_folder(folder: Path, what: str) -> Iterator[None]:
    """Hold the lock of ``folder`` (created 0700) while its files are read, changed, written.

    One writer at a time per folder: the folder itself is locked (``flock`` on POSIX, a
    ``.lock`` file on Windows), so no lock file is left beside the data. Waits up to
    LOCK_WAIT_SECONDS for another ollamactl, then refuses with a UsageError naming ``what``
    (as does a folder that cannot be created).
    """
    try:
        private_folder(folder)
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        else:
            fd = os.open(folder, os.O_RDONLY)
    except OSError as e:
        raise UsageError(f"cannot write {what}: {e.strerror or e}") from None
    try:
        _lock(fd, what)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _lock(fd: int, what: str) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EDEADLK):
                raise
        if time.monotonic() > deadline:
            raise UsageError(
                f"{what} is being changed by another ollamactl for more than"
                f" {LOCK_WAIT_SECONDS:g} s; nothing was changed",
                hint="try again when it has finished",
            )
        time.sleep(LOCK_POLL_SECONDS)


def open_input(path: str, what: str) -> BinaryIO:
    """Open a file given by the user for reading, refusing what is not a file.

    A directory or a device (``/dev/zero``, a terminal) is a UsageError naming ``what``;
    a FIFO or a pipe (``<(command)``) is read as a stream: opened without waiting for a
    writer, so a FIFO nobody writes to reads as empty instead of blocking for ever.
    """
    try:
        fd = os.open(os.path.expanduser(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise UsageError(f"cannot read {what} '{path}': {e.strerror or e}") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a device, not a file"
        raise UsageError(f"cannot read {what} '{path}': it is {kind}")
    if stat.S_ISFIFO(mode):
        os.set_blocking(fd, True)
    raw = io.FileIO(fd, "rb")
    raw.name = path  # messages name the file as given, not its descriptor
    return io.BufferedReader(raw)


def read_input(path: str, what: str, limit: int) -> bytes:
    """The bytes of a file given by the user (see :func:`open_input`), at most ``limit``."""
    with open_input(path, what) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise UsageError(f"cannot read {what} '{path}': {e.strerror or e}") from None
    if len(data) > limit:
        raise UsageError(f"{what} '{path}' is larger than {limit // 2**20} MiB")
    return data
