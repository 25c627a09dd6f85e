"""A storage plugin keeping runs in memory: the reference implementation of the store contract.

:class:`MemoryStorage` is short on purpose: it shows a third party everything
a storage plugin does — the two hooks that open stores, and the
:class:`~crystallize.plugin.RunStore` object that the core writes through —
with nothing else in the way. It is also useful in tests. It keeps what it
stores in this process only, so it works with serial and thread execution,
not with worker processes.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

import attrs

from crystallize._digests import hash_bytes
from crystallize._dispatch import hookimpl
from crystallize._records import ArtifactRecord, CompletedWork, ReplicateOutcome
from crystallize._store import ConditionRecord, ReplicateRecord
from crystallize.errors import ReplicateRejected

if TYPE_CHECKING:
    from crystallize._experiment import Experiment
    from crystallize._records import Run

__all__ = ["MemoryStorage", "MemoryRunStore", "DIGEST_ALGORITHM"]

#: How artifact digests are computed here. The standard library's SHA-256 keeps the
#: core free of hashing packages; records carry the algorithm, so readers rehash alike.
DIGEST_ALGORITHM = "sha256"


@attrs.define(eq=False)
class _StoredRun:
    """Everything one run stored."""

    documents: dict[str, str] = attrs.field(factory=dict)  # path -> JSON text
    artifacts: dict[str, bytes] = attrs.field(factory=dict)  # path -> bytes
    completed: dict[str, ConditionRecord] = attrs.field(factory=dict)
    finished: dict[str, dict[int, ReplicateRecord]] = attrs.field(factory=dict)
    status: str = "running"
    open_for_writing: bool = False


class MemoryStorage:
    """Store runs in memory, keyed by experiment and version.

    ``storage.runs[experiment_key][version]`` holds what each run stored.

    :param versioned: ``True`` (the default): each run takes the next version.
        ``False``: every run is version 0 and a rerun replaces it.
    """

    plugin_name = "memory-storage"

    def __init__(self, versioned: bool = True) -> None:
        self.versioned = versioned
        self.runs: dict[str, dict[int, _StoredRun]] = {}
        self._lock = threading.Lock()

    @hookimpl
    def open_store(self, experiment: Experiment, run: Run) -> MemoryRunStore:
        with self._lock:
            versions = self.runs.setdefault(experiment.key, {})
            if run.strategy == "resume" and versions:
                version = max(versions) if self.versioned else 0
                if version in versions:
                    stored = versions[version]
                    if stored.open_for_writing:
                        raise RuntimeError(f"memory://{experiment.key}/v{version} is being written by another run")
                    stored.open_for_writing = True
                    return MemoryRunStore(self._lock, stored, experiment.key, version, resumed=True)
            version = (max(versions) + 1 if versions else 0) if self.versioned else 0
            if version in versions and versions[version].open_for_writing:
                raise RuntimeError(f"memory://{experiment.key}/v{version} is being written by another run")
            stored = versions[version] = _StoredRun(open_for_writing=True)
            return MemoryRunStore(self._lock, stored, experiment.key, version)

    @hookimpl
    def locate_run(self, experiment: Experiment, version: int | None) -> MemoryRunStore | None:
        with self._lock:
            versions = self.runs.get(experiment.key, {})
            if version is None:
                version = max(versions, default=None)
            if version is None or version not in versions:
                return None
            return MemoryRunStore(self._lock, versions[version], experiment.key, version, readonly=True)

    def __repr__(self) -> str:
        return f"MemoryStorage(versioned={self.versioned!r})"


class MemoryRunStore:
    """The :class:`~crystallize.plugin.RunStore` of :class:`MemoryStorage`."""

    def __init__(
        self,
        lock: threading.Lock,
        stored: _StoredRun,
        key: str,
        version: int,
        *,
        resumed: bool = False,
        readonly: bool = False,
    ) -> None:
        self._lock = lock
        self._stored = stored
        self.version = version
        self.location = f"memory://{key}/v{version}"
        self.resumed = resumed
        self.readonly = readonly
        self.crashed: str | None = None  # memory dies with its process: nothing is left running

    # -- reading ----------------------------------------------------------------------

    def read_json(self, path: str) -> Any | None:
        text = self._stored.documents.get(path)
        return None if text is None else json.loads(text)

    def completed_condition(self, condition: str) -> ConditionRecord | None:
        return self._stored.completed.get(condition)

    def finished_replicates(self, condition: str) -> Mapping[int, ReplicateRecord]:
        artifacts = self._stored.artifacts
        with self._lock:
            records = dict(self._stored.finished.get(condition, {}))
        return {r: rec for r, rec in records.items() if all(a.path in artifacts for a in rec.artifacts)}

    # -- writing ----------------------------------------------------------------------

    def prepare_resume(
        self,
        conditions: tuple[str, ...],
        completed: CompletedWork,
        *,
        replicates: int | None = None,
        fingerprints: Mapping[str, str] | None = None,
    ) -> None:
        self._writable()
        with self._lock:
            for condition in conditions:
                if condition in completed.conditions:
                    continue
                self._stored.completed.pop(condition, None)
                reused = completed.replicates.get(condition, {})
                finished = self._stored.finished.get(condition, {})
                self._stored.finished[condition] = {r: rec for r, rec in finished.items() if r in reused}

    def write_artifact(self, condition: str, replicate: int, step: str, name: str, data: bytes) -> ArtifactRecord:
        self._writable()
        path = f"replicate_{replicate}/{condition}/{step}/{name}"
        with self._lock:
            self._stored.artifacts[path] = bytes(data)
        return ArtifactRecord(name, step, condition, replicate, path, len(data), hash_bytes(data, DIGEST_ALGORITHM))

    def open_artifact(self, condition: str, replicate: int, step: str, name: str) -> _MemorySink:
        self._writable()
        return _MemorySink(self, condition, replicate, step, name)

    def write_artifact_file(
        self,
        condition: str,
        replicate: int,
        step: str,
        name: str,
        source: str | os.PathLike[str],
        *,
        move: bool = False,
    ) -> ArtifactRecord:
        with open(source, "rb") as f:
            record = self.write_artifact(condition, replicate, step, name, f.read())
        if move:
            os.unlink(source)
        return record

    def read_artifact(self, path: str) -> BinaryIO:
        with self._lock:
            data = self._stored.artifacts.get(path)
        if data is None:
            raise FileNotFoundError(f"{self.location}/{path}: no such artifact")
        return io.BytesIO(data)

    def record_replicate(self, outcome: ReplicateOutcome, fingerprint: str | None) -> None:
        self._writable()
        if outcome.error is not None:
            return  # a failed replicate is never finished
        try:
            metrics = json.loads(json.dumps(outcome.metrics))
        except (TypeError, ValueError, RecursionError) as exc:
            why = "they are nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ReplicateRejected(
                f"the metrics of condition {outcome.condition!r} replicate {outcome.replicate} cannot be stored "
                f"as JSON: {why}. Record numbers, strings, booleans, or lists and dicts of them"
            ) from None
        records = tuple(a for a in outcome.artifacts if isinstance(a, ArtifactRecord))
        record = ReplicateRecord(outcome.condition, outcome.replicate, metrics, fingerprint, records, outcome.seed)
        with self._lock:
            self._stored.finished.setdefault(outcome.condition, {})[outcome.replicate] = record

    def complete_condition(
        self, condition: str, replicates: int, fingerprint: str | None, metrics: Mapping[str, Any]
    ) -> None:
        self._writable()
        stored = json.loads(self._dumps(metrics, f"the metrics of condition {condition!r}"))
        with self._lock:
            finished = {r: rec for r, rec in sorted(self._stored.finished.get(condition, {}).items()) if r < replicates}
            per_replicate = {r: rec.metrics for r, rec in finished.items()}
            seeds = {r: rec.seed for r, rec in finished.items() if rec.seed is not None}
            record = ConditionRecord(condition, replicates, fingerprint, stored, per_replicate, seeds)
            self._stored.completed[condition] = record

    def write_json(self, path: str, document: Any) -> None:
        self._writable()
        text = self._dumps(document, f"{self.location}/{path}")
        with self._lock:
            self._stored.documents[path] = text

    def close(self, status: str) -> None:
        if not self.readonly:
            with self._lock:
                self._stored.status = status
                self._stored.open_for_writing = False

    # -- helpers ----------------------------------------------------------------------

    def _writable(self) -> None:
        if self.readonly:
            raise RuntimeError(f"{self.location} was opened read-only (locate_run)")

    @staticmethod
    def _dumps(document: Any, what: str) -> str:
        try:
            return json.dumps(document)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} cannot be written as JSON: {exc}") from None

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            f"{self.location} lives in this process's memory (MemoryStorage) and cannot travel to worker "
            "processes; run with serial or thread execution"
        )

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "resumed" if self.resumed else "new"
        return f"<MemoryRunStore {self.location} ({mode})>"


class _MemorySink(io.BytesIO):
    """An artifact being streamed into a :class:`MemoryRunStore`: committed on ``close``."""

    def __init__(self, store: MemoryRunStore, condition: str, replicate: int, step: str, name: str) -> None:
        super().__init__()
        self._store = store
        self._target = (condition, replicate, step, name)
        self.record: ArtifactRecord | None = None
        self._discarded = False

    def close(self) -> None:
        if not self.closed and not self._discarded:
            self.record = self._store.write_artifact(*self._target, self.getvalue())
        super().close()

    def discard(self) -> None:
        self._discarded = True
        super().close()

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is not None:
            self.discard()
        else:
            self.close()
