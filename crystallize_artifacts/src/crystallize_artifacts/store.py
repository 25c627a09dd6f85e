"""One run's store: :class:`FolderRunStore`, the same logic over a local folder or an object store.

Ordering is what makes a crash harmless. For every replicate: its artifacts
are committed first, then it is recorded in the condition's journal
(:mod:`~crystallize_artifacts.journal`). For every condition: ``results.json``
is committed only after all its replicates are journaled, and the completion
marker only after ``results.json`` (:mod:`~crystallize_artifacts.completion`).
Resume trusts a marker or a journal line only, so it never vouches for a
file that is missing or partial. ``manifest.json``
(:mod:`~crystallize_artifacts.manifest`) is removed before a resumed run
changes anything and written again when it closes, so a manifest that exists
always describes the folder as it is.

Where the bytes go is the business of a ``backends.RunFolder``:
:mod:`~crystallize_artifacts.local` (safe paths, atomic renames, a file lock)
or :mod:`~crystallize_artifacts.objects` (whole objects, conditional creates,
a lease). Every document read back is parsed by
:mod:`crystallize_artifacts.documents` (a wrong shape is reported, never
trusted).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from crystallize.plugin import (
    ArtifactRecord,
    CompletedWork,
    ConditionRecord,
    DocumentError,
    ReplicateOutcome,
    ReplicateRecord,
    name_problem,
)
from crystallize.plugin import documents as doc_checks
from crystallize_artifacts import completion, documents, journal, layout, manifest, runlock, safepaths
from crystallize_artifacts.backends import FOLDER, ExperimentFolder, RunFolder
from crystallize_artifacts.completion import CompletionIndex
from crystallize_artifacts.encoding import json_exact, now, to_json_bytes
from crystallize_artifacts.runlock import RunEndedError, RunLockedError, lock_held
from crystallize_artifacts.safepaths import UnsafePathError
from crystallize_artifacts.streams import ArtifactWriter, digest_bytes, hash_file

__all__ = [
    "FolderRunStore",
    "LocalRunStore",
    "RunLockedError",
    "RunEndedError",
    "UnsafePathError",
    "lock_held",
    "to_json_bytes",
]

log = logging.getLogger("crystallize.artifacts")


def _check_artifact_names(condition: str, replicate: int, step: str, name: str) -> None:
    """Every name is checked again where it becomes a path (a step's ``step_name`` or a
    treatment's ``name`` may have changed since validation)."""
    safepaths.check_segment(condition, "condition")
    safepaths.check_segment(step, "step")
    safepaths.check_segment(name, "artifact")
    if type(replicate) is not int or replicate < 0:
        raise ValueError(f"replicate must be a non-negative int, got {replicate!r}")


class FolderRunStore:
    """The :class:`~crystallize.plugin.RunStore` of ``crystallize-artifacts``, over any ``backends.RunFolder``."""

    def __init__(self, folder: RunFolder, *, resumed: bool = False, experiment: ExperimentFolder | None = None) -> None:
        self.folder = folder
        self.experiment = experiment
        self.version = folder.version
        self.location = folder.location
        self.resumed = resumed
        self.durable = folder.durable
        self.readonly = folder.readonly
        self._closed = False
        self._inflight = 0
        self._journal = journal.Journal()
        # {condition: {replicate: (metrics, [records])}} of journaled replicates
        self._replicates: dict[str, dict[int, tuple[Mapping[str, Any], list[ArtifactRecord]]]] = {}
        self._seeds: dict[str, dict[int, Any]] = {}  # {condition: {replicate: seed}} of journaled replicates
        self._completed: dict[str, list[ArtifactRecord] | None] = {}  # None: not read yet
        self._vouched: dict[str, list[ArtifactRecord] | None] = {}  # read, not yet accepted by resume
        self._journal_entries: dict[str, dict[int, Any]] = {}
        self._index = CompletionIndex(dirty=not resumed)  # a new run always writes its index
        self._run_conditions: tuple[str, ...] | None = None
        self._changed = False
        self._guard = threading.Lock()
        self._idle = threading.Condition(self._guard)
        #: who last held this run when opening found that its process died (see ``crashes``)
        self.crashed: str | None = getattr(folder, "crashed", None)

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def open_for_run(
        cls,
        experiment: ExperimentFolder | Path,
        *,
        versioned: bool,
        resume: bool,
        durable: bool,
        token: bytes | None = None,
    ) -> FolderRunStore:
        """Claim (or, with ``resume``, reopen) a run folder and hold it.

        :param experiment: where the experiment's runs are (a path means a local folder).
        :param token: what the lock holds while this run owns it
            (``runlock.make_token``).
        """
        experiment = _experiment_folder(experiment)
        token = token or runlock.make_token(secrets.token_hex(16))
        folder, resumed = experiment.open_run(versioned=versioned, resume=resume, durable=durable, token=token)
        return cls(folder, resumed=resumed, experiment=experiment)

    @classmethod
    def open_existing(cls, experiment: ExperimentFolder | Path, version: int | None = None) -> FolderRunStore | None:
        """Open an existing run for reading (the latest when ``version`` is ``None``)."""
        experiment = _experiment_folder(experiment)
        folder = experiment.existing(version)
        return None if folder is None else cls(folder, experiment=experiment)

    @property
    def dir(self) -> Path:
        """The run folder, for stores on a file system."""
        return Path(self.location)

    @property
    def experiment_dir(self) -> Path:
        return Path(self.location).parent

    # -- entering and leaving writes -------------------------------------------------------

    def _enter(self) -> RunFolder:
        """Start a write: refused after close, or (in a worker) once the run lost its lock."""
        folder = self.folder
        with self._guard:
            if self.readonly:
                raise RuntimeError(f"{self.location} was opened read-only")
            if self._closed:
                raise RunEndedError(
                    f"run {self.location} has ended; a write that arrives after Experiment.run() returned "
                    "(from a thread a step left running, say) is refused, so committed files stay as verified"
                )
            folder.attach()
            self._inflight += 1
        try:
            folder.check_owner()
        except BaseException:
            self._leave()
            raise
        return folder

    def _leave(self) -> None:
        with self._guard:
            self._inflight -= 1
            if self._inflight == 0 and self._closed:
                self._idle.notify_all()

    # -- documents -------------------------------------------------------------------------

    def read_json(self, path: str) -> Any | None:
        raw = self.folder.read(path)
        if raw is None:
            return None
        try:
            return doc_checks.parse_json(raw, f"{self.location}/{path}")
        except DocumentError as exc:
            raise DocumentError(
                exc.source, f"{exc.problem}; the file is corrupt: restore it, delete it, or rerun the experiment"
            ) from None

    def read_json_bytes(self, name: str) -> bytes | None:
        """The raw bytes of a document of the run (``None`` if missing)."""
        return self.folder.read(name)

    def write_json(self, path: str, document: Any) -> None:
        safepaths.split_relpath(path, self.location)
        folder = self._enter()
        try:
            folder.write(path, to_json_bytes(document, what=f"{self.location}/{path}"))
        finally:
            self._leave()

    # -- completed conditions --------------------------------------------------------------------

    def completed_condition(self, condition: str) -> ConditionRecord | None:
        safepaths.check_segment(condition, "condition")
        record = self._index.lookup(self.folder, condition)
        if record is not None:
            # The marker and results.json are the very files the index describes: no need to read them.
            self._vouched[condition] = None  # artifact records are read if ever needed
            return record
        results = completion.read(self.folder, condition)
        if results is None:
            return None
        self._vouched[condition] = list(results.artifacts)
        record = ConditionRecord(
            condition=condition,
            replicates=results.replicates,
            fingerprint=results.fingerprint,
            metrics=results.metrics,
            replicate_metrics=results.replicate_metrics,
            seeds=results.seeds,
        )
        self._index.entries[condition] = completion.index_entry(record)
        self._index.dirty = True  # read from the files: the index lacks it or is stale
        return record

    def finished_replicates(self, condition: str) -> dict[int, ReplicateRecord]:
        safepaths.check_segment(condition, "condition")
        entries, problems = journal.read_entries(self.folder, condition)
        for problem in problems:
            log.warning("%s; that replicate runs again", problem)
        sizes = self.folder.sizes({r.path for entry in entries.values() for r in entry.artifacts})
        found: dict[int, ReplicateRecord] = {}
        raw_entries: dict[int, Any] = {}
        seeds: dict[int, Any] = {}
        for replicate, entry in entries.items():
            if all(sizes.get(r.path) == r.size for r in entry.artifacts):
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

    # -- artifacts ---------------------------------------------------------------------------------

    def write_artifact(self, condition: str, replicate: int, step: str, name: str, data: bytes) -> ArtifactRecord:
        """Commit one artifact atomically and return its record."""
        _check_artifact_names(condition, replicate, step, name)
        folder = self._enter()
        try:
            folder.write_artifact((f"replicate_{replicate}", condition, step), name, data)
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
            digest_bytes(data),
        )

    def open_artifact(self, condition: str, replicate: int, step: str, name: str) -> ArtifactWriter:
        """A binary file object streaming one artifact; committed whole when closed.

        Its ``record`` describes the artifact once closed; leaving a ``with``
        block by an exception discards it.
        """
        _check_artifact_names(condition, replicate, step, name)
        folder = self._enter()
        try:
            sink = folder.open_artifact((f"replicate_{replicate}", condition, step), name)
        except BaseException:
            self._leave()
            raise
        path = layout.artifact_relpath(condition, replicate, step, name)

        def finish(size: int, digest: str) -> ArtifactRecord:
            self._changed = True
            return ArtifactRecord(name, step, condition, replicate, path, size, digest)

        return ArtifactWriter(sink, finish, f"{self.location}/{path}", on_end=self._leave)

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
        """Commit the local file ``source`` as an artifact: renamed into place when ``move`` and the
        store is on the same file system, else copied (then removed when ``move``)."""
        _check_artifact_names(condition, replicate, step, name)
        source = os.fspath(source)
        path = layout.artifact_relpath(condition, replicate, step, name)
        if move and self.folder.renames:
            size, digest = hash_file(source)
            folder = self._enter()
            try:
                moved = folder.move_artifact((f"replicate_{replicate}", condition, step), name, source)
            finally:
                self._leave()
            if moved:
                self._changed = True
                return ArtifactRecord(name, step, condition, replicate, path, size, digest)
        with open(source, "rb") as src, self.open_artifact(condition, replicate, step, name) as out:
            while block := src.read(1 << 22):
                out.write(block)
        if move:
            os.unlink(source)
        return out.record  # type: ignore[no-any-return]

    def read_artifact(self, path: str) -> BinaryIO:
        """A binary file object reading one of the run's artifacts (``path`` as in its record)."""
        safepaths.split_relpath(path, self.location)
        return self.folder.open_read(path)

    # -- replicates -----------------------------------------------------------------------------------

    def record_replicate(self, outcome: ReplicateOutcome, fingerprint: str | None) -> None:
        """Journal a finished replicate (its artifacts are already committed).

        The entry is encoded at once — metrics that cannot be stored reject
        this replicate (:class:`~crystallize.plugin.ReplicateRejected`) and no
        other — and written in batches (see ``journal.JOURNAL_BATCH``).
        A failed replicate is not journaled; it writes out the condition's
        buffered entries, so that resume finds the replicates that succeeded.

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
        if len(records) > 1:  # a step that wrote a file twice: the last write is what is stored
            records = list({r.path: r for r in records}.values())
        seed = outcome.seed
        if not outcome.metrics and not records and (seed is None or type(seed) is int):
            encoded = journal.quick_entry(outcome.replicate, fingerprint, seed)  # nothing the encoder could refuse
        else:
            encoded = journal.encode_entry(outcome, fingerprint, records)
            try:
                exact = json_exact(outcome.metrics)
            except RecursionError:
                exact = False
            if not exact:
                outcome.metrics = json.loads(encoded)["metrics"]
        folder = self._enter()
        try:
            if outcome.metrics or records:  # nothing to remember otherwise: the journal has it
                self._replicates.setdefault(condition, {})[outcome.replicate] = (outcome.metrics, records)
            if seed is not None:  # for results.json, so that resume reports it
                self._seeds.setdefault(condition, {})[outcome.replicate] = seed
            self._changed = True
            self._journal.add(folder, condition, encoded)
        finally:
            self._leave()

    def flush_journals(self, only: str | None = None) -> None:
        """Write buffered journal entries (and fsync them when durable)."""
        folder = self._enter()
        try:
            self._journal.flush(folder, only)
        finally:
            self._leave()

    def complete_condition(
        self, condition: str, replicates: int, fingerprint: str | None, metrics: Mapping[str, Any]
    ) -> None:
        """Commit ``results.json``, then the completion marker.

        Journal entries of the condition still buffered are dropped, not
        written: ``results.json`` and the marker supersede them (a crash before
        the marker only means its replicates run again).
        """
        safepaths.check_segment(condition, "condition")
        folder = self._enter()
        try:
            self._journal.drop(condition)
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
                "completed_at": now(),
            }
            raw = to_json_bytes(doc, what=f"the results of condition {condition!r}")
            completion.commit(folder, condition, raw, replicates)
        finally:
            self._leave()
        self._completed[condition] = records
        self._index.entries[condition] = completion.index_entry_of(doc)
        self._index.dirty = True
        self._changed = True

    # -- resume ---------------------------------------------------------------------------------------

    def prepare_resume(
        self,
        conditions: tuple[str, ...],
        completed: CompletedWork,
        *,
        replicates: int | None = None,
        fingerprints: Mapping[str, str] | None = None,
    ) -> None:
        """Make the run vouch for exactly what resume reuses, before anything reruns.

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
        folder = self._enter()
        try:
            self._prepare_resume(folder, conditions, completed, replicates, fingerprints or {})
        finally:
            self._leave()

    def _prepare_resume(
        self,
        folder: RunFolder,
        conditions: tuple[str, ...],
        completed: CompletedWork,
        replicates: int | None,
        fingerprints: Mapping[str, str],
    ) -> None:
        self._run_conditions = tuple(conditions)
        if any(c not in completed.conditions for c in conditions):
            manifest.withdraw(folder)
        existing: set[str] | None = None  # condition folders, listed once if any condition needs work
        for condition in conditions:
            safepaths.check_segment(condition, "condition")
            if condition in completed.conditions:
                if condition in self._vouched:
                    self._completed[condition] = self._vouched[condition]
                continue
            self._index.forget(folder, condition)
            if existing is None:
                existing = {name for name, kind in folder.entries() if kind == FOLDER}
            reused = completed.replicates.get(condition, {})
            entries = dict(self._journal_entries.get(condition, {}))
            if condition not in existing:
                from_results: dict[int, dict[str, Any]] = {}
            else:
                from_results = completion.replicate_entries(folder, condition)
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
            if condition not in existing and not kept:
                continue
            journal.rewrite(folder, condition, kept)  # first the journal...
            completion.withdraw(folder, condition)  # ...then withdraw the marker, then results

    # -- the run's artifacts ----------------------------------------------------------------------------

    def _records_of(self, condition: str) -> list[ArtifactRecord]:
        """A completed condition's artifact records (read from results.json if not loaded)."""
        records = self._completed.get(condition)
        if records is None:
            found = completion.read(self.folder, condition)
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

    def _records_outside_this_run(self) -> list[ArtifactRecord]:
        """Artifacts of conditions kept in this folder that this run did not include."""
        if self._run_conditions is None:
            return []
        records: list[ArtifactRecord] = []
        names = sorted(name for name, kind in self.folder.entries() if kind == FOLDER)
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

    def missing_outputs(self) -> list[str]:
        """Paths ``manifest.json`` lists that are neither stored nor pruned by retention."""
        return manifest.missing_outputs(self.folder)

    # -- closing ---------------------------------------------------------------------------------------

    def close(self, status: str) -> None:
        """Write the manifest (if anything changed), close journals, release the run.

        Writes still running in other threads finish first; later ones are
        refused (``runlock.RunEndedError``). A
        resumed store closed before ``prepare_resume`` (the resume was
        refused) writes nothing: the folder stays exactly as it was.
        """
        with self._guard:
            self._closed = True
            while self._inflight:
                self._idle.wait()
        refused = self.resumed and self._run_conditions is None  # resume refused before it prepared anything
        folder = self.folder
        try:
            if not self.readonly and folder.attached and not refused:
                self._journal.flush(folder)
                folder.close_journals()
                if self._changed or folder.size(layout.MANIFEST) is None:
                    records = self.artifact_records() + self._records_outside_this_run()
                    manifest.write(folder, self.version, status, records)
                self._index.write(folder, list(self._completed), self._run_conditions)
        finally:
            folder.release()

    # -- pickling ----------------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(
            _journal=journal.Journal(),
            _replicates={},
            _seeds={},
            _completed={},
            _vouched={},
            _index=CompletionIndex(dirty=False),
            _journal_entries={},
            _inflight=0,
            _guard=None,
            _idle=None,
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._guard = threading.Lock()
        self._idle = threading.Condition(self._guard)

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "resumed" if self.resumed else "new"
        return f"<{type(self).__name__} {self.location} ({mode})>"


def _experiment_folder(experiment: ExperimentFolder | Path | str) -> ExperimentFolder:
    if isinstance(experiment, (str, os.PathLike)):
        from crystallize_artifacts.local import LocalExperimentFolder

        return LocalExperimentFolder(Path(experiment))
    return experiment


#: the store of runs kept on a file system (the name crystallize-artifacts has always used).
LocalRunStore = FolderRunStore
