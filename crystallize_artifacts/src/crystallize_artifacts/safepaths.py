"""The path-safety layer: every file below a run folder, reached without following links.

The store owns ``<root>/<experiment>/``. Whoever else can write there — a
second process of the same user, other users of a shared machine or file
system, the owner of a producer folder an experiment reads — must not be
able to make the store read, write or delete anything outside it. The rules,
applied by every store operation through this module:

- ``root_dir`` is the user's choice and trusted as it is (it may be, or lie
  below, a symbolic link). Below it nothing is followed: each path segment is
  opened relative to its parent's descriptor (``openat`` through ``dir_fd``)
  with ``O_NOFOLLOW``, so a symbolic link anywhere below the root — planted
  before a run or swapped in during it — raises :class:`UnsafePathError`.
- A file the store reads must be a regular file. It is opened with
  ``O_NONBLOCK`` (a FIFO or device does not block the open) and checked with
  ``fstat`` before a byte is read.
- A relative path read from disk (a manifest, a journal, ``results.json``)
  is checked with :func:`split_relpath` before use: never absolute, never
  ``..``, only names a run folder may hold.

On platforms without ``dir_fd`` support (Windows) the same checks are made
with ``lstat`` on each segment, which is not race-free.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from crystallize.plugin import CrystallizeError, check_name

__all__ = [
    "UnsafePathError",
    "FD_BASED",
    "check_segment",
    "split_relpath",
    "open_folder",
    "open_dirs",
    "open_regular",
    "read_regular",
    "read_in",
    "lstat_at",
    "open_append",
    "unlink_at",
    "scan",
    "rmdir_at",
    "remove_tree",
    "close",
]

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
#: folders and files are reached through descriptors (``openat``); ``False`` on Windows.
FD_BASED = bool(_O_NOFOLLOW and _O_DIRECTORY and os.open in os.supports_dir_fd and os.stat in os.supports_dir_fd)
DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK, errno.ENOTDIR}

#: a folder handle: a descriptor where ``dir_fd`` works, else a path.
Handle = int | str


class UnsafePathError(CrystallizeError, ValueError):
    """A path the store would have to follow a link, leave its folder, or
    open a non-regular file for. The message names the path and the fix."""


def _refuse(where: str, what: str) -> UnsafePathError:
    return UnsafePathError(
        f"{where} is {what}; the artifact store never follows links or opens special files it did not create. "
        "Remove it (or restore the file the store wrote there) and run again"
    )


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    if stat.S_ISREG(mode):
        return "a regular file, not a folder"
    return "not a regular file"


_checked: set[str] = set()


def check_segment(value: object, what: str) -> str:
    """``value`` if it is a valid name for one path segment (see
    :func:`crystallize.plugin.check_name`); names that passed are remembered."""
    if type(value) is str and value in _checked:
        return value
    check_name(value, what)
    if len(_checked) < 100_000:
        _checked.add(value)  # type: ignore[arg-type]
    return value  # type: ignore[return-value]


def split_relpath(rel: object, where: str) -> tuple[str, ...]:
    """The segments of a ``/``-separated relative path read from disk; raises
    :class:`UnsafePathError` for anything that could leave the run folder."""
    if type(rel) is not str:
        raise UnsafePathError(f"{where}: path {rel!r} is not a string")
    parts = tuple(rel.split("/"))
    if rel.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
        raise UnsafePathError(f"{where}: path {rel[:200]!r} is not a relative path inside the run; refusing to use it")
    return parts


# -- opening folders -----------------------------------------------------------------------


def open_folder(path: str | Path, *, create: bool = False) -> Handle:
    """Open the folder ``path`` itself (its last segment must not be a link;
    the segments above it are the user's and are followed)."""
    path = os.fspath(path)
    if not FD_BASED:
        return _checked_path(path, create)
    try:
        return os.open(path, DIR_FLAGS)
    except FileNotFoundError:
        if not create:
            raise
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        return open_folder(path)
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS:
            raise _refuse(path, _kind(os.lstat(path).st_mode)) from None
        raise


def _checked_path(path: str, create: bool) -> str:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        if not create:
            raise
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        mode = os.lstat(path).st_mode
    if not stat.S_ISDIR(mode):
        raise _refuse(path, _kind(mode))
    return path


def open_dirs(
    base: Handle, segments: Sequence[str], *, where: str, create: bool = False, known: set[str] | None = None
) -> Handle:
    """The folder ``base/segments...``, each segment opened without following
    links (and created when ``create``). The caller closes the result with
    :func:`close` (``base`` itself stays open).

    :param known: folders below ``base`` (``/``-joined) known to exist; with
        ``create``, others are created before they are opened, saving a failed
        open for a new folder. Folders opened are added to it.
    """
    if not FD_BASED:
        path = str(base)
        for segment in segments:
            path = _checked_path(os.path.join(path, segment), create)
        return path
    fd = base
    prefix = ""
    try:
        for segment in segments:
            if known is not None:
                prefix = f"{prefix}/{segment}"
                if create and prefix not in known:
                    try:
                        os.mkdir(segment, 0o777, dir_fd=fd)  # type: ignore[arg-type]
                    except FileExistsError:
                        pass
            child = _open_dir_at(fd, segment, create, where, segments)  # type: ignore[arg-type]
            if known is not None:
                known.add(prefix)
            if fd != base:
                os.close(fd)  # type: ignore[arg-type]
            fd = child
    except BaseException:
        if fd != base:
            os.close(fd)  # type: ignore[arg-type]
        raise
    return fd


def _open_dir_at(parent: int, segment: str, create: bool, where: str, segments: Sequence[str]) -> int:
    try:
        return os.open(segment, DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        if exc.errno not in _LINK_ERRNOS:
            raise
        mode = os.stat(segment, dir_fd=parent, follow_symlinks=False).st_mode
        raise _refuse(_join(where, segments, segment), _kind(mode)) from None
    try:
        os.mkdir(segment, 0o777, dir_fd=parent)
    except FileExistsError:
        pass
    return _open_dir_at(parent, segment, False, where, segments)


def _join(where: str, segments: Sequence[str], upto: str) -> str:
    shown = []
    for segment in segments:
        shown.append(segment)
        if segment == upto:
            break
    return os.path.join(where, *shown)


def close(handle: Handle | None) -> None:
    """Close a handle from :func:`open_folder`/:func:`open_dirs` (no-op for paths)."""
    if isinstance(handle, int):
        os.close(handle)


# -- files ------------------------------------------------------------------------------------


def _open_file(folder: Handle, name: str, flags: int, mode: int = 0o644) -> int:
    if FD_BASED:
        return os.open(name, flags, mode, dir_fd=folder)  # type: ignore[arg-type]
    path = os.path.join(folder, name)  # type: ignore[arg-type]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISLNK(st.st_mode):
            raise OSError(errno.ELOOP, "symbolic link", path)
    return os.open(path, flags, mode)


def open_regular(
    folder: Handle, name: str, flags: int, *, where: str, single_link: bool = False, mode: int = 0o644
) -> int:
    """A descriptor of the regular file ``folder/name``, opened with ``flags``
    plus ``O_NOFOLLOW | O_NONBLOCK``: a link, FIFO, socket, device or folder
    there raises :class:`UnsafePathError` without blocking (so does a file with
    several hard links when ``single_link``, for files the store writes in place).
    ``FileNotFoundError`` passes through."""
    try:
        fd = _open_file(folder, name, flags | _O_NOFOLLOW | _O_NONBLOCK | _O_NOCTTY | _O_BINARY, mode)
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS or exc.errno in (errno.ENXIO, errno.EISDIR):
            found = lstat_at(folder, name)
            raise _refuse(where, "a symbolic link" if found is None else _kind(found.st_mode)) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (single_link and st.st_nlink > 1):
        os.close(fd)
        raise _refuse(where, _kind(st.st_mode) if stat.S_ISREG(st.st_mode) is False else "a file with other hard links")
    return fd


def read_regular(folder: Handle, name: str, *, where: str, limit: int | None = None) -> bytes | None:
    """The bytes of the regular file ``folder/name``; ``None`` if it does not exist.

    A link, FIFO, device or folder there raises :class:`UnsafePathError`
    without blocking; ``where`` names the file in messages.
    """
    try:
        fd = open_regular(folder, name, os.O_RDONLY, where=where)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        if limit is not None and size > limit:
            raise UnsafePathError(f"{where} is {size} bytes, more than the {limit} such a file may hold")
        chunks = []
        while True:
            chunk = os.read(fd, max(size + 1, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_in(folder: str | Path, name: str, *, limit: int | None = None) -> bytes | None:
    """:func:`read_regular` of ``name`` in the folder at path ``folder``
    (``None`` when the file or the folder does not exist)."""
    try:
        handle = open_folder(folder)
    except FileNotFoundError:
        return None
    try:
        return read_regular(handle, name, where=os.path.join(folder, name), limit=limit)
    finally:
        close(handle)


def lstat_at(folder: Handle, name: str) -> os.stat_result | None:
    """``lstat`` of ``folder/name`` (links are not followed); ``None`` if missing."""
    try:
        if FD_BASED:
            return os.stat(name, dir_fd=folder, follow_symlinks=False)  # type: ignore[arg-type]
        return os.lstat(os.path.join(folder, name))  # type: ignore[arg-type]
    except (FileNotFoundError, NotADirectoryError):
        return None


def open_append(folder: Handle, name: str, *, where: str) -> int:
    """A descriptor appending to the regular file ``folder/name`` (created if
    missing), opened read-write so its last byte can be checked."""
    return open_regular(folder, name, os.O_RDWR | os.O_APPEND | os.O_CREAT, where=where, single_link=True)


def unlink_at(folder: Handle, name: str) -> bool:
    """Remove the entry ``folder/name`` (never what a link points to); ``False`` if it was missing."""
    try:
        if FD_BASED:
            os.unlink(name, dir_fd=folder)  # type: ignore[arg-type]
        else:
            os.unlink(os.path.join(folder, name))  # type: ignore[arg-type]
    except FileNotFoundError:
        return False
    return True


def scan(folder: Handle) -> Iterator[tuple[str, os.stat_result]]:
    """``(name, lstat result)`` of each entry of ``folder``, links not followed."""
    with os.scandir(folder) as entries:  # a descriptor is borrowed, not closed
        for entry in entries:
            try:
                yield entry.name, entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue


def rmdir_at(folder: Handle, name: str) -> bool:
    """Remove the empty folder ``folder/name``; ``False`` if it is not empty or gone."""
    try:
        if FD_BASED:
            os.rmdir(name, dir_fd=folder)  # type: ignore[arg-type]
        else:
            os.rmdir(os.path.join(folder, name))  # type: ignore[arg-type]
    except OSError:
        return False
    return True


def remove_tree(parent: Path, name: str) -> None:
    """Delete the folder ``parent/name`` and everything in it, never following a
    link (a link named ``name`` is itself refused)."""
    path = parent / name
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(str(path), _kind(st.st_mode))
    if not getattr(shutil.rmtree, "avoids_symlink_attacks", False):  # pragma: no cover - Windows/old systems
        _remove_without_fds(path)
        return
    shutil.rmtree(path, ignore_errors=True)


def _remove_without_fds(path: Path) -> None:  # pragma: no cover - platforms without fd-based rmtree
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _remove_without_fds(Path(entry.path))
        else:
            os.unlink(entry.path)
    os.rmdir(path)
