"""The storage protocol: one object per run, :class:`RunStore`.

A storage plugin is a plugin whose ``open_store`` hook returns a
:class:`RunStore` for a run (and whose ``locate_run`` returns one, read-only,
for an earlier run). That object is the whole of storage: the core calls its
write side in a fixed order, and other plugins (metadata, resume, yours) use
its read side and :meth:`RunStore.write_json`, without knowing where or how
things are kept.

The core calls, for one run::

    open_store                      -> store (run.store)
    store.prepare_resume(...)       strategy="resume" on a store continuing a run
    before_run hooks
    store.write_artifact(...)       where the replicate runs, per artifact.write()
    store.open_artifact(...)        ... per artifact.open("wb") (the sink commits when closed)
    store.write_artifact_file(...)  ... per artifact.write_file(path)
    store.record_replicate(...)     main process, per finished (condition, replicate)
    store.complete_condition(...)   main process, per condition whose every replicate succeeded
    after_run hooks                 (plugins may still store.write_json(...))
    store.close(status)             always, last

Paths are ``/``-separated and relative to the run's location. Every write is
atomic: a reader sees the old content or the new one, never a partial one; a
store vouches for a replicate or a condition only once everything it
records is committed. :class:`crystallize.testing.MemoryStorage` is a
complete reference implementation, and
:class:`crystallize.testing.RunStoreContract` the conformance tests every
store passes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, BinaryIO, Protocol, runtime_checkable

import attrs

from crystallize._records import ArtifactRecord, CompletedWork, ReplicateOutcome

__all__ = ["RunStore", "ArtifactSink", "ConditionRecord", "ReplicateRecord", "METADATA_FILENAME"]

#: The document the metadata plugin writes in every run (``replicates``, ``id``, ``name``, ...).
METADATA_FILENAME = "metadata.json"


@attrs.frozen
class ConditionRecord:
    """A condition that was completed (every replicate succeeded).

    :ivar replicates: how many replicates the marker vouches for (``None``
        for folders written by crystallize-ml, whose markers are empty).
    :ivar fingerprint: hash of the condition's treatment when it ran.
    :ivar metrics: ``{metric: [values over replicates]}`` from ``results.json``.
    :ivar replicate_metrics: the same split by replicate, when recorded.
    :ivar seeds: ``{replicate: seed}`` the replicates ran with, when recorded.
    """

    condition: str
    replicates: int | None
    fingerprint: str | None
    metrics: Mapping[str, list[Any]]
    replicate_metrics: Mapping[int, Mapping[str, list[Any]]] | None = None
    seeds: Mapping[int, int | None] | None = None


@attrs.frozen
class ReplicateRecord:
    """A replicate that finished without error inside an unfinished condition.

    :ivar seed: the seed it ran with (``ReplicateOutcome.seed``), when recorded.
    """

    condition: str
    replicate: int
    metrics: Mapping[str, list[Any]]
    fingerprint: str | None = None
    artifacts: tuple[ArtifactRecord, ...] = ()
    seed: int | None = None


@runtime_checkable
class ArtifactSink(Protocol):
    """One artifact being streamed into a store: a writable binary file object.

    Nothing is visible until :meth:`close` commits it whole (then
    :attr:`record` describes it); :meth:`discard` drops what was written, and
    leaving a ``with`` block by an exception discards. Memory held stays
    bounded by a buffer, not by the artifact's size (a store keeping
    artifacts in memory excepted).
    """

    #: the artifact's record once committed, ``None`` before.
    record: ArtifactRecord | None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write bytes; returns how many."""
        ...

    def close(self) -> None:
        """Commit: the artifact appears whole, replacing an earlier write of it."""
        ...

    def discard(self) -> None:
        """Drop what was written; nothing appears."""
        ...

    def __enter__(self) -> ArtifactSink: ...

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> Any: ...


@runtime_checkable
class RunStore(Protocol):
    """One run's storage: what the core writes through, and what other plugins read.

    Implementations are safe to use from several threads (artifacts are
    written concurrently under thread execution) and pickle, because they
    travel to worker processes with the run (a store that cannot, such as an
    in-memory one, raises a ``TypeError`` saying so when pickled). A store
    returned by ``locate_run`` is read-only: its write methods raise.
    """

    #: the run version (``v<N>``).
    version: int
    #: human-readable location of the run (a filesystem path or URL).
    location: str
    #: ``True`` if this store continues an earlier run (``strategy="resume"``).
    resumed: bool
    #: set when opening the run found that the process that last wrote it died without
    #: ending it (killed, power loss): who that was (``"process 12 on host (run ab12)"``).
    #: The store has then recorded the run as crashed (``metadata.json`` ``status``
    #: ``"crashed"``, with a ``crashed`` record), so it never reads as running forever.
    #: ``None`` otherwise, and always for stores whose runs cannot outlive their process.
    crashed: str | None

    # -- reading ---------------------------------------------------------------------

    def read_json(self, path: str) -> Any | None:
        """Read the JSON document at ``path``; ``None`` if it does not exist.

        :raises ValueError: naming the document, when it exists but is not valid JSON.
        """
        ...

    def completed_condition(self, condition: str) -> ConditionRecord | None:
        """The record of ``condition`` if it was completed (see :meth:`complete_condition`)."""
        ...

    def finished_replicates(self, condition: str) -> Mapping[int, ReplicateRecord]:
        """Replicates of ``condition`` recorded as successful whose artifacts are all committed,
        ``{replicate: record}`` (empty for a completed condition whose journal was folded into it)."""
        ...

    # -- writing, in the order the core calls it ------------------------------------------

    def prepare_resume(
        self,
        conditions: tuple[str, ...],
        completed: CompletedWork,
        *,
        replicates: int | None = None,
        fingerprints: Mapping[str, str] | None = None,
    ) -> None:
        """Make the run vouch for exactly what this resume reuses, before anything reruns.

        Called once, after ``on_resume``, when ``resumed`` is true. For each of
        ``conditions`` that ``completed.conditions`` does not hold, withdraw
        its completion and keep only the replicates ``completed.replicates``
        lists for it; conditions not in ``conditions`` are left alone.
        ``replicates`` (this run's count) and ``fingerprints`` (its conditions'
        treatment fingerprints) let a store keep more than it must, such as
        finished replicates beyond a smaller count, for a later run to reuse.
        """
        ...

    def write_artifact(self, condition: str, replicate: int, step: str, name: str, data: bytes) -> ArtifactRecord:
        """Commit one artifact (replacing an earlier write of the same one) and say where it went.

        Called where the replicate runs, inside ``artifact.write()``.
        """
        ...

    def open_artifact(self, condition: str, replicate: int, step: str, name: str) -> ArtifactSink:
        """Start streaming one artifact; it is committed when the sink is closed.

        Called where the replicate runs, inside ``artifact.open("wb")``.
        """
        ...

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
        """Commit the local file ``source`` as one artifact, with the atomicity of :meth:`write_artifact`.

        With ``move``, ``source`` is gone afterwards (renamed into place where
        the store can, else copied and removed). Called where the replicate
        runs, inside ``artifact.write_file(path)``.
        """
        ...

    def read_artifact(self, path: str) -> BinaryIO:
        """A binary file object reading a committed artifact (``path`` as in its record).

        :raises FileNotFoundError: when there is no such artifact.
        """
        ...

    def record_replicate(self, outcome: ReplicateOutcome, fingerprint: str | None) -> None:
        """Record one finished (condition, replicate), successful or not.

        Called in the main process for every outcome, before the
        ``on_replicate_outcome`` hooks. A successful outcome becomes one of
        :meth:`finished_replicates` (its artifacts were committed by
        :meth:`write_artifact` already); a failed one is never reported
        finished.

        :param fingerprint: the condition's treatment fingerprint.
        :raises ~crystallize.plugin.ReplicateRejected: when the outcome's
            metrics cannot be stored (not JSON); the core then records the
            replicate as failed with that message.
        """
        ...

    def complete_condition(
        self, condition: str, replicates: int, fingerprint: str | None, metrics: Mapping[str, Any]
    ) -> None:
        """Mark ``condition`` complete: every one of its ``replicates`` succeeded.

        Called in the main process once a condition's last replicate is
        recorded, only when none failed; :meth:`completed_condition` then
        returns these ``metrics`` (``{metric: values over replicates}``).
        """
        ...

    def write_json(self, path: str, document: Any) -> None:
        """Atomically write ``document`` as JSON at ``path``.

        :raises ValueError: naming the document, when it cannot be written as JSON.
        """
        ...

    def close(self, status: str) -> None:
        """End the run: commit what is buffered, release what is held. Called once, last.

        :param status: ``"completed"``, ``"failed"`` or ``"interrupted"``.
        """
        ...
