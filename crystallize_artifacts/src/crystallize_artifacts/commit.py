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

__all__ = [
    "write_all",
    "write_atomic",
    "write_atomic_at",
    "fsync_dir",
    "temp_name",
    "TEMP_SUFFIX",
    "AtomicSink",
    "move_into",
]

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


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic(path: str | Path, data: bytes | memoryview, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` so that it appears whole or not at all."""
    path = os.fspath(path)
    temp = _temp_name(path)
    fd = os.open(temp, _CREATE, 0o644)
    try:
        write_all(fd, data)
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
        write_all(fd, data)
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


class AtomicSink:
    """A streamed :func:`write_atomic_at`: bytes go to a temporary name in ``folder``;
    :meth:`commit` renames it over ``name``, :meth:`discard` removes it.

    ``folder`` is a handle from :mod:`~crystallize_artifacts.safepaths`; with
    ``owns_folder`` the sink closes it when done.
    """

    __slots__ = ("_done", "_fd", "_folder", "_owns", "_temp", "durable", "name")

    def __init__(self, folder: Handle, name: str, *, durable: bool = False, owns_folder: bool = False) -> None:
        self._folder = folder
        self._owns = owns_folder
        self.name = name
        self.durable = durable
        self._temp = temp_name(name)
        if FD_BASED:
            self._fd = os.open(self._temp, _CREATE, 0o644, dir_fd=folder)  # type: ignore[arg-type]
        else:  # pragma: no cover - Windows
            self._fd = os.open(os.path.join(folder, self._temp), _CREATE, 0o644)  # type: ignore[arg-type]
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        size = view.nbytes
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        write_all(self._fd, view)
        return size

    def commit(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            if self.durable:
                os.fsync(self._fd)
        except BaseException:
            self._abort()
            raise
        os.close(self._fd)
        try:
            if FD_BASED:
                os.replace(self._temp, self.name, src_dir_fd=self._folder, dst_dir_fd=self._folder)  # type: ignore[arg-type]
            else:  # pragma: no cover - Windows
                os.replace(os.path.join(self._folder, self._temp), os.path.join(self._folder, self.name))  # type: ignore[arg-type]
            if self.durable and FD_BASED:
                os.fsync(self._folder)  # type: ignore[arg-type]
        except BaseException:
            self._unlink()
            raise
        finally:
            self._close_folder()

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        self._abort()

    def _abort(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
        self._unlink()
        self._close_folder()

    def _unlink(self) -> None:
        if FD_BASED:
            _discard_at(self._folder, self._temp)
        else:  # pragma: no cover - Windows
            _discard(os.path.join(self._folder, self._temp))  # type: ignore[arg-type]

    def _close_folder(self) -> None:
        if self._owns and isinstance(self._folder, int):
            os.close(self._folder)
            self._owns = False


def move_into(source: str, folder: Handle, name: str, *, durable: bool = False) -> bool:
    """Rename the local file ``source`` to ``folder/name`` (atomic); ``False`` when it cannot be
    renamed there (another file system, not a regular file, other hard links): copy it instead."""
    try:
        st = os.lstat(source)
    except OSError:
        return False
    import stat as _stat

    if not _stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        return False
    try:
        if FD_BASED:
            os.replace(source, name, dst_dir_fd=folder)  # type: ignore[arg-type]
        else:  # pragma: no cover - Windows
            os.replace(source, os.path.join(folder, name))  # type: ignore[arg-type]
    except OSError:
        return False  # EXDEV and friends
    if durable and FD_BASED:
        os.fsync(folder)  # type: ignore[arg-type]
    return True
