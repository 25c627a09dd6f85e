"""One run's folder on a local (or shared) filesystem: :class:`LocalRunStore`.

Ordering is what makes a crash harmless. For every replicate: its artifacts
are committed first, then one line is appended to the condition's journal
(``replicates.jsonl``). For every condition: ``results.json`` is committed
only after all its replicates are journaled, and the completion marker only
after ``results.json``. Resume trusts a marker or a journal line only, so it
never vouches for a file that is missing or partial.

Run versions are allocated by renaming a freshly created, already locked
staging folder to ``v<N>``; the rename fails if ``v<N>`` exists, so two
processes starting at once get different versions. While a run is active its
folder's ``.lock`` is held with ``flock``; the kernel releases it when the
process dies, however it dies.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from crystallize.errors import CrystallizeError, ReplicateRejected
from crystallize.run import ArtifactRecord, CompletedWork, ReplicateOutcome
from crystallize.store import ConditionRecord, ReplicateRecord
from crystallize_artifacts import layout
from crystallize_artifacts.commit import fsync_dir, write_atomic

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

__all__ = ["LocalRunStore", "RunLockedError", "to_json_bytes"]

log = logging.getLogger("crystallize.artifacts")


class RunLockedError(CrystallizeError, RuntimeError):
    """Another live process is writing the run folder this run needs."""


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays, without importing NumPy.
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


_HELD_LOCKS: set[int] = set()


def _close_inherited_locks() -> None:
    """In a child forked during a run: drop our copies of the run locks.

    ``flock`` belongs to the open file description, which a forked child
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


def _lock(path: Path) -> int | None:
    """Take the exclusive lock of ``path`` or raise :class:`RunLockedError`."""
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    for attempt in range(5):  # a probe (lock_held) holds it for an instant
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt == 4:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunLockedError(
                    f"{path.parent} is being written by another run (process {holder}); wait for it to "
                    "finish, or use ArtifactPlugin(versioned=True) so each run gets its own version"
                ) from None
            time.sleep(0.02)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD_LOCKS.add(fd)
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        _HELD_LOCKS.discard(fd)
        os.close(fd)  # closing the descriptor releases the flock


#: how old a staging or trash folder must be before another process may
#: remove it; a younger one may belong to a process between creating its lock
#: file and locking it.
STALE_AFTER_SECONDS = 60.0


def lock_held(folder: Path) -> bool:
    """Whether a live process holds ``folder``'s ``.lock``."""
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(folder / layout.LOCK, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _is_stale(folder: Path) -> bool:
    """A staging or trash folder whose owner is gone: old enough and unlocked."""
    try:
        if time.time() - folder.stat().st_mtime < STALE_AFTER_SECONDS:
            return False
    except OSError:
        return False
    return not lock_held(folder)


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _index_entry(record: ConditionRecord) -> dict[str, Any]:
    per_replicate = record.replicate_metrics
    return {
        "metrics": record.metrics,
        "replicates": record.replicates,
        "fingerprint": record.fingerprint,
        "replicate_metrics": None if per_replicate is None else {str(r): m for r, m in per_replicate.items()},
        "seeds": None if record.seeds is None else {str(r): s for r, s in record.seeds.items()},
    }


def _seeds(document: Mapping[str, Any]) -> dict[int, int | None] | None:
    """``{replicate: seed}`` as results.json or the index records it (``None`` if it does not)."""
    seeds = document.get("seeds")
    return None if not isinstance(seeds, dict) else {int(r): s for r, s in seeds.items()}


class LocalRunStore:
    """The :class:`~crystallize.store.RunStore` of ``crystallize-artifacts``."""

    def __init__(
        self,
        experiment_dir: Path,
        version: int,
        *,
        resumed: bool = False,
        durable: bool = False,
        readonly: bool = False,
        lock_fd: int | None = None,
    ) -> None:
        self.experiment_dir = experiment_dir
        self.version = version
        self.dir = layout.version_dir(experiment_dir, version)
        self.location = str(self.dir)
        self.resumed = resumed
        self.durable = durable
        self.readonly = readonly
        self._lock_fd = lock_fd
        self._dirs: set[str] = set()
        self._journals: dict[str, IO[bytes]] = {}
        self._unwritten: dict[str, list[bytes]] = {}
        self._pending_lines = 0
        self._last_flush = time.monotonic()
        # {condition: {replicate: (metrics, [records])}} of journaled replicates
        self._replicates: dict[str, dict[int, tuple[Mapping[str, Any], list[ArtifactRecord]]]] = {}
        self._seeds: dict[str, dict[int, int]] = {}  # {condition: {replicate: seed}} of journaled replicates
        self._completed: dict[str, list[ArtifactRecord] | None] = {}  # None: not read yet
        self._vouched: dict[str, list[ArtifactRecord] | None] = {}  # read, not yet accepted by resume
        self._journal_entries: dict[str, dict[int, Any]] = {}
        self._index: dict[str, Any] | None = None  # .index.json as loaded
        self._index_entries: dict[str, dict[str, Any]] = {}
        self._index_dirty = not resumed  # a new run always writes its index
        self._run_conditions: tuple[str, ...] | None = None
        self._changed = False
        self._guard = threading.Lock()

    # -- opening ------------------------------------------------------------------

    @classmethod
    def open_for_run(cls, experiment_dir: Path, *, versioned: bool, resume: bool, durable: bool) -> LocalRunStore:
        """Allocate (or, with ``resume``, reopen) the run folder and lock it."""
        experiment_dir.mkdir(parents=True, exist_ok=True)
        _clean_leftovers(experiment_dir)
        if resume:
            latest = (
                layout.latest_version(experiment_dir)
                if versioned
                else (0 if layout.version_dir(experiment_dir, 0).is_dir() else None)
            )
            if latest is not None:
                vdir = layout.version_dir(experiment_dir, latest)
                fd = _lock(vdir / layout.LOCK)
                return cls(experiment_dir, latest, resumed=True, durable=durable, lock_fd=fd)
        if versioned:
            version, fd = _allocate(experiment_dir)
        else:
            version, fd = 0, _replace_v0(experiment_dir)
        if durable:
            fsync_dir(experiment_dir)
        return cls(experiment_dir, version, durable=durable, lock_fd=fd)

    @classmethod
    def open_existing(cls, experiment_dir: Path, version: int | None = None) -> LocalRunStore | None:
        """Open an existing run for reading (the latest when ``version`` is ``None``)."""
        if version is None:
            version = layout.latest_version(experiment_dir)
            if version is None:
                return None
        if not layout.version_dir(experiment_dir, version).is_dir():
            return None
        return cls(experiment_dir, version, readonly=True)

    # -- RunStore protocol ------------------------------------------------------------

    def read_json(self, path: str) -> Any | None:
        file = self.dir / path
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ValueError(
                f"{file} is not valid JSON ({exc}); the file is corrupt: restore it, delete it, or rerun the experiment"
            ) from None

    def write_json(self, path: str, document: Any) -> None:
        self._writable()
        file = self.dir / path
        self._ensure_dir(file.parent)
        write_atomic(file, to_json_bytes(document, what=str(file)), durable=self.durable)

    def completed_condition(self, condition: str) -> ConditionRecord | None:
        entry = self._load_index().get(condition)
        if entry is not None and entry.get("stat") == self._stat_signature(condition):
            # The marker and results.json are byte-for-byte the files the index
            # describes (same inode, size and mtime): no need to read them.
            self._vouched[condition] = None  # artifact records are read if ever needed
            self._index_entries[condition] = entry
            per_replicate = entry.get("replicate_metrics")
            return ConditionRecord(
                condition=condition,
                replicates=entry.get("replicates"),
                fingerprint=entry.get("fingerprint"),
                metrics=entry.get("metrics", {}),
                replicate_metrics=None if per_replicate is None else {int(k): v for k, v in per_replicate.items()},
                seeds=_seeds(entry),
            )
        folder = self.dir / condition
        try:
            marker = (folder / layout.MARKER).read_bytes()
        except FileNotFoundError:
            return None
        try:
            raw = (folder / layout.RESULTS).read_bytes()
            doc = json.loads(raw)
            vouched = json.loads(marker) if marker.strip() else {}
        except (FileNotFoundError, ValueError) as exc:
            log.warning("%s: completion marker ignored, its results are unreadable (%s)", folder, exc)
            return None
        if not isinstance(doc, dict) or not isinstance(vouched, dict) or not isinstance(doc.get("metrics", {}), dict):
            log.warning("%s: completion marker ignored, results.json or the marker is not a JSON object", folder)
            return None
        expected = vouched.get("results_sha256")
        if expected is not None and expected != hashlib.sha256(raw).hexdigest():
            log.warning("%s: completion marker ignored, results.json does not match it", folder)
            return None
        try:
            records = [ArtifactRecord.from_json(r) for r in doc.get("artifacts", ())]
            per_replicate = doc.get("replicate_metrics")
            replicate_metrics = None if per_replicate is None else {int(k): v for k, v in per_replicate.items()}
            seeds = _seeds(doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("%s: completion marker ignored, results.json is malformed (%s)", folder, exc)
            return None
        self._vouched[condition] = records
        record = ConditionRecord(
            condition=condition,
            replicates=vouched.get("replicates", doc.get("replicates")),
            fingerprint=doc.get("fingerprint"),
            metrics=doc.get("metrics", {}),
            replicate_metrics=replicate_metrics,
            seeds=seeds,
        )
        self._index_entries[condition] = _index_entry(record)
        self._index_dirty = True  # read from the files: the index lacks it or is stale
        return record

    def finished_replicates(self, condition: str) -> dict[int, ReplicateRecord]:
        journal = self.dir / condition / layout.JOURNAL
        try:
            raw = journal.read_bytes()
        except FileNotFoundError:
            return {}
        found: dict[int, ReplicateRecord] = {}
        raw_entries: dict[int, Any] = {}
        seeds: dict[int, int] = {}
        for line in raw.split(b"\n")[:-1]:  # the last piece lacks its newline: unfinished
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            for entry in parsed if isinstance(parsed, list) else [parsed]:
                try:
                    replicate = int(entry["replicate"])
                    records = [ArtifactRecord.from_json(r) for r in entry.get("artifacts", ())]
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                if all(_has_size(self.dir / r.path, r.size) for r in records):
                    raw_entries[replicate] = entry
                    seed = entry.get("seed")
                    found[replicate] = ReplicateRecord(
                        condition, replicate, entry.get("metrics", {}), entry.get("fingerprint"), tuple(records), seed
                    )
                    if seed is not None:
                        seeds[replicate] = seed
        with self._guard:
            self._journal_entries[condition] = raw_entries
            bucket = self._replicates.setdefault(condition, {})
            for replicate, record in found.items():
                bucket[replicate] = (record.metrics, list(record.artifacts))
            self._seeds.setdefault(condition, {}).update(seeds)
        return found

    # -- writing (used by ArtifactPlugin) ---------------------------------------------------

    def write_artifact(self, condition: str, replicate: int, step: str, name: str, data: bytes) -> ArtifactRecord:
        """Commit one artifact atomically and return its record."""
        self._writable()
        rel = layout.artifact_relpath(condition, replicate, step, name)
        folder = f"{self.location}/replicate_{replicate}/{condition}/{step}"
        if folder not in self._dirs:
            self._make_dirs(folder)
        digest = hashlib.sha256(data).hexdigest()
        write_atomic(f"{folder}/{name}", data, durable=self.durable)
        self._changed = True
        return ArtifactRecord(name, step, condition, replicate, rel, len(data), digest)

    def record_replicate(self, outcome: ReplicateOutcome, fingerprint: str | None) -> None:
        """Journal a finished replicate (its artifacts are already committed).

        The entry is encoded at once — metrics that cannot be stored reject
        this replicate (:class:`~crystallize.errors.ReplicateRejected`) and no
        other — and written in batches (see :data:`JOURNAL_BATCH`).
        """
        self._writable()
        condition = outcome.condition
        records = [r for r in outcome.artifacts if isinstance(r, ArtifactRecord)] if outcome.artifacts else []
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
        self._unwritten.setdefault(condition, []).append(encoded)
        if outcome.metrics or records:  # nothing to remember otherwise: the journal has it
            self._replicates.setdefault(condition, {})[outcome.replicate] = (outcome.metrics, records)
        if seed is not None:  # for results.json, so that resume reports it
            self._seeds.setdefault(condition, {})[outcome.replicate] = seed
        self._changed = True
        self._pending_lines += 1
        if self._pending_lines >= JOURNAL_BATCH or time.monotonic() - self._last_flush >= JOURNAL_SECONDS:
            self.flush_journals()

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
        except (TypeError, ValueError) as exc:
            raise ReplicateRejected(
                f"the metrics of condition {condition!r} replicate {outcome.replicate} cannot be stored as "
                f"JSON: {exc}. Record numbers, strings, booleans, or lists and dicts of them "
                "(NumPy values are converted)"
            ) from None

    def prepare_resume(self, conditions: tuple[str, ...], completed: CompletedWork) -> None:
        """Make the folder vouch for exactly what resume reuses, before anything reruns.

        For every condition of this run that resume did not accept whole, its
        completion marker and results are removed, and its journal is
        rewritten to hold only the replicates being reused. Otherwise a rerun
        would overwrite artifacts that an old marker or journal line still
        vouches for — and a later resume (say, after reverting a treatment)
        would trust them. Conditions this run does not include are left alone.
        """
        self._writable()
        self._run_conditions = tuple(conditions)
        touched = False
        for condition in conditions:
            if condition in completed.conditions:
                if condition in self._vouched:
                    self._completed[condition] = self._vouched[condition]
                continue
            if self._index_entries.pop(condition, None) is not None or condition in self._load_index():
                self._index_dirty = True
            folder = self.dir / condition
            reused = completed.replicates.get(condition, {})
            entries = dict(self._journal_entries.get(condition, {}))
            missing = [r for r in reused if r not in entries]
            if missing:  # reused from results.json (a completed condition keeps no journal)
                for replicate, entry in self._entries_from_results(condition, missing).items():
                    entries[replicate] = entry
                    records = [ArtifactRecord.from_json(a) for a in entry["artifacts"]]
                    self._replicates.setdefault(condition, {})[replicate] = (entry["metrics"], records)
            self._replicates[condition] = {r: v for r, v in self._replicates.get(condition, {}).items() if r in reused}
            self._seeds[condition] = {r: v for r, v in self._seeds.get(condition, {}).items() if r in reused}
            for replicate in reused:
                seed = entries.get(replicate, {}).get("seed")
                if seed is not None:
                    self._seeds[condition][replicate] = seed
            kept = [entries[r] for r in sorted(reused) if r in entries]
            journal = folder / layout.JOURNAL
            if kept or journal.exists():  # first the journal of what is reused...
                self._ensure_dir(folder)
                write_atomic(journal, (_ENCODER.encode(kept).encode("utf-8") + b"\n") if kept else b"")
                touched = True
            for name in (layout.MARKER, layout.RESULTS):  # ...then withdraw the marker, then results
                try:
                    os.unlink(folder / name)
                    touched = True
                except FileNotFoundError:
                    pass
        if touched and self.durable:
            for condition in conditions:
                if (self.dir / condition).is_dir():
                    fsync_dir(self.dir / condition)

    def _entries_from_results(self, condition: str, replicates: list[int]) -> dict[int, dict[str, Any]]:
        """Journal entries for some replicates of a completed condition, from its results.json."""
        try:
            doc = json.loads((self.dir / condition / layout.RESULTS).read_bytes())
            per_replicate = doc["replicate_metrics"]
            artifacts = doc.get("artifacts", [])
            seeds = doc.get("seeds") or {}
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        entries = {}
        for replicate in replicates:
            if str(replicate) in per_replicate:
                entries[replicate] = {
                    "replicate": replicate,
                    "fingerprint": doc.get("fingerprint"),
                    "metrics": per_replicate[str(replicate)],
                    "artifacts": [a for a in artifacts if a.get("replicate") == replicate],
                    "seed": seeds.get(str(replicate)),
                }
        return entries

    def _records_outside_this_run(self) -> list[ArtifactRecord]:
        """Artifacts of conditions kept in this folder that this run did not include."""
        if self._run_conditions is None:
            return []
        records: list[ArtifactRecord] = []
        for entry in sorted(self.dir.iterdir()):
            name = entry.name
            if name in self._run_conditions or name.startswith((".", "replicate_")) or not entry.is_dir():
                continue
            if self.completed_condition(name) is not None:
                self._completed.setdefault(name, self._vouched[name])
                records.extend(self._records_of(name))
            else:
                records.extend(r for rec in self.finished_replicates(name).values() for r in rec.artifacts)
        return records

    def flush_journals(self, only: str | None = None) -> None:
        """Write buffered journal entries to their files (and fsync when durable)."""
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
        journal = self._journals.get(condition)
        if journal is None:
            folder = self.dir / condition
            self._ensure_dir(folder)
            journal = self._journals[condition] = open(folder / layout.JOURNAL, "ab")  # noqa: SIM115
            if journal.tell() > 0 and _last_byte(folder / layout.JOURNAL) != b"\n":
                line = b"\n" + line  # end a line torn by a crash: it stays unparseable, ours does not
        journal.write(line + b"\n")
        journal.flush()
        if self.durable:
            os.fsync(journal.fileno())

    def complete_condition(
        self, condition: str, replicates: int, fingerprint: str | None, metrics: Mapping[str, Any]
    ) -> None:
        """Commit ``results.json``, then the completion marker.

        Journal entries of the condition still buffered are dropped, not
        written: ``results.json`` and the marker supersede them (a crash before
        the marker only means its replicates run again).
        """
        self._writable()
        self._pending_lines -= len(self._unwritten.pop(condition, ()))
        done = self._replicates.get(condition, {})
        kept = {r: done[r] for r in sorted(done) if r < replicates}
        records = [record for _, recs in kept.values() for record in recs]
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
        folder = self.dir / condition
        self._ensure_dir(folder)
        raw = to_json_bytes(doc, what=f"the results of condition {condition!r}")
        write_atomic(folder / layout.RESULTS, raw, durable=self.durable)
        marker = {"replicates": replicates, "results_sha256": hashlib.sha256(raw).hexdigest()}
        write_atomic(folder / layout.MARKER, to_json_bytes(marker, what="marker"), durable=self.durable)
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
            try:
                doc = json.loads((self.dir / condition / layout.RESULTS).read_bytes())
                records = [ArtifactRecord.from_json(r) for r in doc.get("artifacts", ())]
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                records = []
            self._completed[condition] = records
        return records

    def artifact_records(self) -> list[ArtifactRecord]:
        """Every artifact this run holds that a marker or journal line vouches for."""
        records = [r for condition in list(self._completed) for r in self._records_of(condition)]
        for condition, reps in self._replicates.items():
            if condition not in self._completed:
                records.extend(r for _, recs in reps.values() for r in recs)
        return records

    def close(self, status: str) -> None:
        """Write the manifest (if anything changed), close journals, release the lock."""
        try:
            if not self.readonly:
                self.flush_journals()
            for journal in self._journals.values():
                journal.close()
            self._journals.clear()
            if not self.readonly and (self._changed or not (self.dir / layout.MANIFEST).exists()):
                manifest = {
                    "version": self.version,
                    "status": status,
                    "updated_at": _now(),
                    "artifacts": [r.to_json() for r in self.artifact_records() + self._records_outside_this_run()],
                }
                write_atomic(self.dir / layout.MANIFEST, to_json_bytes(manifest, what="manifest"), durable=self.durable)
            if not self.readonly:
                self._write_index()
        finally:
            _unlock(self._lock_fd)
            self._lock_fd = None

    # -- the completion index: a cache, validated by stat --------------------------------

    def _stat_signature(self, condition: str) -> list[int] | None:
        base = f"{self.location}/{condition}/"
        try:
            marker = os.stat(base + layout.MARKER)
            results = os.stat(base + layout.RESULTS)
        except OSError:
            return None
        return [marker.st_ino, marker.st_size, marker.st_mtime_ns, results.st_ino, results.st_size, results.st_mtime_ns]

    def _load_index(self) -> dict[str, Any]:
        if self._index is None:
            try:
                loaded = json.loads((self.dir / layout.INDEX).read_bytes())
            except (OSError, ValueError):
                loaded = None
            self._index = loaded.get("conditions", {}) if isinstance(loaded, dict) else {}
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
        if entries != self._load_index():
            document = {"conditions": entries}
            write_atomic(self.dir / layout.INDEX, to_json_bytes(document, what="index"), durable=self.durable)

    # -- helpers ------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.readonly:
            raise RuntimeError(f"{self.dir} was opened read-only")

    def _ensure_dir(self, folder: Path) -> None:
        key = str(folder)
        if key not in self._dirs:
            self._make_dirs(key)

    def _make_dirs(self, folder: str) -> None:
        """Create ``folder`` and missing parents top-down from the nearest known one
        (``mkdir(parents=True)`` first fails on every missing level, bottom-up)."""
        missing = []
        parent = folder
        while parent not in self._dirs and parent != self.location and len(parent) > 1:
            missing.append(parent)
            parent = os.path.dirname(parent)
        for path in reversed(missing):
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            except FileNotFoundError:  # something above vanished: let the OS sort it out
                os.makedirs(path, exist_ok=True)
            self._dirs.add(path)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock_fd"] = None
        state["_journals"] = {}
        state["_unwritten"] = {}
        state["_pending_lines"] = 0
        state["_replicates"] = {}
        state["_seeds"] = {}
        state["_completed"] = {}
        state["_dirs"] = set()
        state["_vouched"] = {}
        state["_index"] = None
        state["_index_entries"] = {}
        state["_index_dirty"] = False
        state["_journal_entries"] = {}
        state["_guard"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "resumed" if self.resumed else "new"
        return f"<LocalRunStore {self.dir} ({mode})>"


# -- version allocation ---------------------------------------------------------------------


def _stage(experiment_dir: Path) -> tuple[Path, int | None]:
    staging = experiment_dir / f".staging-{secrets.token_hex(8)}"
    staging.mkdir()
    return staging, _lock(staging / layout.LOCK)


def _allocate(experiment_dir: Path) -> tuple[int, int | None]:
    """Atomically claim the next free ``v<N>``; the folder appears already locked."""
    staging, fd = _stage(experiment_dir)
    latest = layout.latest_version(experiment_dir)
    version = 0 if latest is None else latest + 1
    while True:
        try:
            os.rename(staging, layout.version_dir(experiment_dir, version))
            return version, fd
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                _unlock(fd)
                shutil.rmtree(staging, ignore_errors=True)
                raise
            version += 1


def _replace_v0(experiment_dir: Path) -> int | None:
    """Start ``v0`` afresh (``versioned=False``): move the old one aside, then delete it."""
    v0 = layout.version_dir(experiment_dir, 0)
    staging, fd = _stage(experiment_dir)
    old_fd = None
    try:
        if v0.is_dir():
            old_fd = _lock(v0 / layout.LOCK)
            trash = experiment_dir / f".trash-{secrets.token_hex(8)}"
            os.rename(v0, trash)
        else:
            trash = None
        try:
            os.rename(staging, v0)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise RunLockedError(f"another run created {v0} at the same time; retry") from None
            raise
    except BaseException:
        _unlock(fd)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        _unlock(old_fd)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return fd


def _clean_leftovers(experiment_dir: Path) -> None:
    """Remove staging and trash folders left by processes that died."""
    try:
        entries = list(experiment_dir.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith((".staging-", ".trash-")) and entry.is_dir() and _is_stale(entry):
            shutil.rmtree(entry, ignore_errors=True)
