"""The storage protocol: what a storage plugin shares with other plugins.

A storage plugin (``crystallize-artifacts`` for local disks) returns a
:class:`RunStore` from the ``open_store`` hook. The core puts it on
``run.store``; the metadata and resume plugins, and any plugin of yours, use
it to read and write this run's documents and to learn what is already
complete, without knowing where or how files are kept. Paths are
``/``-separated and relative to the run's folder (``<root>/<experiment>/v<N>/``).

Writes are atomic: a reader sees the old content or the new one, never a
partial file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from crystallize._records import ArtifactRecord

__all__ = ["RunStore", "ConditionRecord", "ReplicateRecord"]


@attrs.frozen
class ConditionRecord:
    """A condition whose completion marker exists.

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
class RunStore(Protocol):
    """One run's storage, as other plugins see it.

    Implementations must pickle (they travel to worker processes) and be
    safe to use from several threads.
    """

    #: the run version (``v<N>``).
    version: int
    #: human-readable location of the run (a filesystem path or URL).
    location: str
    #: ``True`` if this store continues an earlier run (``strategy="resume"``).
    resumed: bool

    def read_json(self, path: str) -> Any | None:
        """Read the JSON document at ``path``; ``None`` if it does not exist.

        :raises ValueError: naming the file, when it exists but is not valid JSON.
        """
        ...

    def write_json(self, path: str, document: Any) -> None:
        """Atomically write ``document`` as JSON at ``path``."""
        ...

    def completed_condition(self, condition: str) -> ConditionRecord | None:
        """The record of ``condition`` if its completion marker exists."""
        ...

    def finished_replicates(self, condition: str) -> Mapping[int, ReplicateRecord]:
        """Replicates of ``condition`` that finished without error and whose
        artifacts are all committed, ``{replicate: record}``."""
        ...
