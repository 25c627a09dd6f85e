"""The replicate journal: which replicates of an unfinished condition finished, and what they recorded.

Each finished replicate becomes one JSON entry (replicate, fingerprint,
metrics, artifact records, seed). Entries are buffered and written as one
line — a JSON list of entries — per flush, to the condition's journal
(:data:`~crystallize_artifacts.layout.JOURNAL`): appended to a file on a file
system, one object per line on an object store (see
:meth:`~crystallize_artifacts.backends.RunFolder.append_journal`). The line
is the unit of commit: a torn line is ignored on reading, so a crash loses
at most the unwritten entries, whose replicates run again on resume (their
artifacts are overwritten atomically); nothing is ever inconsistent.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from crystallize.plugin import ArtifactRecord, ReplicateOutcome, ReplicateRejected
from crystallize_artifacts import documents, layout
from crystallize_artifacts.encoding import ENCODER

if TYPE_CHECKING:
    from crystallize_artifacts.backends import RunFolder

__all__ = ["JOURNAL_BATCH", "JOURNAL_SECONDS", "Journal", "encode_entry", "read_entries", "rewrite"]

#: Entries are written when a condition completes, when the run ends, after
#: JOURNAL_BATCH entries, and when a replicate finishes more than
#: JOURNAL_SECONDS after the last write.
JOURNAL_BATCH = 1024
JOURNAL_SECONDS = 1.0


class Journal:
    """Entries encoded but not written yet, per condition."""

    __slots__ = ("last_flush", "pending", "unwritten")

    def __init__(self) -> None:
        self.unwritten: dict[str, list[bytes]] = {}
        self.pending = 0
        self.last_flush = time.monotonic()

    def add(self, folder: RunFolder, condition: str, entry: bytes) -> None:
        """Buffer one entry; write every buffered one when a batch is full or a second passed."""
        self.unwritten.setdefault(condition, []).append(entry)
        self.pending += 1
        if self.pending >= JOURNAL_BATCH or time.monotonic() - self.last_flush >= JOURNAL_SECONDS:
            self.flush(folder)

    def drop(self, condition: str) -> None:
        """Forget a condition's buffered entries (its results supersede them)."""
        self.pending -= len(self.unwritten.pop(condition, ()))

    def flush(self, folder: RunFolder, only: str | None = None) -> None:
        """Write buffered entries, one line per condition."""
        for condition in [only] if only is not None else list(self.unwritten):
            batch = self.unwritten.get(condition)
            if not batch:
                continue
            folder.append_journal(condition, b"[" + b",".join(batch) + b"]")
            del self.unwritten[condition]  # only once written
            self.pending -= len(batch)
        self.last_flush = time.monotonic()

    def clear(self) -> None:
        self.unwritten.clear()
        self.pending = 0


def quick_entry(replicate: int, fingerprint: str | None, seed: int | None) -> bytes:
    """The entry of a replicate with no metrics and no artifacts, built without the encoder."""
    return b'{"replicate":%d,"fingerprint":%s,"metrics":{},"artifacts":[],"seed":%s}' % (
        replicate,
        b"null" if fingerprint is None else ENCODER.encode(fingerprint).encode(),
        b"null" if seed is None else str(seed).encode(),
    )


def encode_entry(outcome: ReplicateOutcome, fingerprint: str | None, records: list[ArtifactRecord]) -> bytes:
    """One replicate's entry; metrics JSON cannot hold reject this replicate, naming it."""
    entry = {
        "replicate": outcome.replicate,
        "fingerprint": fingerprint,
        "metrics": outcome.metrics,
        "artifacts": [r.to_json() for r in records],
        "seed": outcome.seed,
    }
    try:
        return ENCODER.encode(entry).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        reason = "they are nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ReplicateRejected(
            f"the metrics of condition {outcome.condition!r} replicate {outcome.replicate} cannot be stored as "
            f"JSON: {reason}. Record numbers, strings, booleans, or lists and dicts of them "
            "(NumPy values are converted)"
        ) from None


def read_entries(folder: RunFolder, condition: str) -> tuple[dict[int, documents.JournalEntry], list[str]]:
    """The condition's journal entries (the last one per replicate) and a line per unusable one."""
    raw = folder.read_journal(condition)
    if raw is None:
        return {}, []
    return documents.parse_journal(raw, f"{folder.location}/{condition}/{layout.JOURNAL}", condition)


def rewrite(folder: RunFolder, condition: str, entries: list[Any]) -> bool:
    """Replace the condition's journal with exactly ``entries`` (raw JSON values); ``False``
    when it had none and there is nothing to write."""
    data = (ENCODER.encode(entries).encode("utf-8") + b"\n") if entries else b""
    return folder.replace_journal(condition, data)
