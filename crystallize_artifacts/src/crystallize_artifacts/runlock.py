"""The lock of a run folder: who may write it, proven live, checked by workers.

A run folder's ``.lock`` is held with an exclusive file lock
(:mod:`crystallize_artifacts.locking`: ``flock`` on POSIX, ``LockFileEx`` on
Windows) while a run writes it; the kernel releases it when the process dies,
however it dies. Three rules make
the lock mean what it says:

- **Never through a link.** The folder and its ``.lock`` are opened with
  ``O_NOFOLLOW``; a link, FIFO or multiply-linked file planted as ``.lock``
  is refused, never truncated or written through.
- **Proven live.** A file lock locks a file, not a path. A process waiting for
  the lock of ``v0`` may get it on a ``.lock`` that another run has meanwhile
  moved to the trash with its folder, while ``v0`` is now that run's live
  folder. So after the lock is taken, :func:`acquire` proves that the
  locked file is still the ``.lock`` of the folder now at the path it uses
  (comparing ``fstat`` of the descriptors with ``lstat`` of the paths), and
  starts over when it is not.
- **A token, checked by workers.** The holder writes a token (process id,
  host, run id) into the lock file and truncates it when it releases the
  lock. A store sent to a worker process carries the token; before each
  commit, :func:`check_held` makes sure the run's lock is still held and
  still holds that token, so a worker that outlived its parent (or whose run
  was meanwhile taken over by a resume) cannot change the folder.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from crystallize.plugin import CrystallizeError
from crystallize_artifacts import layout, locking, safepaths

__all__ = [
    "RunLockedError",
    "RunEndedError",
    "make_token",
    "holder",
    "acquire",
    "release",
    "lock_held",
    "open_probe",
    "check_held",
]

_LOCK_FLAGS = os.O_RDWR | os.O_CREAT
_PROBE_FLAGS = os.O_RDONLY
#: attempts at locking (a probe holds a lock for an instant) and at proving it live.
_FLOCK_ATTEMPTS = 5
_LIVE_ATTEMPTS = 20


class RunLockedError(CrystallizeError, RuntimeError):
    """Another live process is writing the run folder this run needs."""


class RunEndedError(CrystallizeError, RuntimeError):
    """A write arrived for a run that has ended, or whose folder is now another run's."""


_HELD_LOCKS: set[int] = set()


def _read_start(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of ``fd`` (``pread`` where it exists; Windows has none)."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, 0)
    os.lseek(fd, 0, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, size)  # pragma: no cover


def _write_start(fd: int, data: bytes) -> None:
    if hasattr(os, "pwrite"):
        os.pwrite(fd, data, 0)
        return
    os.lseek(fd, 0, os.SEEK_SET)  # pragma: no cover - Windows
    os.write(fd, data)  # pragma: no cover


def _close_inherited_locks() -> None:
    """In a child forked during a run: drop our copies of the run locks.

    A ``flock`` belongs to the open file description, which a forked child
    shares; a child outliving the run (a pool a step started) would otherwise
    keep the run folder locked after the run released it.
    """
    for fd in list(_HELD_LOCKS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def make_token(run_id: str) -> bytes:
    """The lock file's content while ``run_id`` holds it: one JSON line."""
    doc = {"pid": os.getpid(), "host": socket.gethostname(), "run": run_id}
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


def holder(raw: bytes) -> str:
    """Who a lock file's content names: ``process 12 on host (run abc)``."""
    return _holder(raw)


def _holder(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
        return f"process {doc['pid']} on {doc['host']} (run {doc['run']})"
    except (ValueError, KeyError, TypeError):
        text = raw.decode(errors="replace").strip()[:80]
        return f"process {text}" if text else "an unknown process"


def _open_lock(folder: safepaths.Handle, where: str, flags: int) -> int:
    return safepaths.open_regular(folder, layout.LOCK, flags, where=f"{where}/{layout.LOCK}", single_link=True)


def _same(a: os.stat_result, b: os.stat_result | None) -> bool:
    return b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def acquire(folder: Path, token: bytes, previous: list[bytes] | None = None) -> tuple[int | None, safepaths.Handle]:
    """Take ``folder``'s lock, prove it live, write ``token``.

    :param previous: when given, receives what the lock file held before
        ``token`` replaced it. A holder truncates it when it releases the lock,
        so anything left means the last holder died while holding it.
    :returns: the lock's descriptor (``None`` where ``flock`` does not exist)
        and a handle of the folder that was locked (the caller closes both:
        :func:`release`, :func:`~crystallize_artifacts.safepaths.close`).
    :raises RunLockedError: another live process holds it.
    :raises ~crystallize_artifacts.locking.LocksUnavailableError: no lock can be taken there.
    """
    where = str(folder)
    for _ in range(_LIVE_ATTEMPTS):
        try:
            handle = safepaths.open_folder(folder)
        except FileNotFoundError:
            raise RunLockedError(
                f"{where} was moved away by another run while this one tried to lock it; retry"
            ) from None
        try:
            try:
                fd = _open_lock(handle, where, _LOCK_FLAGS)
            except FileNotFoundError:  # the folder was deleted after we opened it
                fd = None
            if fd is not None:
                try:
                    _flock(fd, where)
                    live = _is_live(folder, handle, fd)
                    if live:
                        if previous is not None:
                            previous.append(os.pread(fd, 256, 0))
                        os.ftruncate(fd, 0)
                        _write_start(fd, token)
                        _HELD_LOCKS.add(fd)
                except BaseException:
                    os.close(fd)
                    raise
        except BaseException:
            safepaths.close(handle)
            raise
        if fd is not None and live:
            return fd, handle
        if fd is not None:
            os.close(fd)  # the folder moved, or its lock file was replaced: look again
        safepaths.close(handle)
    raise RunLockedError(f"{where} kept being replaced by other runs while this one tried to lock it; retry")


def _flock(fd: int, where: str) -> None:
    for attempt in range(_FLOCK_ATTEMPTS):
        if locking.try_exclusive(fd, where):
            return
        if attempt == _FLOCK_ATTEMPTS - 1:
            holder = _holder(_read_start(fd, 256))
            raise RunLockedError(
                f"{where} is being written by another run ({holder}); wait for it to "
                "finish, or use ArtifactPlugin(versioned=True) so each run gets its own version"
            )
        time.sleep(0.02)


def _is_live(folder: Path, handle: safepaths.Handle, fd: int) -> bool:
    """Is the locked file still the ``.lock`` of the folder now at ``folder``?"""
    try:
        at_path = os.lstat(folder)
    except FileNotFoundError:
        return False
    if not safepaths.FD_BASED:  # pragma: no cover
        return _same(os.fstat(fd), safepaths.lstat_at(handle, layout.LOCK))
    return _same(os.fstat(handle), at_path) and _same(os.fstat(fd), safepaths.lstat_at(handle, layout.LOCK))  # type: ignore[arg-type]


def release(fd: int | None) -> None:
    """Withdraw the token and release the lock."""
    if fd is None:
        return
    _HELD_LOCKS.discard(fd)
    try:
        os.ftruncate(fd, 0)
    except OSError:
        pass
    os.close(fd)  # closing the descriptor releases the lock


def lock_held(folder: Path) -> bool:
    """Whether a live process holds ``folder``'s ``.lock`` (links are never followed)."""
    try:
        handle = safepaths.open_folder(folder)
    except (OSError, ValueError):
        return False
    try:
        fd = _open_lock(handle, str(folder), _PROBE_FLAGS)
    except (OSError, ValueError):
        return False
    finally:
        safepaths.close(handle)
    try:
        return not locking.try_exclusive(fd, str(folder))
    except locking.LocksUnavailableError:
        return False
    finally:
        os.close(fd)


def open_probe(folder: safepaths.Handle, where: str) -> int:
    """A descriptor of the lock file of ``folder`` (a run folder handle) for
    :func:`check_held`.

    It refers to the lock of the very folder the handle refers to, so the two
    stay consistent even if another run later takes the path.
    """
    try:
        return _open_lock(folder, where, _PROBE_FLAGS)
    except FileNotFoundError:
        raise RunEndedError(f"{where} has no lock file any more; the run this write belongs to has ended") from None


def check_held(probe: int, token: bytes, where: str) -> None:
    """Raise :class:`RunEndedError` unless the run holding ``token`` still holds
    the lock ``probe`` (from :func:`open_probe`) refers to.

    Probes with a shared lock, so workers checking at once do not see each
    other as the holder: it fails only while some process holds the lock
    exclusively — and then the token says whether that is still our run.
    """
    if not locking.try_shared(probe, where):
        if _read_start(probe, len(token) + 1) == token:
            return
        raise RunEndedError(
            f"{where} is now written by another run ({_holder(_read_start(probe, 256))}); this write belongs "
            "to a run that has ended, so it is refused"
        ) from None
    locking.unlock(probe)
    raise RunEndedError(
        f"the run writing {where} has ended (its process exited or was killed); a write from one of its "
        "workers is refused, so it cannot change the folder after it was resumed or verified"
    )
