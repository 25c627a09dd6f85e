"""Runs in an object store, through fsspec: :class:`ObjectExperimentFolder` and :class:`ObjectRunFolder`.

``ArtifactPlugin(root_dir="s3://bucket/prefix")`` (or ``gs://``, ``az://``,
``memory://``, any fsspec URL but ``file://``, which is a local folder) keeps
the same layout as a local root. Object stores have no rename and no append,
so the commit protocol is built from what they do have:

- **Whole-object writes.** A ``PUT`` is atomic: readers see the old object or
  the new one. Every document and every artifact written with
  ``artifact.write`` is one ``PUT``; a streamed artifact (``artifact.open``)
  is a multipart upload that becomes visible only when completed, and is
  aborted when the step fails (stores without such uploads get the bytes
  spooled to a local temporary file and uploaded whole).
- **Markers last.** The order of commits is the local store's: artifacts,
  then the journal, then ``results.json``, then the completion marker, then
  the manifest. S3 has been strongly consistent since 2020, so an object
  written before the marker is readable by whoever reads the marker.
- **The journal as objects.** Each journal write is a new object
  ``<condition>/replicates.jsonl.d/g<generation>-<sequence>``; reading lists
  them and joins the latest generation's in order. Rewriting the journal
  (on resume) writes a new generation, then deletes the old ones.
- **Versions claimed with conditional writes.** ``v<N>`` is claimed by
  creating its lease ``v<N>/.lock`` with ``If-None-Match: *``; ownership is
  a lease renewed in the background (:mod:`crystallize_artifacts.leases`).

What is guaranteed where: on S3 (and S3-compatible servers implementing
conditional writes) claims and takeovers are atomic. On ``memory://`` they
are atomic within the process that holds the memory. On other stores fsspec
offers no portable conditional write: the store creates only if absent as
far as fsspec can tell and reads the lease back, which narrows a race
between two runs starting at the same instant but cannot close it — give
concurrent runs distinct versions there by starting them apart, or use S3.

Credentials come from fsspec's usual configuration (for S3: the AWS
environment variables, ``~/.aws``, instance roles, ``AWS_ENDPOINT_URL``);
``storage_options`` passed to ``ArtifactPlugin`` go to the filesystem and are
never shown in a repr or a message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any, BinaryIO

from crystallize_artifacts import layout, leases, versions
from crystallize_artifacts.backends import FILE, FOLDER, is_object_url
from crystallize_artifacts.runlock import RunEndedError, RunLockedError

__all__ = ["ObjectExperimentFolder", "ObjectRunFolder", "open_filesystem", "is_object_url"]

#: fsspec protocols whose files can be written with ``autocommit=False`` (a multipart or
#: resumable upload that appears only on ``commit``); others are spooled to a local file.
_TRANSACTIONAL = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
#: protocols whose writes take ``If-None-Match``/``If-Match`` and whose server enforces them.
_CONDITIONAL = {"s3", "s3a"}
#: part size of streamed uploads (S3 needs at least 5 MiB per part).
PART_SIZE = 16 << 20
_SEGMENT = re.compile(r"^g(\d{6})-(\d{8})$")
_JOURNAL_DIR = f"{layout.JOURNAL}.d"


def open_filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str, str]:
    """``(filesystem, path inside it, protocol)`` of an fsspec URL, with a clear error for missing extras."""
    try:
        import fsspec
    except ImportError:
        raise ImportError(
            f"root_dir={url!r} needs fsspec: pip install 'crystallize-artifacts[fsspec]' "
            "(or [s3] for Amazon S3 and S3-compatible stores)"
        ) from None
    protocol = url.split("://", 1)[0].lower()
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        extra = "s3" if protocol in ("s3", "s3a") else "fsspec"
        raise ImportError(
            f"root_dir={url!r}: fsspec cannot open {protocol}:// ({exc}); install the store's package, e.g. "
            f"pip install 'crystallize-artifacts[{extra}]'"
        ) from None
    return fs, path.rstrip("/"), protocol


def _protocol_of(fs: Any) -> str:
    proto = fs.protocol
    return (proto[0] if isinstance(proto, (tuple, list)) else proto).lower()


class _UploadSink:
    """A transactional fsspec file: a multipart upload, completed on :meth:`commit`."""

    def __init__(self, fs: Any, key: str) -> None:
        self._file = fs.open(key, "wb", autocommit=False, block_size=PART_SIZE)

    def write(self, data: Any) -> int:
        return self._file.write(data)  # type: ignore[no-any-return]

    def commit(self) -> None:
        self._file.close()
        self._file.commit()

    def discard(self) -> None:
        try:
            self._file.discard()
        finally:
            self._file.closed = True


class _SpoolSink:
    """Bytes spooled to a local temporary file, uploaded whole on :meth:`commit`."""

    def __init__(self, fs: Any, key: str) -> None:
        self._fs = fs
        self._key = key
        fd, self._path = tempfile.mkstemp(prefix="crystallize-upload-")
        self._file = os.fdopen(fd, "wb")

    def write(self, data: Any) -> int:
        return self._file.write(data)

    def commit(self) -> None:
        self._file.close()
        try:
            self._fs.put_file(self._path, self._key)
        finally:
            os.unlink(self._path)

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self._path)


class ObjectRunFolder:
    """One run's folder in an object store (see :class:`~crystallize_artifacts.backends.RunFolder`)."""

    renames = False
    crashed: str | None = None  # an expired lease is taken over, not recorded as a crash

    def __init__(
        self,
        experiment: ObjectExperimentFolder,
        version: int,
        *,
        durable: bool = False,
        readonly: bool = False,
        token: bytes | None = None,
        etag: str | None = None,
    ) -> None:
        self.experiment = experiment
        self.fs = experiment.fs
        self.version = version
        self.base = f"{experiment.path}/v{version}"
        self.location = experiment.run_location(version)
        self.durable = durable  # every completed PUT is durable on an object store
        self.readonly = readonly
        self._token = token
        self._etag = etag  # of the lease this process last wrote (owners only)
        self._remote = False
        self._lost: str | None = None  # why the run lost its lease
        self._checked = 0.0
        self._seq: dict[str, tuple[int, int]] = {}  # journal: condition -> (generation, next sequence)
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        if token is not None and not readonly:
            self._renewer = threading.Thread(target=self._renew, name=f"crystallize-lease-v{version}", daemon=True)
            self._renewer.start()

    def key(self, path: str) -> str:
        return f"{self.base}/{path}"

    # -- ownership ----------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return not self.readonly and not self._remote

    def attach(self) -> None:
        return None

    def check_owner(self) -> None:
        if self._lost is not None:
            raise RunEndedError(self._lost)
        if not self._remote or self._token is None:
            return
        now = time.monotonic()
        if now - self._checked < leases.CHECK_SECONDS:
            return
        doc = leases.parse(self.experiment.read_raw(self.key(layout.LOCK)))
        if leases.same_run(doc, self._token) and leases.live_owner(doc) is not None:
            self._checked = now
            return
        holder = leases.live_owner(doc)
        if holder is not None:
            raise RunEndedError(
                f"{self.location} is now written by another run ({holder}); this write belongs to a run that "
                "has ended, so it is refused"
            )
        raise RunEndedError(
            f"the run writing {self.location} has ended (its lease was released or expired); a write from "
            "one of its workers is refused, so it cannot change the run after it was resumed or verified"
        )

    def _renew(self) -> None:
        while not self._stop.wait(leases.RENEW_SECONDS):
            try:
                self._etag = self.experiment.replace_lease(self.version, self._token, self._etag)  # type: ignore[arg-type]
            except RunLockedError as exc:
                self._lost = f"{self.location}: this run lost its lease ({exc}); its later writes are refused"
                return
            except OSError:
                continue  # a network hiccup: try again at the next renewal

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
            if self._lost is None:
                with contextlib.suppress(OSError, RunLockedError):
                    self.experiment.replace_lease(self.version, self._token, self._etag, state="released")  # type: ignore[arg-type]

    # -- whole objects ----------------------------------------------------------------------------

    def read(self, path: str, *, limit: int | None = None) -> bytes | None:
        raw = self.experiment.read_raw(self.key(path))
        if raw is not None and limit is not None and len(raw) > limit:
            raise ValueError(f"{self.location}/{path} is {len(raw)} bytes, more than the {limit} such a file may hold")
        return raw

    def write(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(self.key(path), bytes(data))

    def write_artifact(self, folders: tuple[str, str, str], name: str, data: bytes | memoryview) -> None:
        self.fs.pipe_file(f"{self.base}/{folders[0]}/{folders[1]}/{folders[2]}/{name}", bytes(data))

    def open_artifact(self, folders: tuple[str, str, str], name: str) -> _UploadSink | _SpoolSink:
        key = f"{self.base}/{folders[0]}/{folders[1]}/{folders[2]}/{name}"
        if self.experiment.protocol in _TRANSACTIONAL:
            return _UploadSink(self.fs, key)
        return _SpoolSink(self.fs, key)

    def move_artifact(self, folders: tuple[str, str, str], name: str, source: str) -> bool:
        return False  # nothing to rename into: the store copies

    def open_read(self, path: str) -> BinaryIO:
        return self.fs.open(self.key(path), "rb")  # type: ignore[no-any-return]

    def delete(self, path: str) -> bool:
        try:
            self.fs.rm_file(self.key(path))
        except FileNotFoundError:
            return False
        return True

    # -- what is there ----------------------------------------------------------------------------

    def _listing(self) -> dict[str, int]:
        """Every object of the run and its size, by path relative to the run (one listing)."""
        self.fs.invalidate_cache(self.base)
        try:
            found = self.fs.find(self.base, detail=True)
        except FileNotFoundError:
            return {}
        prefix = self.base + "/"
        return {k[len(prefix) :]: int(v.get("size") or 0) for k, v in found.items() if k.startswith(prefix)}

    def size(self, path: str) -> int | None:
        self.fs.invalidate_cache(self.key(path))
        try:
            info = self.fs.info(self.key(path))
        except FileNotFoundError:
            return None
        return int(info.get("size") or 0) if info.get("type") == "file" else None

    def sizes(self, paths: Iterable[str]) -> dict[str, int | None]:
        paths = list(paths)
        if len(paths) <= 2:
            return {p: self.size(p) for p in paths}
        listing = self._listing()
        return {p: listing.get(p) for p in paths}

    def entries(self, path: str = "") -> list[tuple[str, str]]:
        where = self.key(path) if path else self.base
        self.fs.invalidate_cache(where)
        try:
            found = self.fs.ls(where, detail=True)
        except FileNotFoundError:
            return []
        out = []
        for item in found:
            name = item["name"].rstrip("/").rsplit("/", 1)[-1]
            if item["name"].rstrip("/") == where:
                continue
            out.append((name, FOLDER if item.get("type") == "directory" else FILE))
        return out

    def artifact_files(self) -> list[tuple[str, int]]:
        return [
            (path, size)
            for path, size in self._listing().items()
            if path.startswith("replicate_") and path.count("/") == 3
        ]

    def signature(self, paths: tuple[str, ...]) -> list[object] | None:
        return None  # asking for identity costs as much as reading: the index is not used

    def prune_folders(self, paths: Iterable[str]) -> None:
        return None  # object stores have no folders to leave behind

    # -- the journal: one object per line ---------------------------------------------------------

    def _segments(self, condition: str) -> list[tuple[int, int, str]]:
        where = f"{self.base}/{condition}/{_JOURNAL_DIR}"
        self.fs.invalidate_cache(where)
        try:
            names = self.fs.ls(where, detail=False)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            match = _SEGMENT.match(name.rstrip("/").rsplit("/", 1)[-1])
            if match:
                found.append((int(match.group(1)), int(match.group(2)), name))
        return sorted(found)

    def _next(self, condition: str, segments: list[tuple[int, int, str]] | None = None) -> tuple[int, int]:
        if condition not in self._seq:
            segments = self._segments(condition) if segments is None else segments
            if segments:
                generation = segments[-1][0]
                self._seq[condition] = (generation, max(s for g, s, _ in segments if g == generation) + 1)
            else:
                self._seq[condition] = (0, 0)
        return self._seq[condition]

    def _segment_key(self, condition: str, generation: int, sequence: int) -> str:
        return f"{self.base}/{condition}/{_JOURNAL_DIR}/g{generation:06d}-{sequence:08d}"

    def append_journal(self, condition: str, line: bytes) -> None:
        generation, sequence = self._next(condition)
        self.fs.pipe_file(self._segment_key(condition, generation, sequence), line + b"\n")
        self._seq[condition] = (generation, sequence + 1)

    def read_journal(self, condition: str) -> bytes | None:
        segments = self._segments(condition)
        if not segments:
            return None
        generation = segments[-1][0]
        parts = []
        for g, _, name in segments:
            if g == generation:
                raw = self.experiment.read_raw(name)
                if raw is not None:
                    parts.append(raw if raw.endswith(b"\n") or not raw else raw + b"\n")
        return b"".join(parts)

    def replace_journal(self, condition: str, data: bytes) -> bool:
        segments = self._segments(condition)
        if not segments and not data:
            return False
        generation = (segments[-1][0] + 1) if segments else 0
        self.fs.pipe_file(self._segment_key(condition, generation, 0), data)  # the new generation first...
        self._seq[condition] = (generation, 1)
        old = [name for g, _, name in segments if g < generation]
        if old:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(old)  # ...then the old ones, which readers ignore already
        return True

    def close_journals(self) -> None:
        return None

    # -- pickling ---------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        if self.experiment.protocol == "memory":
            raise TypeError(
                f"{self.location} lives in this process's memory (memory://) and cannot travel to worker "
                "processes; run with serial or thread execution, or use a shared store (s3://...)"
            )
        state = self.__dict__.copy()
        state.update(_stop=None, _renewer=None, _etag=None, _checked=0.0, _seq={})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stop = threading.Event()
        self._remote = True  # checks the lease before committing

    def __repr__(self) -> str:
        return f"<ObjectRunFolder {self.location}>"


class ObjectExperimentFolder:
    """Every run of one experiment under an fsspec URL: an :class:`~crystallize_artifacts.backends.ExperimentFolder`."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, *, fs: Any = None) -> None:
        if fs is None:
            fs, path, protocol = open_filesystem(url, storage_options)
        else:
            path, protocol = fs._strip_protocol(url).rstrip("/"), _protocol_of(fs)
        self.fs = fs
        self.path = path
        self.protocol = protocol
        self.location = f"{protocol}://{path}"
        #: the store enforces conditional writes (see the module's docstring).
        self.conditional = protocol in _CONDITIONAL

    # -- reading ------------------------------------------------------------------------------------

    def read_raw(self, key: str) -> bytes | None:
        try:
            return self.fs.cat_file(key)  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            return None

    def _read_lease(self, version: int) -> leases.Lease:
        key = f"{self.path}/v{version}/{layout.LOCK}"
        for _ in range(5):
            before = self._etag_of(key)
            raw = self.read_raw(key)
            if raw is None:
                return leases.Lease(None, None)
            if not self.conditional or before == self._etag_of(key):
                return leases.Lease(leases.parse(raw) or {}, before)
        raise RunLockedError(f"{self.run_location(version)}: its lease keeps changing; another run is taking it")

    def _etag_of(self, key: str) -> str | None:
        if not self.conditional:
            return None
        self.fs.invalidate_cache(key)
        try:
            return self.fs.info(key).get("ETag")  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    # -- the lease ----------------------------------------------------------------------------------

    def _create_lease(self, version: int, token: bytes) -> str | bool | None:
        """Create ``v<version>/.lock`` if absent: its ETag (or ``None``), ``False`` if it exists."""
        key = f"{self.path}/v{version}/{layout.LOCK}"
        try:
            reply = self.fs.pipe_file(key, leases.encode(token), mode="create")
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno == errno.EINVAL and self.conditional:  # 412: the condition failed
                return False
            raise
        if not leases.same_run(leases.parse(self.read_raw(key)), token):
            return False  # a store without conditional writes let another run overwrite it
        return reply.get("ETag") if isinstance(reply, dict) else self._etag_of(key)

    def replace_lease(self, version: int, token: bytes, etag: str | None, *, state: str = "held") -> str | None:
        """Write our lease over the one with ``etag`` (conditionally where the store can);
        :class:`RunLockedError` when another run wrote it meanwhile."""
        key = f"{self.path}/v{version}/{layout.LOCK}"
        data = leases.encode(token, state)
        if self.conditional and etag is not None:
            try:
                reply = self.fs.pipe_file(key, data, IfMatch=etag)
            except OSError as exc:
                if exc.errno == errno.EINVAL or isinstance(exc, FileNotFoundError):
                    raise RunLockedError(f"{self.run_location(version)} was taken by another run meanwhile") from None
                raise
            return reply.get("ETag") if isinstance(reply, dict) else self._etag_of(key)
        self.fs.pipe_file(key, data)
        doc = leases.parse(self.read_raw(key))
        if state == "held" and not leases.same_run(doc, token):
            raise RunLockedError(f"{self.run_location(version)} was taken by another run meanwhile")
        return self._etag_of(key)

    def _take_over(self, version: int, token: bytes) -> str | None:
        lease = self._read_lease(version)
        if lease.doc is None:
            created = self._create_lease(version, token)
            if created is False:
                raise RunLockedError(f"{self.run_location(version)} was claimed by another run at the same time; retry")
            return created  # type: ignore[return-value]
        holder = leases.live_owner(lease.doc)
        if holder is not None:
            raise RunLockedError(
                f"{self.run_location(version)} is being written by another run ({holder}); wait for it to finish, "
                "or use ArtifactPlugin(versioned=True) so each run gets its own version"
            )
        return self.replace_lease(version, token, lease.etag)

    def _clear(self, version: int) -> None:
        """Delete a run's objects but its lease, those that vouch for others first."""
        base = f"{self.path}/v{version}"
        self.fs.invalidate_cache(base)
        try:
            keys = [k for k in self.fs.find(base) if k != f"{base}/{layout.LOCK}"]
        except FileNotFoundError:
            return
        vouching = (layout.MANIFEST, layout.MARKER, layout.RESULTS, layout.INDEX, layout.METADATA)

        def order(key: str) -> int:
            name = key.rsplit("/", 1)[-1]
            if name in vouching:
                return vouching.index(name)
            return len(vouching) if f"/{_JOURNAL_DIR}/" in key else len(vouching) + 1

        keys.sort(key=order)
        first = [k for k in keys if order(k) <= len(vouching)]
        for key in first:  # one by one, in order: nothing may vouch for a deleted artifact
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(key)
        rest = [k for k in keys if order(k) > len(vouching)]
        if rest:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(rest)

    # -- ExperimentFolder ---------------------------------------------------------------------------

    def versions(self) -> list[int]:
        self.fs.invalidate_cache(self.path)
        try:
            names = self.fs.ls(self.path, detail=False)
        except FileNotFoundError:
            return []
        found = (layout.VERSION_NAME.match(n.rstrip("/").rsplit("/", 1)[-1]) for n in names)
        return sorted(int(m.group(1)) for m in found if m)

    def run_location(self, version: int) -> str:
        return f"{self.location}/v{version}"

    def open_run(self, *, versioned: bool, resume: bool, durable: bool, token: bytes) -> tuple[ObjectRunFolder, bool]:
        existing = self.versions()
        if resume:
            latest = (existing[-1] if existing else None) if versioned else (0 if 0 in existing else None)
            if latest is not None:
                etag = self._take_over(latest, token)
                return ObjectRunFolder(self, latest, durable=durable, token=token, etag=etag), True
        if versioned:
            claimed: dict[int, Any] = {}

            def claim(version: int) -> bool:
                etag = self._create_lease(version, token)
                if etag is False:
                    return False
                claimed[version] = etag
                return True

            version = versions.claim_next(existing[-1] if existing else None, claim)
            return ObjectRunFolder(self, version, durable=durable, token=token, etag=claimed[version]), False
        etag = self._take_over(0, token)
        folder = ObjectRunFolder(self, 0, durable=durable, token=token, etag=etag)
        try:
            self._clear(0)
        except BaseException:
            folder.release()
            raise
        return folder, False

    def existing(self, version: int | None = None, *, maintenance: bool = False) -> ObjectRunFolder | None:
        found = self.versions()
        if version is None:
            version = found[-1] if found else None
        if version is None or version not in found:
            return None
        return ObjectRunFolder(self, version, readonly=not maintenance)

    def lock_held(self, version: int) -> bool:
        key = f"{self.path}/v{version}/{layout.LOCK}"
        return leases.live_owner(leases.parse(self.read_raw(key))) is not None

    def exists(self, location: str) -> bool:
        path = self.fs._strip_protocol(location).rstrip("/")
        self.fs.invalidate_cache(path)
        try:
            return bool(self.fs.ls(path, detail=False))
        except FileNotFoundError:
            return False

    def __getstate__(self) -> dict[str, Any]:
        if self.protocol == "memory":
            raise TypeError(
                f"{self.location} lives in this process's memory (memory://) and cannot travel to worker "
                "processes; run with serial or thread execution, or use a shared store (s3://...)"
            )
        return self.__dict__.copy()

    def __repr__(self) -> str:
        return f"<ObjectExperimentFolder {self.location}>"
