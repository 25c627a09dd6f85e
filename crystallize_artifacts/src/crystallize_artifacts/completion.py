"""Completed conditions: ``results.json``, the completion marker, and the index that caches them.

A condition is complete when its ``results.json`` is committed and then its
marker, which records ``results.json``'s SHA-256 and replicate count. Only a
marker whose ``results.json`` matches it vouches for anything; every other
combination (a missing or damaged file, a checksum that differs) is reported
in a warning and the condition runs again.

The **index** (``.index.json``) caches every completed condition's record
with the identity of its two files (:meth:`RunFolder.signature`: inode, size
and modification time on a file system). Resume uses an entry only while the
files still match it exactly, so resuming hundreds of conditions costs a
``stat`` per file instead of reading and parsing each; the index is written
last, after the markers, and deleting it loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from crystallize.plugin import ConditionRecord, DocumentError, ReplicateColumns
from crystallize_artifacts import documents, layout
from crystallize_artifacts.encoding import to_json_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from crystallize_artifacts.backends import RunFolder

__all__ = [
    "commit",
    "read",
    "withdraw",
    "replicate_entries",
    "CompletionIndex",
    "index_entry",
    "index_entry_of",
    "index_split",
    "record_of_entry",
]

log = logging.getLogger("crystallize.artifacts")


def commit(folder: RunFolder, condition: str, results: bytes, replicates: int) -> None:
    """Commit ``results.json``, then the marker vouching for it (and for ``replicates``)."""
    marker = {"replicates": replicates, "results_sha256": hashlib.sha256(results).hexdigest()}
    folder.write(f"{condition}/{layout.RESULTS}", results)
    folder.write(f"{condition}/{layout.MARKER}", to_json_bytes(marker, what="marker"))


def withdraw(folder: RunFolder, condition: str) -> bool:
    """Remove the marker, then ``results.json``; ``True`` if either existed."""
    removed = folder.delete(f"{condition}/{layout.MARKER}")
    return folder.delete(f"{condition}/{layout.RESULTS}") or removed


def read(folder: RunFolder, condition: str) -> documents.Results | None:
    """The condition's results if its marker vouches for them, else ``None`` (with a warning why)."""
    where = f"{folder.location}/{condition}"
    marker_raw = folder.read(f"{condition}/{layout.MARKER}")
    if marker_raw is None:
        return None
    raw = folder.read(f"{condition}/{layout.RESULTS}")
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


def replicate_entries(folder: RunFolder, condition: str) -> dict[int, dict[str, Any]]:
    """Journal entries for the replicates a completed condition's ``results.json`` records."""
    where = f"{folder.location}/{condition}/{layout.RESULTS}"
    raw = folder.read(f"{condition}/{layout.RESULTS}")
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


def index_entry(record: ConditionRecord) -> dict[str, Any]:
    """What the index keeps of a completed condition (its files' identity is added when written)."""
    per_replicate = record.replicate_metrics
    return index_entry_of(
        {
            "metrics": record.metrics,
            "replicates": record.replicates,
            "fingerprint": record.fingerprint,
            "replicate_metrics": None if per_replicate is None else {str(r): m for r, m in per_replicate.items()},
            "seeds": None if record.seeds is None else {str(r): s for r, s in record.seeds.items()},
        }
    )


def index_entry_of(results: Mapping[str, Any]) -> dict[str, Any]:
    """The index entry of a ``results.json`` document (its fields as that file holds them).

    Its split by replicate and seeds become columns and a list where
    :func:`index_split` allows; everything else is kept as it is.
    """
    replicates = results["replicates"]
    split = index_split(results["replicate_metrics"], results["metrics"], replicates)
    seeds = results["seeds"]
    return {
        "metrics": results["metrics"],
        "replicates": replicates,
        "fingerprint": results["fingerprint"],
        "replicate_metrics": split,
        "seeds": index_seeds(seeds, replicates) if split == documents.INDEX_COLUMNS else seeds,
    }


def index_seeds(seeds: dict[str, Any] | None, replicates: int | None) -> list[Any] | dict[str, Any] | None:
    """Seeds ``{"<replicate>": seed}`` as the index keeps them beside columns: a list, ``null`` where unknown."""
    if seeds is None or not replicates or any(not k.isdecimal() or int(k) >= replicates for k in seeds):
        return seeds
    return [seeds.get(str(r)) for r in range(replicates)]


def index_split(
    split: dict[str, Any] | None, metrics: Mapping[str, list[Any]], replicates: int | None
) -> dict[str, Any] | str | None:
    """The index's form of a condition's split by replicate (``{"<replicate>": {name: [values]}}``).

    When replicate ``r`` recorded exactly ``{name: [metrics[name][r]]}`` for
    every ``r < replicates`` — each metric once, the common case — the split is
    the flattened metrics read as columns, so the index keeps
    :data:`~crystallize_artifacts.documents.INDEX_COLUMNS` instead of a dict
    per replicate, and resume reads it back as
    :class:`~crystallize.plugin.ReplicateColumns`. ``results.json`` always
    keeps the full split.
    """
    if split is None or not replicates or len(split) != replicates:
        return split
    columns = list(metrics.items())
    if any(len(column) != replicates for _, column in columns):
        return split
    for r in range(replicates):
        recorded = split.get(str(r))
        if type(recorded) is not dict or len(recorded) != len(columns):
            return split
        for name, column in columns:
            values = recorded.get(name)
            if type(values) is not list or len(values) != 1 or not (values[0] is column[r] or values[0] == column[r]):
                return split
    return documents.INDEX_COLUMNS


def record_of_entry(condition: str, entry: dict[str, Any]) -> ConditionRecord:
    """The :class:`ConditionRecord` an index entry describes (one :func:`~documents.parse_index` accepted)."""
    per_replicate = entry.get("replicate_metrics")
    seeds = entry.get("seeds")
    metrics = entry.get("metrics", {})
    if per_replicate is None:
        split = None
    elif per_replicate == documents.INDEX_COLUMNS:
        split = ReplicateColumns(metrics, entry["replicates"])
    else:
        split = {int(k): v for k, v in per_replicate.items()}
    return ConditionRecord(
        condition=condition,
        replicates=entry.get("replicates"),
        fingerprint=entry.get("fingerprint"),
        metrics=metrics,
        replicate_metrics=split,
        seeds=None
        if seeds is None
        else {r: v for r, v in enumerate(seeds) if v is not None}
        if type(seeds) is list
        else {int(k): v for k, v in seeds.items()},
    )


def signature(folder: RunFolder, condition: str) -> list[object] | None:
    """Identity of a condition's marker and ``results.json``."""
    return folder.signature((f"{condition}/{layout.MARKER}", f"{condition}/{layout.RESULTS}"))


class CompletionIndex:
    """``.index.json`` as loaded, and the entries this run knows to be current."""

    __slots__ = ("broken", "dirty", "entries", "loaded")

    def __init__(self, *, dirty: bool) -> None:
        self.loaded: dict[str, Any] | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = dirty  # must be written when the run closes
        self.broken = False  # exists but is unusable: rewrite it

    def load(self, folder: RunFolder) -> dict[str, Any]:
        if self.loaded is None:
            where = f"{folder.location}/{layout.INDEX}"
            try:
                raw = folder.read(layout.INDEX)
                self.loaded = {} if raw is None else documents.parse_index(raw, where)
            except (OSError, ValueError) as exc:  # a cache: rebuilt from the files it describes
                log.debug("%s is unusable (%s); it is rebuilt", where, exc)
                self.loaded = {}
                self.dirty = self.broken = True
        return self.loaded

    def lookup(self, folder: RunFolder, condition: str) -> ConditionRecord | None:
        """The record of ``condition`` if the index holds it and its files are those it describes."""
        entry = self.load(folder).get(condition)
        if entry is None or entry.get("stat") is None or entry.get("stat") != signature(folder, condition):
            return None
        self.entries[condition] = entry
        return record_of_entry(condition, entry)

    def forget(self, folder: RunFolder, condition: str) -> None:
        if self.entries.pop(condition, None) is not None or condition in self.load(folder):
            self.dirty = True

    def write(self, folder: RunFolder, completed: Iterable[str], run_conditions: tuple[str, ...] | None) -> None:
        """Record completed conditions with the identity of their files (after the markers)."""
        if not self.dirty:
            return  # every completed condition was confirmed from the index as it is
        entries = {}
        for condition in completed:
            entry = self.entries.get(condition)
            sig = signature(folder, condition) if entry is not None else None
            if entry is not None and sig is not None:
                entries[condition] = {**entry, "stat": sig}
        for condition, entry in self.load(folder).items():  # conditions this run left out
            outside = condition not in entries and condition not in (run_conditions or ())
            if outside and entry.get("stat") is not None and entry.get("stat") == signature(folder, condition):
                entries[condition] = entry
        if entries != self.load(folder) or self.broken:
            folder.write(layout.INDEX, to_json_bytes({"conditions": entries}, what="index"))
