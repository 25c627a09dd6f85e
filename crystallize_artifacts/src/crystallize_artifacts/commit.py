"""Atomic file commits.

Every file is written to a temporary name in its destination folder, then
renamed over the destination with :func:`os.replace`, which is atomic on
POSIX and Windows: a reader — or a process resuming after a crash — sees
the old file or the new one, never a partial one.

With ``durable=True`` the data is also flushed to the device before the
rename (``fsync`` of the file) and the rename itself afterwards (``fsync`` of
the folder), so the commit survives power loss and kernel crashes, not only
the death of the process. That costs a device flush per file, so it is off by
default.
"""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

__all__ = ["write_atomic", "fsync_dir", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".crystallize-tmp"
_counter = itertools.count()
_O_BINARY = getattr(os, "O_BINARY", 0)


def _temp_name(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}-{threading.get_ident()}-{next(_counter)}{TEMP_SUFFIX}")


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (renames, creations) to the device."""
    if os.name == "nt":  # folders cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes | memoryview, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` so that it appears whole or not at all."""
    path = os.fspath(path)
    temp = _temp_name(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _discard(temp)
        raise
    os.close(fd)
    try:
        os.replace(temp, path)
    except BaseException:
        _discard(temp)
        raise
    if durable:
        fsync_dir(os.path.dirname(path))


def _discard(temp: str) -> None:
    try:
        os.unlink(temp)
    except OSError:
        pass
