"""Runs in a local (or shared) file system: :class:`LocalExperimentFolder` and :class:`LocalRunFolder`.

Every file below a run folder is reached through
:mod:`crystallize_artifacts.safepaths` (no link is ever followed, no special
file opened), committed with :mod:`crystallize_artifacts.commit` (a temporary
name, then an atomic rename), and the run folder is held with the lock of
:mod:`crystallize_artifacts.runlock` while a run writes it. New versions are
claimed as :mod:`crystallize_artifacts.versions` says.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from crystallize_artifacts import crashes, layout, runlock, safepaths, versions
from crystallize_artifacts.backends import FILE, FOLDER, LINK, OTHER
from crystallize_artifacts.commit import AtomicSink, fsync_dir, move_into, write_all, write_atomic_at
from crystallize_artifacts.safepaths import Handle, UnsafePathError

__all__ = ["LocalExperimentFolder", "LocalRunFolder"]

#: deeper than ``replicate_<r>/<condition>/<step>/<name>``: not written by the store.
_MAX_DEPTH = 4


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return FOLDER
    if stat.S_ISLNK(mode):
        return LINK
    return OTHER


class _Borrowed:
    """The run folder's handle for one operation: the folder's own, or one opened for it."""

    __slots__ = ("handle", "owned")

    def __init__(self, folder: LocalRunFolder) -> None:
        self.handle = folder._handle
        self.owned = self.handle is None
        if self.owned:
            self.handle = safepaths.open_folder(folder.location)

    def __enter__(self) -> Handle:
        return self.handle  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            safepaths.close(self.handle)


class LocalRunFolder:
    """One run folder on a file system (see :class:`~crystallize_artifacts.backends.RunFolder`)."""

    renames = True

    def __init__(
        self,
        experiment_dir: Path,
        version: int,
        *,
        durable: bool = False,
        readonly: bool = False,
        lock_fd: int | None = None,
        handle: Handle | None = None,
        token: bytes | None = None,
    ) -> None:
        self.experiment_dir = experiment_dir
        self.version = version
        self.dir = layout.version_dir(experiment_dir, version)
        self.location = str(self.dir)
        self.durable = durable
        self.readonly = readonly
        self._lock_fd = lock_fd
        self._handle = handle  # held open by the folder that owns the lock
        self._token = token
        self._remote = False  # a copy in another process (set when unpickled)
        self._dirs: set[str] = set()  # folders below the run folder known to exist
        self._lock_probe: int | None = None  # a worker copy's descriptor of the run's lock file
        self._journals: dict[str, int] = {}
        #: who last held the run, when opening it found that process dead (see :mod:`.crashes`)
        self.crashed: str | None = None

    # -- ownership ----------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self._handle is not None

    def attach(self) -> None:
        if self._handle is None:  # a copy in a worker process: open the folder (and its lock) once
            self._handle = safepaths.open_folder(self.location)
            if self._remote and self._token is not None:
                self._lock_probe = runlock.open_probe(self._handle, self.location)

    def check_owner(self) -> None:
        if self._lock_probe is not None:
            runlock.check_held(self._lock_probe, self._token, self.location)  # type: ignore[arg-type]

    def release(self) -> None:
        self.close_journals()
        runlock.release(self._lock_fd)
        self._lock_fd = None
        if self._handle is not None and not self.readonly:
            safepaths.close(self._handle)
            self._handle = None

    # -- whole files ------------------------------------------------------------------------------

    def _folder_of(self, handle: Handle, segments: tuple[str, ...], create: bool) -> Handle:
        return safepaths.open_dirs(handle, segments, where=self.location, create=create)

    def read(self, path: str, *, limit: int | None = None) -> bytes | None:
        segments = safepaths.split_relpath(path, self.location)
        with _Borrowed(self) as handle:
            try:
                folder = self._folder_of(handle, segments[:-1], False)
            except (FileNotFoundError, NotADirectoryError):
                return None
            try:
                return safepaths.read_regular(folder, segments[-1], where=f"{self.location}/{path}", limit=limit)
            finally:
                if folder != handle:
                    safepaths.close(folder)

    def write(self, path: str, data: bytes) -> None:
        segments = safepaths.split_relpath(path, self.location)
        with _Borrowed(self) as handle:
            folder = self._folder_of(handle, segments[:-1], True)
            try:
                write_atomic_at(folder, segments[-1], data, durable=self.durable)
            finally:
                if folder != handle:
                    safepaths.close(folder)

    def write_artifact(self, folders: tuple[str, str, str], name: str, data: bytes | memoryview) -> None:
        folder = safepaths.open_dirs(self._handle, folders, where=self.location, create=True, known=self._dirs)  # type: ignore[arg-type]
        try:
            write_atomic_at(folder, name, data, durable=self.durable)
        finally:
            safepaths.close(folder)

    def open_artifact(self, folders: tuple[str, str, str], name: str) -> AtomicSink:
        folder = safepaths.open_dirs(self._handle, folders, where=self.location, create=True, known=self._dirs)  # type: ignore[arg-type]
        try:
            return AtomicSink(folder, name, durable=self.durable, owns_folder=True)
        except BaseException:
            safepaths.close(folder)
            raise

    def move_artifact(self, folders: tuple[str, str, str], name: str, source: str) -> bool:
        folder = safepaths.open_dirs(self._handle, folders, where=self.location, create=True, known=self._dirs)  # type: ignore[arg-type]
        try:
            return move_into(source, folder, name, durable=self.durable)
        finally:
            safepaths.close(folder)

    def open_read(self, path: str) -> BinaryIO:
        segments = safepaths.split_relpath(path, self.location)
        with _Borrowed(self) as handle:
            folder = self._folder_of(handle, segments[:-1], False)
            try:
                fd = safepaths.open_regular(folder, segments[-1], os.O_RDONLY, where=f"{self.location}/{path}")
            finally:
                if folder != handle:
                    safepaths.close(folder)
        return os.fdopen(fd, "rb")

    def delete(self, path: str) -> bool:
        segments = safepaths.split_relpath(path, self.location)
        with _Borrowed(self) as handle:
            try:
                folder = self._folder_of(handle, segments[:-1], False)
            except (FileNotFoundError, NotADirectoryError):
                return False
            try:
                removed = safepaths.unlink_at(folder, segments[-1])
                if removed and self.durable and safepaths.FD_BASED:
                    os.fsync(folder)  # type: ignore[arg-type]
                return removed
            finally:
                if folder != handle:
                    safepaths.close(folder)

    # -- what is there --------------------------------------------------------------------------

    def size(self, path: str) -> int | None:
        return self.sizes((path,))[path]

    def sizes(self, paths: Iterable[str]) -> dict[str, int | None]:
        found: dict[str, int | None] = {}
        with _Borrowed(self) as handle:
            for path in paths:
                segments = path.split("/")
                try:
                    folder = self._folder_of(handle, segments[:-1], False)
                except (OSError, ValueError):
                    found[path] = None
                    continue
                try:
                    st = safepaths.lstat_at(folder, segments[-1])
                finally:
                    if folder != handle:
                        safepaths.close(folder)
                found[path] = st.st_size if st is not None and stat.S_ISREG(st.st_mode) else None
        return found

    def entries(self, path: str = "") -> list[tuple[str, str]]:
        with _Borrowed(self) as handle:
            try:
                folder = self._folder_of(handle, tuple(path.split("/")) if path else (), False)
            except (FileNotFoundError, NotADirectoryError):
                return []
            try:
                return [(name, _kind(st.st_mode)) for name, st in safepaths.scan(folder)]
            finally:
                if folder != handle:
                    safepaths.close(folder)

    def artifact_files(self) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []

        def walk(folder: Handle, segments: tuple[str, ...]) -> None:
            for name, st in safepaths.scan(folder):
                if stat.S_ISREG(st.st_mode):
                    found.append(("/".join((*segments, name)), st.st_size))
                elif stat.S_ISDIR(st.st_mode) and len(segments) < _MAX_DEPTH - 1:
                    child = safepaths.open_dirs(folder, (name,), where=self.location)
                    try:
                        walk(child, (*segments, name))
                    finally:
                        safepaths.close(child)

        with _Borrowed(self) as handle:
            for name, st in safepaths.scan(handle):
                if name.startswith("replicate_") and stat.S_ISDIR(st.st_mode):
                    folder = safepaths.open_dirs(handle, (name,), where=self.location)
                    try:
                        walk(folder, (name,))
                    finally:
                        safepaths.close(folder)
        return found

    def signature(self, paths: tuple[str, ...]) -> list[object] | None:
        """``lstat`` identity (inode, size, mtime) of each file. A link in place of a folder
        could only match by pointing at the very files a signature describes."""
        out: list[object] = []
        with _Borrowed(self) as handle:
            for path in paths:
                found = safepaths.lstat_at(handle, path)
                if found is None or not stat.S_ISREG(found.st_mode):
                    return None
                out += [found.st_ino, found.st_size, found.st_mtime_ns]
        return out

    def prune_folders(self, paths: Iterable[str]) -> None:
        with _Borrowed(self) as handle:
            for path in sorted(paths, key=lambda p: p.count("/"), reverse=True):  # deepest first
                segments = path.split("/")
                try:
                    parent = self._folder_of(handle, tuple(segments[:-1]), False)
                except (OSError, ValueError):
                    continue
                try:
                    safepaths.rmdir_at(parent, segments[-1])
                finally:
                    if parent != handle:
                        safepaths.close(parent)

    # -- the journal ----------------------------------------------------------------------------

    def append_journal(self, condition: str, line: bytes) -> None:
        fd = self._journals.get(condition)
        if fd is None:
            where = f"{self.location}/{condition}/{layout.JOURNAL}"
            folder = safepaths.open_dirs(self._handle, (condition,), where=self.location, create=True)  # type: ignore[arg-type]
            try:
                fd = safepaths.open_append(folder, layout.JOURNAL, where=where)
            finally:
                safepaths.close(folder)
            self._journals[condition] = fd
            size = os.fstat(fd).st_size
            if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # end a line torn by a crash: it stays unparseable, ours does not
        write_all(fd, line + b"\n")
        if self.durable:
            os.fsync(fd)

    def read_journal(self, condition: str) -> bytes | None:
        return self.read(f"{condition}/{layout.JOURNAL}")

    def replace_journal(self, condition: str, data: bytes) -> bool:
        fd = self._journals.pop(condition, None)
        if fd is not None:
            os.close(fd)
        with _Borrowed(self) as handle:
            try:
                folder = self._folder_of(handle, (condition,), bool(data))
            except FileNotFoundError:
                return False
            try:
                if not data and safepaths.lstat_at(folder, layout.JOURNAL) is None:
                    return False
                write_atomic_at(folder, layout.JOURNAL, data)
                return True
            finally:
                safepaths.close(folder)

    def close_journals(self) -> None:
        for fd in self._journals.values():
            os.close(fd)
        self._journals.clear()

    # -- pickling -------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_lock_fd=None, _handle=None, _lock_probe=None, _dirs=set(), _journals={})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._remote = True  # checks before each commit that its run still holds the lock

    def __del__(self, _close: Any = os.close) -> None:
        # A worker's copy opened the run folder itself; workers drop copies of finished runs.
        # ``os.close`` is bound at definition time: at interpreter exit ``os`` may already be gone.
        if getattr(self, "_remote", False):
            for fd in (self._handle, self._lock_probe):
                if isinstance(fd, int):
                    try:
                        _close(fd)
                    except OSError:
                        pass

    def __repr__(self) -> str:
        return f"<LocalRunFolder {self.location}>"


class LocalExperimentFolder:
    """Every run of one experiment in a folder (see :class:`~crystallize_artifacts.backends.ExperimentFolder`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)

    def versions(self) -> list[int]:
        return layout.versions(self.path)

    def run_location(self, version: int) -> str:
        return str(layout.version_dir(self.path, version))

    def open_run(self, *, versioned: bool, resume: bool, durable: bool, token: bytes) -> tuple[LocalRunFolder, bool]:
        experiment_dir = self.path
        experiment_dir.mkdir(parents=True, exist_ok=True)
        if not layout.is_real_dir(experiment_dir):
            raise UnsafePathError(
                f"{experiment_dir} is a symbolic link; the artifact store never follows links below root_dir. "
                "Point root_dir at the real folder instead"
            )
        versions.clean_leftovers(experiment_dir)
        if resume:
            latest = (
                layout.latest_version(experiment_dir)
                if versioned
                else (0 if layout.is_real_dir(layout.version_dir(experiment_dir, 0)) else None)
            )
            if latest is not None:
                where = layout.version_dir(experiment_dir, latest)
                previous: list[bytes] = []
                fd, handle = runlock.acquire(where, token, previous)
                folder = LocalRunFolder(experiment_dir, latest, durable=durable, lock_fd=fd, handle=handle, token=token)
                if previous and previous[0].strip():  # its last holder died without releasing it
                    try:
                        folder.crashed = crashes.record_crash(handle, str(where), previous[0], durable=durable)
                    except BaseException:
                        folder.release()
                        raise
                return folder, True
        if versioned:
            version, fd, handle = versions.allocate(experiment_dir, token)
        else:
            version, (fd, handle) = 0, versions.replace_v0(experiment_dir, token)
        if durable:
            fsync_dir(experiment_dir)
        return LocalRunFolder(experiment_dir, version, durable=durable, lock_fd=fd, handle=handle, token=token), False

    def existing(self, version: int | None = None, *, maintenance: bool = False) -> LocalRunFolder | None:
        if version is None:
            version = layout.latest_version(self.path)
            if version is None:
                return None
        where = layout.version_dir(self.path, version)
        if not layout.is_real_dir(where):
            return None
        folder = LocalRunFolder(self.path, version, readonly=not maintenance)
        folder.crashed = crashes.settle(where)
        return folder

    def lock_held(self, version: int) -> bool:
        return runlock.lock_held(layout.version_dir(self.path, version))

    def exists(self, location: str) -> bool:
        return Path(location).is_dir()

    def __repr__(self) -> str:
        return f"<LocalExperimentFolder {self.location}>"
