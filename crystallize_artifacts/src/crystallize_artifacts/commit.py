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
import secrets
from pathlib import Path

from crystallize_artifacts.safepaths import FD_BASED, Handle

__all__ = ["write_atomic", "write_atomic_at", "fsync_dir", "temp_name", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".crystallize-tmp"
_counter = itertools.count()
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY | _O_NOFOLLOW
# Unique per process (also across the machines sharing a file system), renewed in forked children.
_process_token = secrets.token_hex(4)


def _new_token() -> None:
    global _process_token
    _process_token = secrets.token_hex(4)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_token)


def temp_name(name: str) -> str:
    """A fresh temporary name for committing ``name`` in its folder.

    It adds at most :data:`crystallize.plugin.TEMP_NAME_OVERHEAD` bytes to
    ``name``: ``.`` + name + ``.`` + 8 hex digits of the process + the counter in hex
    (at most 16 digits) + :data:`TEMP_SUFFIX`.
    """
    return f".{name}.{_process_token}{next(_counter):x}{TEMP_SUFFIX}"


def _temp_name(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, temp_name(name))


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
    fd = os.open(temp, _CREATE, 0o644)
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


def write_atomic_at(folder: Handle, name: str, data: bytes | memoryview, *, durable: bool = False) -> None:
    """:func:`write_atomic` of ``folder/name``, ``folder`` being a handle from
    :mod:`~crystallize_artifacts.safepaths` (nothing below it is followed)."""
    if not FD_BASED:
        write_atomic(os.path.join(folder, name), data, durable=durable)  # type: ignore[arg-type]
        return
    temp = temp_name(name)
    fd = os.open(temp, _CREATE, 0o644, dir_fd=folder)  # type: ignore[arg-type]
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _discard_at(folder, temp)
        raise
    os.close(fd)
    try:
        os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)  # type: ignore[arg-type]
    except BaseException:
        _discard_at(folder, temp)
        raise
    if durable:
        os.fsync(folder)  # type: ignore[arg-type]


def _discard_at(folder: Handle, temp: str) -> None:
    try:
        os.unlink(temp, dir_fd=folder)  # type: ignore[arg-type]
    except OSError:
        pass


def _discard(temp: str) -> None:
    try:
        os.unlink(temp)
    except OSError:
        pass
