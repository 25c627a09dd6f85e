"""One run's folder on a local (or shared) filesystem: :class:`LocalRunStore`.

Ordering is what makes a crash harmless. For every replicate: its artifacts
are committed first, then one line is appended to the condition's journal
(``replicates.jsonl``). For every condition: ``results.json`` is committed
only after all its replicates are journaled, and the completion marker only
after ``results.json``. Resume trusts a marker or a journal line only, so it
never vouches for a file that is missing or partial. ``manifest.json`` is
removed before a resumed run changes anything and written again when it
closes, so a manifest on disk always describes the folder as it is.

Run versions are allocated by renaming a freshly created, already locked
staging folder to ``v<N>``; the rename fails if ``v<N>`` exists, so two
processes starting at once get different versions. While a run is active its
folder's ``.lock`` is held (see :mod:`crystallize_artifacts.runlock`).

Every file below the run folder is reached through
:mod:`crystallize_artifacts.safepaths` (no link is ever followed, no special
file opened) and every document read back is parsed by
:mod:`crystallize_artifacts.documents` (a wrong shape is reported, never
trusted).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from crystallize.plugin import (
    ArtifactRecord,
    CompletedWork,
    ConditionRecord,
    DocumentError,
    ReplicateOutcome,
    ReplicateRecord,
    ReplicateRejected,
    name_problem,
)
from crystallize.plugin import documents as doc_checks
from crystallize_artifacts import documents, layout, runlock, safepaths
from crystallize_artifacts.commit import fsync_dir, write_atomic_at
from crystallize_artifacts.runlock import RunEndedError, RunLockedError, lock_held
from crystallize_artifacts.safepaths import Handle, UnsafePathError

__all__ = ["LocalRunStore", "RunLockedError", "RunEndedError", "UnsafePathError", "lock_held", "to_json_bytes"]

log = logging.getLogger("crystallize.artifacts")


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays, without importing NumPy.
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)  # a set's order differs between processes; a sorted list does not
        except TypeError:
            return list(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"a value of type {type(value).__name__} ({value!r:.80}) cannot be stored as JSON")


_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"))

#: Journal entries are buffered and written when a condition completes, when
#: the run ends, after JOURNAL_BATCH entries, and when a replicate finishes
#: more than JOURNAL_SECONDS after the last write. A crash loses at most the
#: unwritten entries: those replicates run again on resume (their artifacts
#: are overwritten atomically); nothing is ever inconsistent.
JOURNAL_BATCH = 1024
JOURNAL_SECONDS = 1.0


def to_json_bytes(document: Any, *, what: str) -> bytes:
    """Serialise ``document``; a clear error names ``what`` when it cannot be."""
    try:
        return _ENCODER.encode(document).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what} cannot be written as JSON: {exc}. Record numbers, strings, booleans, "
            "lists or dicts of them (NumPy values are converted)"
        ) from None
    except RecursionError:
        raise ValueError(f"{what} cannot be written as JSON: it is nested too deeply") from None


def _json_exact(value: Any) -> bool:
    """``value`` comes back from JSON as it is (same types, same keys)."""
    kind = type(value)
    if kind is float or kind is int or kind is str or kind is bool or value is None:
        return True
    if kind is list:
        return all(_json_exact(v) for v in value)
    if kind is dict:
        return all(type(k) is str and _json_exact(v) for k, v in value.items())
    return False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


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


def _index_entry(record: ConditionRecord) -> dict[str, Any]:
    per_replicate = record.replicate_metrics
    return {
        "metrics": record.metrics,
        "replicates": record.replicates,
        "fingerprint": record.fingerprint,
        "replicate_metrics": None if per_replicate is None else {str(r): m for r, m in per_replicate.items()},
        "seeds": None if record.seeds is None else {str(r): s for r, s in record.seeds.items()},
    }


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Borrowed:
    """The run folder's handle for one operation: the store's own, or one opened for it."""

    __slots__ = ("handle", "owned")

    def __init__(self, store: LocalRunStore) -> None:
        self.handle = store._handle
        self.owned = self.handle is None
        if self.owned:
            self.handle = safepaths.open_folder(store.location)

    def __enter__(self) -> Handle:
        return self.handle  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            safepaths.close(self.handle)


class LocalRunStore:
    """The :class:`~crystallize.plugin.RunStore` of ``crystallize-artifacts``."""

    def __init__(
        self,
        experiment_dir: Path,
        version: int,
        *,
        resumed: bool = False,
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
        self.resumed = resumed
        self.durable = durable
        self.readonly = readonly
        self._lock_fd = lock_fd
        self._handle = handle  # the run folder, held open by the store that owns the lock
        self._token = token
        self._remote = False  # a copy in another process (set when unpickled)
        self._closed = False
        self._inflight = 0
        self._dirs: set[str] = set()  # folders below the run folder known to exist
        self._lock_probe: int | None = None  # a worker copy's descriptor of the run's lock file
        self._journals: dict[str, int] = {}
        self._unwritten: dict[str, list[bytes]] = {}
        self._pending_lines = 0
        self._last_flush = time.monotonic()
        # {condition: {replicate: (metrics, [records])}} of journaled replicates
        self._replicates: dict[str, dict[int, tuple[Mapping[str, Any], list[ArtifactRecord]]]] = {}
        self._seeds: dict[str, dict[int, Any]] = {}  # {condition: {replicate: seed}} of journaled replicates
        self._completed: dict[str, list[ArtifactRecord] | None] = {}  # None: not read yet
        self._vouched: dict[str, list[ArtifactRecord] | None] = {}  # read, not yet accepted by resume
        self._journal_entries: dict[str, dict[int, Any]] = {}
        self._index: dict[str, Any] | None = None  # .index.json as loaded
        self._index_entries: dict[str, dict[str, Any]] = {}
        self._index_dirty = not resumed  # a new run always writes its index
        self._index_broken = False  # .index.json exists but is unusable: rewrite it
        self._run_conditions: tuple[str, ...] | None = None
        self._changed = False
        self._guard = threading.Lock()
        self._idle = threading.Condition(self._guard)

    # -- opening ------------------------------------------------------------------

    @classmethod
    def open_for_run(
        cls, experiment_dir: Path, *, versioned: bool, resume: bool, durable: bool, token: bytes | None = None
    ) -> LocalRunStore:
        """Allocate (or, with ``resume``, reopen) the run folder and lock it.

        :param token: what the lock file holds while this run owns it
            (:func:`~crystallize_artifacts.runlock.make_token`).
        """
        token = token or runlock.make_token(secrets.token_hex(16))
        experiment_dir.mkdir(parents=True, exist_ok=True)
        if not layout.is_real_dir(experiment_dir):
            raise UnsafePathError(
                f"{experiment_dir} is a symbolic link; the artifact store never follows links below root_dir. "
                "Point root_dir at the real folder instead"
            )
        _clean_leftovers(experiment_dir)
        if resume:
            latest = (
                layout.latest_version(experiment_dir)
                if versioned
                else (0 if layout.is_real_dir(layout.version_dir(experiment_dir, 0)) else None)
            )
            if latest is not None:
                fd, handle = runlock.acquire(layout.version_dir(experiment_dir, latest), token)
                return cls(
                    experiment_dir, latest, resumed=True, durable=durable, lock_fd=fd, handle=handle, token=token
                )
        if versioned:
            version, fd, handle = _allocate(experiment_dir, token)
        else:
            version, (fd, handle) = 0, _replace_v0(experiment_dir, token)
        if durable:
            fsync_dir(experiment_dir)
        return cls(experiment_dir, version, durable=durable, lock_fd=fd, handle=handle, token=token)

    @classmethod
    def open_existing(cls, experiment_dir: Path, version: int | None = None) -> LocalRunStore | None:
        """Open an existing run for reading (the latest when ``version`` is ``None``)."""
        if version is None:
            version = layout.latest_version(experiment_dir)
            if version is None:
                return None
        if not layout.is_real_dir(layout.version_dir(experiment_dir, version)):
            return None
        return cls(experiment_dir, version, readonly=True)

    # -- entering and leaving writes -------------------------------------------------------

    def _enter(self) -> Handle:
        """Start a write: refused after close, or (in a worker) once the run lost its lock."""
        with self._guard:
            if self.readonly:
                raise RuntimeError(f"{self.dir} was opened read-only")
            if self._closed:
                raise RunEndedError(
                    f"run {self.location} has ended; a write that arrives after Experiment.run() returned "
                    "(from a thread a step left running, say) is refused, so committed files stay as verified"
                )
            handle = self._handle
            if handle is None:  # a copy in a worker process: open the folder (and its lock) once
                handle = self._handle = safepaths.open_folder(self.location)
                if self._remote and self._token is not None:
                    self._lock_probe = runlock.open_probe(handle, self.location)
            self._inflight += 1
        if self._lock_probe is not None:
            try:
                runlock.check_held(self._lock_probe, self._token, self.location)  # type: ignore[arg-type]
            except BaseException:
                self._leave()
                raise
        return handle

    def _leave(self) -> None:
        with self._guard:
            self._inflight -= 1
            if self._inflight == 0 and self._closed:
                self._idle.notify_all()

    # -- RunStore protocol ------------------------------------------------------------

    def read_json(self, path: str) -> Any | None:
        segments = safepaths.split_relpath(path, self.location)
        where = f"{self.location}/{path}"
        with _Borrowed(self) as handle:
            try:
                folder = safepaths.open_dirs(handle, segments[:-1], where=self.location)
            except FileNotFoundError:
                return None
            try:
                raw = safepaths.read_regular(folder, segments[-1], where=where)
            finally:
                if folder != handle:
                    safepaths.close(folder)
        if raw is None:
            return None
        try:
            return doc_checks.parse_json(raw, where)
        except DocumentError as exc:
            raise DocumentError(
                exc.source, f"{exc.problem}; the file is corrupt: restore it, delete it, or rerun the experiment"
            ) from None

    def write_json(self, path: str, document: Any) -> None:
        segments = safepaths.split_relpath(path, self.location)
        handle = self._enter()
        try:
            data = to_json_bytes(document, what=f"{self.location}/{path}")
            folder = safepaths.open_dirs(handle, segments[:-1], where=self.location, create=True)
            try:
                write_atomic_at(folder, segments[-1], data, durable=self.durable)
            finally:
                if folder != handle:
                    safepaths.close(folder)
        finally:
            self._leave()

    def completed_condition(self, condition: str) -> ConditionRecord | None:
        safepaths.check_segment(condition, "condition")
        entry = self._load_index().get(condition)
        if entry is not None and entry.get("stat") == self._stat_signature(condition):
            # The marker and results.json are byte-for-byte the files the index
            # describes (same inode, size and mtime): no need to read them.
            self._vouched[condition] = None  # artifact records are read if ever needed
            self._index_entries[condition] = entry
            per_replicate = entry.get("replicate_metrics")
            seeds = entry.get("seeds")
            return ConditionRecord(
                condition=condition,
                replicates=entry.get("replicates"),
                fingerprint=entry.get("fingerprint"),
                metrics=entry.get("metrics", {}),
                replicate_metrics=None if per_replicate is None else {int(k): v for k, v in per_replicate.items()},
                seeds=None if seeds is None else {int(k): v for k, v in seeds.items()},
            )
        found = self._read_completion(condition)
        if found is None:
            return None
        results = found
        self._vouched[condition] = list(results.artifacts)
        record = ConditionRecord(
            condition=condition,
            replicates=results.replicates,
            fingerprint=results.fingerprint,
            metrics=results.metrics,
            replicate_metrics=results.replicate_metrics,
            seeds=results.seeds,
        )
        self._index_entries[condition] = _index_entry(record)
        self._index_dirty = True  # read from the files: the index lacks it or is stale
        return record

    def _read_completion(self, condition: str) -> documents.Results | None:
        """The condition's results if its marker vouches for them, else ``None`` (with a warning why)."""
        where = f"{self.location}/{condition}"
        with _Borrowed(self) as handle:
            try:
                folder = safepaths.open_dirs(handle, (condition,), where=self.location)
            except FileNotFoundError:
                return None
            try:
                marker_raw = safepaths.read_regular(folder, layout.MARKER, where=f"{where}/{layout.MARKER}")
                if marker_raw is None:
                    return None
                raw = safepaths.read_regular(folder, layout.RESULTS, where=f"{where}/{layout.RESULTS}")
            finally:
                safepaths.close(folder)
        if raw is None:
            log.warning("%s: completion marker ignored, %s is missing; the condition runs again", where, layout.RESULTS)
            return None
        try:
            marker = documents.parse_marker(marker_raw, f"{where}/{layout.MARKER}")
            results = documents.parse_results(raw, f"{where}/{layout.RESULTS}", condition)
        except DocumentError as exc:
            log.warning("%s: completion marker ignored (%s); the condition runs again", where, exc)
            return None
        problem = None
        if marker.legacy and not results.legacy:
            problem = "the marker is empty but results.json was written by crystallize-artifacts (a damaged marker)"
        elif not marker.legacy and results.legacy:
            problem = "results.json lacks what the marker vouches for"
        elif not marker.legacy and marker.results_sha256 != hashlib.sha256(raw).hexdigest():
            problem = "results.json does not match the checksum in the marker"
        elif not marker.legacy and marker.replicates != results.replicates:
            problem = "the marker and results.json disagree on the replicate count"
        if problem is not None:
            log.warning("%s: completion marker ignored, %s; the condition runs again", where, problem)
            return None
        return results

    def finished_replicates(self, condition: str) -> dict[int, ReplicateRecord]:
        safepaths.check_segment(condition, "condition")
        where = f"{self.location}/{condition}/{layout.JOURNAL}"
        with _Borrowed(self) as handle:
            try:
                folder = safepaths.open_dirs(handle, (condition,), where=self.location)
            except FileNotFoundError:
                return {}
            try:
                raw = safepaths.read_regular(folder, layout.JOURNAL, where=where)
            finally:
                safepaths.close(folder)
            if raw is None:
                return {}
            entries, problems = documents.parse_journal(raw, where, condition)
            for problem in problems:
                log.warning("%s; that replicate runs again", problem)
            found: dict[int, ReplicateRecord] = {}
            raw_entries: dict[int, Any] = {}
            seeds: dict[int, Any] = {}
            for replicate, entry in entries.items():
                if all(_on_disk(handle, r) for r in entry.artifacts):
                    raw_entries[replicate] = entry.raw
                    found[replicate] = ReplicateRecord(
                        condition, replicate, entry.metrics, entry.fingerprint, entry.artifacts, entry.seed
                    )
                    if entry.seed is not None:
                        seeds[replicate] = entry.seed
        with self._guard:
            self._journal_entries[condition] = raw_entries
            bucket = self._replicates.setdefault(condition, {})
            for replicate, record in found.items():
                bucket[replicate] = (record.metrics, list(record.artifacts))
            self._seeds.setdefault(condition, {}).update(seeds)
        return found

    # -- writing (used by ArtifactPlugin) ---------------------------------------------------

    def write_artifact(self, condition: str, replicate: int, step: str, name: str, data: bytes) -> ArtifactRecord:
        """Commit one artifact atomically and return its record.

        Every name is checked again here, where it becomes a path (a step's
        ``step_name`` or a treatment's ``name`` may have changed since
        validation), and the folders are opened without following links.
        """
        safepaths.check_segment(condition, "condition")
        safepaths.check_segment(step, "step")
        safepaths.check_segment(name, "artifact")
        if type(replicate) is not int or replicate < 0:
            raise ValueError(f"replicate must be a non-negative int, got {replicate!r}")
        handle = self._enter()
        try:
            folder = safepaths.open_dirs(
                handle, (f"replicate_{replicate}", condition, step), where=self.location, create=True, known=self._dirs
            )
            try:
                write_atomic_at(folder, name, data, durable=self.durable)
            finally:
                safepaths.close(folder)
        finally:
            self._leave()
        self._changed = True
        return ArtifactRecord(
            name,
            step,
            condition,
            replicate,
            layout.artifact_relpath(condition, replicate, step, name),
            len(data),
            hashlib.sha256(data).hexdigest(),
        )

    def record_replicate(self, outcome: ReplicateOutcome, fingerprint: str | None) -> None:
        """Journal a finished replicate (its artifacts are already committed).

        The entry is encoded at once — metrics that cannot be stored reject
        this replicate (:class:`~crystallize.plugin.ReplicateRejected`) and no
        other — and written in batches (see :data:`JOURNAL_BATCH`). A failed
        replicate is not journaled; it writes out the condition's buffered
        entries, so that resume finds the replicates that succeeded.

        Metrics are kept as JSON gives them back: when they hold values JSON
        changes (tuples and sets become lists, dict keys and metric names
        strings, NumPy values plain numbers), ``outcome.metrics`` is replaced by
        the stored form, so a fresh run's :class:`~crystallize.Result` equals
        a resumed one's.
        """
        condition = outcome.condition
        if outcome.error is not None:
            self.flush_journals(condition)
            return
        records = [r for r in outcome.artifacts if isinstance(r, ArtifactRecord)] if outcome.artifacts else []
        if len(records) > 1:  # a step that wrote a file twice: the last write is what is on disk
            records = list({r.path: r for r in records}.values())
        seed = outcome.seed
        if not outcome.metrics and not records and (seed is None or type(seed) is int):
            # Nothing the encoder could refuse: build the line directly.
            encoded = b'{"replicate":%d,"fingerprint":%s,"metrics":{},"artifacts":[],"seed":%s}' % (
                outcome.replicate,
                b"null" if fingerprint is None else _ENCODER.encode(fingerprint).encode(),
                b"null" if seed is None else str(seed).encode(),
            )
        else:
            encoded = self._encode_entry(outcome, fingerprint, records)
            try:
                exact = _json_exact(outcome.metrics)
            except RecursionError:
                exact = False
            if not exact:
                outcome.metrics = json.loads(encoded)["metrics"]
        self._enter()
        try:
            self._unwritten.setdefault(condition, []).append(encoded)
            if outcome.metrics or records:  # nothing to remember otherwise: the journal has it
                self._replicates.setdefault(condition, {})[outcome.replicate] = (outcome.metrics, records)
            if seed is not None:  # for results.json, so that resume reports it
                self._seeds.setdefault(condition, {})[outcome.replicate] = seed
            self._changed = True
            self._pending_lines += 1
            if self._pending_lines >= JOURNAL_BATCH or time.monotonic() - self._last_flush >= JOURNAL_SECONDS:
                self._flush()
        finally:
            self._leave()

    def _encode_entry(self, outcome: ReplicateOutcome, fingerprint: str | None, records: list[ArtifactRecord]) -> bytes:
        condition = outcome.condition
        entry = {
            "replicate": outcome.replicate,
            "fingerprint": fingerprint,
            "metrics": outcome.metrics,
            "artifacts": [r.to_json() for r in records],
            "seed": outcome.seed,
        }
        try:
            return _ENCODER.encode(entry).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            reason = "they are nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ReplicateRejected(
                f"the metrics of condition {condition!r} replicate {outcome.replicate} cannot be stored as "
                f"JSON: {reason}. Record numbers, strings, booleans, or lists and dicts of them "
                "(NumPy values are converted)"
            ) from None

    def prepare_resume(
        self,
        conditions: tuple[str, ...],
        completed: CompletedWork,
        *,
        replicates: int | None = None,
        fingerprints: Mapping[str, str] | None = None,
    ) -> None:
        """Make the folder vouch for exactly what resume reuses, before anything reruns.

        For every condition of this run that resume did not accept whole, its
        completion marker and results are removed, and its journal is
        rewritten to hold only the replicates being reused — plus, when this
        run has fewer ``replicates`` than an earlier one, the finished
        replicates beyond its count (of the same treatment, per
        ``fingerprints``), so growing back reuses them. Otherwise a rerun
        would overwrite artifacts that an old marker or journal line still
        vouches for — and a later resume (say, after reverting a treatment)
        would trust them. Conditions this run does not include are left alone.

        When anything will change, ``manifest.json`` is removed first: a
        crash before the run closes then leaves no manifest (the next run
        writes one) rather than a stale one that ``verify`` would trust.
        """
        handle = self._enter()
        try:
            self._prepare_resume(handle, conditions, completed, replicates, fingerprints or {})
        finally:
            self._leave()

    def _prepare_resume(
        self,
        handle: Handle,
        conditions: tuple[str, ...],
        completed: CompletedWork,
        replicates: int | None,
        fingerprints: Mapping[str, str],
    ) -> None:
        self._run_conditions = tuple(conditions)
        pending = any(c not in completed.conditions for c in conditions)
        if pending and safepaths.unlink_at(handle, layout.MANIFEST) and self.durable:
            os.fsync(handle)  # type: ignore[arg-type]
        touched = False
        for condition in conditions:
            safepaths.check_segment(condition, "condition")
            if condition in completed.conditions:
                if condition in self._vouched:
                    self._completed[condition] = self._vouched[condition]
                continue
            if self._index_entries.pop(condition, None) is not None or condition in self._load_index():
                self._index_dirty = True
            reused = completed.replicates.get(condition, {})
            entries = dict(self._journal_entries.get(condition, {}))
            from_results = self._entries_from_results(handle, condition)
            for replicate in reused:  # reused from results.json (a completed condition keeps no journal)
                if replicate not in entries and replicate in from_results:
                    entry = entries[replicate] = from_results[replicate]
                    records = [documents.parse_artifact_record(a, self.location) for a in entry["artifacts"]]
                    self._replicates.setdefault(condition, {})[replicate] = (entry["metrics"], records)
            self._replicates[condition] = {r: v for r, v in self._replicates.get(condition, {}).items() if r in reused}
            self._seeds[condition] = {r: v for r, v in self._seeds.get(condition, {}).items() if r in reused}
            for replicate in reused:
                seed = entries.get(replicate, {}).get("seed")
                if seed is not None:
                    self._seeds[condition][replicate] = seed
            kept = [entries[r] for r in sorted(reused) if r in entries]
            if replicates is not None:  # finished replicates beyond this run's count stay vouched for
                fingerprint = fingerprints.get(condition)
                beyond = {**from_results, **entries}
                kept += [
                    beyond[r]
                    for r in sorted(beyond)
                    if r >= replicates and beyond[r].get("fingerprint") in (None, fingerprint)
                ]
            try:
                folder = safepaths.open_dirs(handle, (condition,), where=self.location, create=bool(kept))
            except FileNotFoundError:
                continue
            try:
                if kept or safepaths.lstat_at(folder, layout.JOURNAL) is not None:  # first the journal...
                    data = (_ENCODER.encode(kept).encode("utf-8") + b"\n") if kept else b""
                    write_atomic_at(folder, layout.JOURNAL, data)
                    touched = True
                for name in (layout.MARKER, layout.RESULTS):  # ...then withdraw the marker, then results
                    touched = safepaths.unlink_at(folder, name) or touched
                if touched and self.durable:
                    os.fsync(folder)  # type: ignore[arg-type]
            finally:
                safepaths.close(folder)

    def _entries_from_results(self, handle: Handle, condition: str) -> dict[int, dict[str, Any]]:
        """Journal entries for the replicates a completed condition's results.json records."""
        where = f"{self.location}/{condition}/{layout.RESULTS}"
        try:
            folder = safepaths.open_dirs(handle, (condition,), where=self.location)
        except FileNotFoundError:
            return {}
        try:
            raw = safepaths.read_regular(folder, layout.RESULTS, where=where)
        finally:
            safepaths.close(folder)
        if raw is None:
            return {}
        try:
            results = documents.parse_results(raw, where, condition)
        except DocumentError:
            return {}
        if results.replicate_metrics is None:
            return {}
        return {
            replicate: {
                "replicate": replicate,
                "fingerprint": results.fingerprint,
                "metrics": metrics,
                "artifacts": [a.to_json() for a in results.artifacts if a.replicate == replicate],
                "seed": None if results.seeds is None else results.seeds.get(replicate),
            }
            for replicate, metrics in results.replicate_metrics.items()
        }

    def _records_outside_this_run(self) -> list[ArtifactRecord]:
        """Artifacts of conditions kept in this folder that this run did not include."""
        if self._run_conditions is None:
            return []
        records: list[ArtifactRecord] = []
        with _Borrowed(self) as handle:
            names = sorted(name for name, st in safepaths.scan(handle) if stat.S_ISDIR(st.st_mode))
        for name in names:
            if name in self._run_conditions or name.startswith((".", "replicate_")):
                continue
            if name_problem(name) is not None:
                continue
            try:
                if self.completed_condition(name) is not None:
                    self._completed.setdefault(name, self._vouched[name])
                    records.extend(self._records_of(name))
                else:
                    records.extend(r for rec in self.finished_replicates(name).values() for r in rec.artifacts)
            except UnsafePathError as exc:
                log.warning("%s; its artifacts are left out of the manifest", exc)
        return records

    def flush_journals(self, only: str | None = None) -> None:
        """Write buffered journal entries to their files (and fsync when durable)."""
        self._enter()
        try:
            self._flush(only)
        finally:
            self._leave()

    def _flush(self, only: str | None = None) -> None:
        for condition in [only] if only is not None else list(self._unwritten):
            batch = self._unwritten.get(condition)
            if not batch:
                continue
            self._append_journal(condition, b"[" + b",".join(batch) + b"]")
            del self._unwritten[condition]  # only once written
            self._pending_lines -= len(batch)
        self._last_flush = time.monotonic()

    def _append_journal(self, condition: str, line: bytes) -> None:
        """Append one line to a condition's journal; the line is the unit of commit."""
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
        _write_all(fd, line + b"\n")
        if self.durable:
            os.fsync(fd)

    def complete_condition(
        self, condition: str, replicates: int, fingerprint: str | None, metrics: Mapping[str, Any]
    ) -> None:
        """Commit ``results.json``, then the completion marker.

        Journal entries of the condition still buffered are dropped, not
        written: ``results.json`` and the marker supersede them (a crash before
        the marker only means its replicates run again).
        """
        safepaths.check_segment(condition, "condition")
        handle = self._enter()
        try:
            self._pending_lines -= len(self._unwritten.pop(condition, ()))
            done = self._replicates.get(condition, {})
            kept = {r: done[r] for r in sorted(done) if r < replicates}
            records = list({record.path: record for _, recs in kept.values() for record in recs}.values())
            seeds = self._seeds.get(condition, {})
            doc = {
                "metrics": metrics,
                "replicates": replicates,
                "fingerprint": fingerprint,
                "replicate_metrics": {str(r): m for r, (m, _) in kept.items()},
                "seeds": {str(r): seeds[r] for r in sorted(seeds) if r < replicates},
                "artifacts": [r.to_json() for r in records],
                "completed_at": _now(),
            }
            raw = to_json_bytes(doc, what=f"the results of condition {condition!r}")
            marker = {"replicates": replicates, "results_sha256": hashlib.sha256(raw).hexdigest()}
            folder = safepaths.open_dirs(handle, (condition,), where=self.location, create=True)
            try:
                write_atomic_at(folder, layout.RESULTS, raw, durable=self.durable)
                write_atomic_at(folder, layout.MARKER, to_json_bytes(marker, what="marker"), durable=self.durable)
            finally:
                safepaths.close(folder)
        finally:
            self._leave()
        self._completed[condition] = records
        self._index_entries[condition] = {
            "metrics": metrics,
            "replicates": replicates,
            "fingerprint": fingerprint,
            "replicate_metrics": doc["replicate_metrics"],
            "seeds": doc["seeds"],
        }
        self._index_dirty = True
        self._changed = True

    def _records_of(self, condition: str) -> list[ArtifactRecord]:
        """A completed condition's artifact records (read from results.json if not loaded)."""
        records = self._completed.get(condition)
        if records is None:
            found = self._read_completion(condition)
            records = [] if found is None else list(found.artifacts)
            self._completed[condition] = records
        return records

    def artifact_records(self) -> list[ArtifactRecord]:
        """Every artifact this run holds that a marker or journal line vouches for
        (one record per path: the last written)."""
        records = [r for condition in list(self._completed) for r in self._records_of(condition)]
        for condition, reps in self._replicates.items():
            if condition not in self._completed:
                records.extend(r for _, recs in reps.values() for r in recs)
        return records

    def missing_outputs(self) -> list[str]:
        """Paths ``manifest.json`` lists that are neither on disk nor pruned by retention."""
        raw = self.read_json_bytes(layout.MANIFEST)
        if raw is None:
            return []
        source = f"{self.location}/{layout.MANIFEST}"
        manifest, problems = documents.parse_manifest(raw, source)
        if problems:
            raise DocumentError(source, f"{len(problems)} artifact record(s) are unusable; the first: {problems[0]}")
        with _Borrowed(self) as handle:
            kept = [r for r in manifest.artifacts if r.path not in manifest.pruned]
            return [r.path for r in kept if not _on_disk(handle, r, size=False)]

    def read_json_bytes(self, name: str) -> bytes | None:
        """The raw bytes of a document directly in the run folder (``None`` if missing)."""
        with _Borrowed(self) as handle:
            return safepaths.read_regular(handle, name, where=f"{self.location}/{name}")

    def close(self, status: str) -> None:
        """Write the manifest (if anything changed), close journals, release the lock.

        Writes still running in other threads finish first; later ones are
        refused (:class:`~crystallize_artifacts.runlock.RunEndedError`).
        """
        with self._guard:
            self._closed = True
            while self._inflight:
                self._idle.wait()
        try:
            if not self.readonly and self._handle is not None:
                self._flush()
                self._close_journals()
                self._write_manifest(status)
                self._write_index()
        finally:
            self._close_journals()
            runlock.release(self._lock_fd)
            self._lock_fd = None
            if self._handle is not None and not self.readonly:
                safepaths.close(self._handle)
                self._handle = None

    def _close_journals(self) -> None:
        for fd in self._journals.values():
            os.close(fd)
        self._journals.clear()

    def _write_manifest(self, status: str) -> None:
        handle = self._handle
        if not self._changed and safepaths.lstat_at(handle, layout.MANIFEST) is not None:  # type: ignore[arg-type]
            return
        records = list({r.path: r for r in self.artifact_records() + self._records_outside_this_run()}.values())
        manifest = {
            "version": self.version,
            "status": status,
            "updated_at": _now(),
            "artifacts": [r.to_json() for r in records],
        }
        write_atomic_at(handle, layout.MANIFEST, to_json_bytes(manifest, what="manifest"), durable=self.durable)  # type: ignore[arg-type]

    # -- the completion index: a cache, validated by stat --------------------------------

    def _stat_signature(self, condition: str) -> list[int] | None:
        """Identity of a condition's marker and results (``lstat``). A link in place of the
        condition folder could only match an entry by pointing at the very files it describes."""
        with _Borrowed(self) as handle:
            marker = safepaths.lstat_at(handle, f"{condition}/{layout.MARKER}")
            results = safepaths.lstat_at(handle, f"{condition}/{layout.RESULTS}")
        if marker is None or results is None or not (stat.S_ISREG(marker.st_mode) and stat.S_ISREG(results.st_mode)):
            return None
        return [marker.st_ino, marker.st_size, marker.st_mtime_ns, results.st_ino, results.st_size, results.st_mtime_ns]

    def _load_index(self) -> dict[str, Any]:
        if self._index is None:
            where = f"{self.location}/{layout.INDEX}"
            try:
                raw = self.read_json_bytes(layout.INDEX)
                self._index = {} if raw is None else documents.parse_index(raw, where)
            except (OSError, ValueError) as exc:  # a cache: rebuilt from the files it describes
                log.debug("%s is unusable (%s); it is rebuilt", where, exc)
                self._index = {}
                self._index_dirty = self._index_broken = True
        return self._index

    def _write_index(self) -> None:
        """Record completed conditions with the identity of their files (after the markers)."""
        if not self._index_dirty:
            return  # every completed condition was confirmed from the index as it is
        entries = {}
        for condition in self._completed:
            entry = self._index_entries.get(condition)
            signature = self._stat_signature(condition)
            if entry is not None and signature is not None:
                entries[condition] = {**entry, "stat": signature}
        for condition, entry in self._load_index().items():  # conditions this run left out
            outside = condition not in entries and condition not in (self._run_conditions or ())
            if outside and entry.get("stat") == self._stat_signature(condition):
                entries[condition] = entry
        if entries != self._load_index() or self._index_broken:
            document = {"conditions": entries}
            write_atomic_at(self._handle, layout.INDEX, to_json_bytes(document, what="index"), durable=self.durable)  # type: ignore[arg-type]

    # -- pickling -------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock_fd"] = None
        state["_handle"] = None
        state["_lock_probe"] = None
        state["_dirs"] = set()
        state["_journals"] = {}
        state["_unwritten"] = {}
        state["_pending_lines"] = 0
        state["_replicates"] = {}
        state["_seeds"] = {}
        state["_completed"] = {}
        state["_vouched"] = {}
        state["_index"] = None
        state["_index_entries"] = {}
        state["_index_dirty"] = False
        state["_journal_entries"] = {}
        state["_inflight"] = 0
        state["_guard"] = None
        state["_idle"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._remote = True  # checks before each commit that its run still holds the lock
        self._guard = threading.Lock()
        self._idle = threading.Condition(self._guard)

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
        mode = "read-only" if self.readonly else "resumed" if self.resumed else "new"
        return f"<LocalRunStore {self.dir} ({mode})>"


def _on_disk(handle: Handle, record: ArtifactRecord, *, size: bool = True) -> bool:
    """The record's artifact is a regular file (of the recorded size) reached without links."""
    try:
        folder = safepaths.open_dirs(handle, (f"replicate_{record.replicate}", record.condition, record.step), where="")
    except (OSError, ValueError):
        return False
    try:
        found = safepaths.lstat_at(folder, record.name)
    finally:
        safepaths.close(folder)
    return found is not None and stat.S_ISREG(found.st_mode) and (not size or found.st_size == record.size)


# -- version allocation ---------------------------------------------------------------------


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


def _allocate(experiment_dir: Path, token: bytes) -> tuple[int, int | None, Handle]:
    """Atomically claim the next free ``v<N>``; the folder appears already locked."""
    staging, fd, handle = _stage(experiment_dir, token)
    latest = layout.latest_version(experiment_dir)
    version = 0 if latest is None else latest + 1
    while True:
        try:
            os.rename(staging, layout.version_dir(experiment_dir, version))
            return version, fd, handle
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                _discard_staging(staging, fd, handle)
                raise
            version += 1


def _replace_v0(experiment_dir: Path, token: bytes) -> tuple[int | None, Handle]:
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
    if trash is not None:
        try:
            safepaths.remove_tree(experiment_dir, trash.name)
        except OSError:
            pass
    return fd, handle


def _clean_leftovers(experiment_dir: Path) -> None:
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
