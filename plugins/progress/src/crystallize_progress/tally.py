"""What the bars show, counted without ``rich``: :class:`Tally` and :class:`RunTally`.

Hooks only add to these counters — O(1) per replicate, no lock, no
rendering. The display reads them a few times a second from its own thread
(see :mod:`crystallize_progress.display`). Each run's counters are written
by one thread only, the one running that run's hooks, so plain integer
updates are safe.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crystallize.plugin import ReplicateOutcome, Run

__all__ = ["Tally", "RunTally", "run_label"]


class Tally:
    """The counts behind one bar (an experiment's or one condition's).

    :ivar total: units the bar stands for (replicates of a condition, or
        conditions x replicates of an experiment).
    :ivar reused: units an earlier run finished, reused by ``strategy="resume"``.
    :ivar done: units this run finished without error.
    :ivar failed: units this run finished with an error.
    :ivar closed: the condition's every replicate has finished
        (``on_condition_complete`` was called, or resume found it complete).
    :ivar started_at: ``time.monotonic()`` when the run started.
    :ivar ended_at: ``time.monotonic()`` when the bar closed, else ``None``.
    :ivar samples: ``(time, done + failed)`` pairs of the last half minute,
        kept by the display (the rate and ETA are computed from them).
    """

    __slots__ = ("closed", "done", "ended_at", "failed", "label", "reused", "samples", "started_at", "total")

    def __init__(self, label: str, total: int, reused: int = 0, started_at: float | None = None) -> None:
        self.label = label
        self.total = total
        self.reused = reused
        self.done = 0
        self.failed = 0
        self.closed = False
        self.started_at = time.monotonic() if started_at is None else started_at
        self.ended_at: float | None = None
        self.samples: Any = None

    @property
    def finished(self) -> int:
        """Units accounted for: reused, done or failed."""
        return self.reused + self.done + self.failed

    @property
    def started(self) -> bool:
        """Whether this run has finished any unit of this bar yet."""
        return bool(self.done or self.failed)

    def close(self, now: float | None = None) -> None:
        """Mark the bar finished and stop its clock."""
        self.closed = True
        if self.ended_at is None:
            self.ended_at = time.monotonic() if now is None else now

    def __repr__(self) -> str:
        return (
            f"Tally({self.label!r}, {self.finished}/{self.total}: {self.done} done, "
            f"{self.failed} failed, {self.reused} reused)"
        )


def run_label(run: Run) -> str:
    """The experiment's name, else the start of its id (unnamed experiments are stored under it)."""
    return run.experiment_name or run.key[:12]


class RunTally:
    """Every count of one run: the experiment's bar and one bar per condition.

    Built in ``before_run`` from the run's plan. When resuming, what
    ``run.completed`` holds counts as *reused*: a condition resume found
    complete starts full and closed, and replicates finished inside an
    unfinished condition start its bar part-way, so the totals stay honest.
    """

    def __init__(self, run: Run) -> None:
        self.run_id = run.run_id
        self.status = "running"
        now = time.monotonic()
        completed = run.completed
        whole = completed.conditions if completed is not None else {}
        partial = completed.replicates if completed is not None else {}
        self.conditions: dict[str, Tally] = {}
        for condition in run.conditions:
            if condition in whole:
                tally = Tally(condition, run.replicates, run.replicates, now)
                tally.close(now)
            else:
                tally = Tally(condition, run.replicates, len(partial.get(condition, ())), now)
            self.conditions[condition] = tally
        self.experiment = Tally(
            run_label(run),
            run.replicates * len(run.conditions),
            sum(t.reused for t in self.conditions.values()),
            now,
        )

    def record(self, outcome: ReplicateOutcome) -> None:
        """Count one finished (condition, replicate)."""
        tally = self.conditions[outcome.condition]
        if outcome.error is None:
            tally.done += 1
            self.experiment.done += 1
        else:
            tally.failed += 1
            self.experiment.failed += 1

    def close(self, condition: str, failed: int) -> None:
        """``condition`` finished with ``failed`` failed replicates: make its counts exact.

        Counting outcomes as they arrive can fall short (a storage plugin may
        turn an outcome into a failure after this plugin saw it, or before),
        so the core's own count, given to ``on_condition_complete``, wins.
        """
        tally = self.conditions[condition]
        tally.failed = failed
        tally.done = max(0, tally.total - tally.reused - failed)
        tally.close()
        self.experiment.done = sum(t.done for t in self.conditions.values())
        self.experiment.failed = sum(t.failed for t in self.conditions.values())

    def finish(self, status: str) -> None:
        """The run ended with ``run.status`` ``status``."""
        self.status = status
        now = time.monotonic()
        for tally in self.bars():
            if tally.ended_at is None:  # interrupted or failed early: stop every clock
                tally.ended_at = now
        self.experiment.closed = True

    def bars(self) -> list[Tally]:
        """The experiment's bar, then the conditions' in run order."""
        return [self.experiment, *self.conditions.values()]
