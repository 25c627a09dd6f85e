"""Claiming a run version: ``v<N>`` taken atomically, so concurrent runs get distinct ones.

The rule is the same everywhere: start from the latest version plus one and
*claim* it with an operation that fails when it exists, moving on to the next
number when it does — never "list, take the max, add one" and hope.

On a file system (this module), the claim is a rename: a freshly created
staging folder, already locked, is renamed to ``v<N>``; the rename fails if
``v<N>`` exists, so the folder appears complete and locked, or not at all.
``versioned=False`` replaces ``v0``: the old one is locked, moved aside and
deleted, never mixed with the new. Staging and trash folders left by dead
processes are removed once stale. (Object stores claim with a conditional
create instead: :mod:`crystallize_artifacts.objects`.)
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path

from crystallize_artifacts import layout, runlock, safepaths
from crystallize_artifacts.runlock import RunLockedError, lock_held
from crystallize_artifacts.safepaths import Handle, UnsafePathError

__all__ = ["claim_next", "allocate", "replace_v0", "clean_leftovers", "STALE_AFTER_SECONDS"]


def claim_next(latest: int | None, claim: Callable[[int], bool]) -> int:
    """The first version from ``latest + 1`` on that ``claim(version)`` takes (it returns
    ``False`` when the version exists, and raises for anything else)."""
    version = 0 if latest is None else latest + 1
    while not claim(version):
        version += 1
    return version


#: how old a staging or trash folder must be before another process may
#: remove it; a younger one may belong to a process between creating its lock
#: file and locking it.
STALE_AFTER_SECONDS = 60.0


def _is_stale(folder: Path) -> bool:
    """A staging or trash folder whose owner is gone: old enough and unlocked."""
    try:
        if time.time() - os.lstat(folder).st_mtime < STALE_AFTER_SECONDS:
            return False
    except OSError:
        return False
    return not lock_held(folder)


def _stage(experiment_dir: Path, token: bytes) -> tuple[Path, int | None, Handle]:
    staging = experiment_dir / f".staging-{secrets.token_hex(8)}"
    staging.mkdir()
    fd, handle = runlock.acquire(staging, token)
    return staging, fd, handle


def _discard_staging(staging: Path, fd: int | None, handle: Handle) -> None:
    runlock.release(fd)
    safepaths.close(handle)
    try:
        safepaths.remove_tree(staging.parent, staging.name)
    except OSError:
        pass


def allocate(experiment_dir: Path, token: bytes) -> tuple[int, int | None, Handle]:
    """Atomically claim the next free ``v<N>``; the folder appears already locked."""
    staging, fd, handle = _stage(experiment_dir, token)

    def claim(version: int) -> bool:
        try:
            os.rename(staging, layout.version_dir(experiment_dir, version))
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                return False
            _discard_staging(staging, fd, handle)
            raise
        return True

    return claim_next(layout.latest_version(experiment_dir), claim), fd, handle


def replace_v0(experiment_dir: Path, token: bytes) -> tuple[int | None, Handle]:
    """Start ``v0`` afresh (``versioned=False``): move the old one aside, then delete it.

    The old ``v0`` is locked first — and the lock proven to be the live one
    of the folder now at ``v0`` — so a run never moves away another run's
    live folder.
    """
    v0 = layout.version_dir(experiment_dir, 0)
    staging, fd, handle = _stage(experiment_dir, token)
    old_fd = old_handle = None
    trash = None
    try:
        try:
            found = os.lstat(v0)
        except FileNotFoundError:
            found = None
        if found is not None:
            if not stat.S_ISDIR(found.st_mode):
                raise UnsafePathError(
                    f"{v0} is {'a symbolic link' if stat.S_ISLNK(found.st_mode) else 'not a folder'}; the artifact "
                    "store never follows or replaces what it did not create. Remove it and run again"
                )
            old_fd, old_handle = runlock.acquire(v0, token)
            trash = experiment_dir / f".trash-{secrets.token_hex(8)}"
            os.rename(v0, trash)
        try:
            os.rename(staging, v0)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise RunLockedError(f"another run created {v0} at the same time; retry") from None
            raise
    except BaseException:
        _discard_staging(staging, fd, handle)
        raise
    finally:
        runlock.release(old_fd)
        safepaths.close(old_handle)
        if trash is not None:  # also when another run put its own v0 in place first: the old one is gone either way
            _remove_trash(experiment_dir, trash.name)
    return fd, handle


def _remove_trash(experiment_dir: Path, name: str, attempts: int = 5) -> None:
    """Delete the old ``v0`` moved aside. Another run trying to lock it at the same moment
    may still hold it open and create its ``.lock`` again (it then sees the folder moved and
    leaves): try again briefly. What remains is removed as a stale leftover later."""
    for attempt in range(attempts):
        try:
            safepaths.remove_tree(experiment_dir, name)  # ignores what it cannot delete
            os.lstat(experiment_dir / name)
        except FileNotFoundError:
            return
        except OSError:
            pass
        if attempt < attempts - 1:
            time.sleep(0.01 * (attempt + 1))


def clean_leftovers(experiment_dir: Path) -> None:
    """Remove staging and trash folders left by processes that died."""
    try:
        entries = list(safepaths.scan(str(experiment_dir)))
    except FileNotFoundError:
        return
    for name, st in entries:
        if name.startswith((".staging-", ".trash-")) and stat.S_ISDIR(st.st_mode) and _is_stale(experiment_dir / name):
            try:
                safepaths.remove_tree(experiment_dir, name)
            except OSError:
                pass
