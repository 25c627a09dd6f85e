"""Operating-system file locks, the same on every platform.

A run folder's lock (see :mod:`crystallize_artifacts.runlock`) needs three
things from the operating system:

- an exclusive lock that fails at once when someone else holds it;
- a shared lock, for workers checking that the run still holds its lock;
- release when the process dies, however it dies (the kernel drops it).

On POSIX systems that is ``flock(2)``, called directly through :mod:`fcntl`
(what :mod:`portalocker` itself does there; importing portalocker reads
package metadata, which costs tens of milliseconds in every new process).
Elsewhere (Windows: ``LockFileEx``, or ``msvcrt`` for exclusive locks)
:mod:`portalocker` provides them.

Where no lock can be taken at all — a file system that refuses locks (some
network mounts), a platform neither supports — the store refuses to run
with :class:`LocksUnavailableError` instead of writing without one: two runs
would silently share a folder.
"""

from __future__ import annotations

import errno
from types import ModuleType

from crystallize.plugin import CrystallizeError

__all__ = ["LocksUnavailableError", "try_exclusive", "try_shared", "unlock"]

_portalocker: ModuleType | None = None


def _library() -> ModuleType | None:
    """portalocker, imported on first use (its import reads package metadata: ~60 ms)."""
    global _portalocker
    if _portalocker is None:
        try:
            import portalocker
        except ImportError:  # pragma: no cover - a broken install: the dependency is required
            return None
        _portalocker = portalocker
    return _portalocker


#: errors a file system reports when it cannot lock at all (not "someone holds it").
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


class LocksUnavailableError(CrystallizeError, OSError):
    """No file lock can be taken here, so the store refuses to write without one."""


def _refuse(where: str, why: str) -> LocksUnavailableError:
    return LocksUnavailableError(
        f"{where}: cannot lock the run folder ({why}). The artifact store writes only under a lock, so that two "
        "runs never share a folder; put root_dir on a file system that supports file locks (a local disk, "
        "NFSv4), or use an object store (root_dir='s3://...')"
    )


try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not POSIX: portalocker
    _fcntl = None  # type: ignore[assignment]


def _take(fd: int, shared: bool, where: str) -> bool:
    if _fcntl is not None:
        return _flock(fd, shared, where)
    return _take_portable(fd, shared, where)


def _flock(fd: int, shared: bool, where: str) -> bool:
    """``flock(fd, LOCK_SH|LOCK_EX | LOCK_NB)``: ``False`` when someone holds it."""
    try:
        _fcntl.flock(fd, (_fcntl.LOCK_SH if shared else _fcntl.LOCK_EX) | _fcntl.LOCK_NB)
    except OSError as exc:
        return _held(exc, where)
    return True


def _held(exc: OSError, where: str) -> bool:
    """``False`` when ``exc`` says someone else holds the lock; raises for anything else
    (:class:`LocksUnavailableError` where the file system cannot lock at all)."""
    if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
        return False
    if exc.errno in _UNSUPPORTED:
        raise _refuse(where, f"the file system says: {exc.strerror}") from None
    raise exc


def _take_portable(fd: int, shared: bool, where: str) -> bool:
    """The same through portalocker, for platforms without ``flock``."""
    portalocker = _library()
    if portalocker is None:  # pragma: no cover
        raise _refuse(where, "the portalocker package is not installed (pip install portalocker)")
    _exceptions = portalocker.exceptions
    kind = portalocker.LockFlags.SHARED if shared else portalocker.LockFlags.EXCLUSIVE
    try:
        portalocker.lock(fd, kind | portalocker.LockFlags.NON_BLOCKING)
    except _exceptions.AlreadyLocked:
        return False
    except _exceptions.LockException as exc:
        cause = exc.__cause__ or exc.__context__
        code = getattr(cause, "errno", None)
        if code in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        if code in _UNSUPPORTED:
            raise _refuse(where, f"the file system says: {getattr(cause, 'strerror', cause)}") from None
        raise _refuse(where, str(cause or exc)) from None
    except ImportError as exc:  # pragma: no cover - Windows shared locks need pywin32
        if shared:  # an exclusive probe instead: correct, except when two probes meet in the same instant
            return _take_portable(fd, False, where)
        raise _refuse(where, str(exc)) from None
    except OSError as exc:
        return _held(exc, where)
    return True


def try_exclusive(fd: int, where: str) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; ``False`` if another holds one."""
    return _take(fd, False, where)


def try_shared(fd: int, where: str) -> bool:
    """Take a shared lock on ``fd`` without waiting; ``False`` while another holds it exclusively."""
    return _take(fd, True, where)


def unlock(fd: int) -> None:
    """Release this descriptor's lock (closing it releases it too)."""
    if _fcntl is not None:
        _fcntl.flock(fd, _fcntl.LOCK_UN)
        return
    portalocker = _library()
    if portalocker is not None:
        portalocker.unlock(fd)
