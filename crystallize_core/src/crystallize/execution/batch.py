"""What an execution engine receives: :class:`ReplicateBatch`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crystallize.execution.runner import ReplicateRunner
    from crystallize.execution.worker import RunnerSpec
    from crystallize.run import ReplicateOutcome

__all__ = ["ReplicateBatch", "Unit"]

Unit = tuple[str, int]


class ReplicateBatch:
    """The pending (condition, replicate) units of a run and the means to run them.

    - :attr:`units` — what to run, ``(condition, replicate)`` pairs, in the
      order a serial run would use.
    - :meth:`run_here` — run one unit in this process (any thread).
    - :meth:`payload` — the bytes a worker process needs to run units with
      :func:`crystallize.execution.worker.run_unit`; built once, on demand.
    - :meth:`report` — hand back each unit's outcome, from the thread that
      called ``execute_replicates``, as soon as it is known.
    """

    def __init__(
        self,
        units: list[Unit],
        runner: ReplicateRunner,
        spec: Callable[[], RunnerSpec],
        on_outcome: Callable[[ReplicateOutcome], None],
    ) -> None:
        self.units: tuple[Unit, ...] = tuple(units)
        self._runner = runner
        self._spec_factory = spec
        self._spec: RunnerSpec | None = None
        self._on_outcome = on_outcome
        self._pending = set(self.units)
        self._lock = threading.Lock()

    def run_here(self, condition: str, replicate: int) -> ReplicateOutcome:
        """Run one unit in this process and return its outcome (does not report it)."""
        return self._runner(condition, replicate)

    def spec(self) -> RunnerSpec:
        """The picklable description of this run's runner (built once)."""
        with self._lock:
            if self._spec is None:
                self._spec = self._spec_factory()
            return self._spec

    def payload(self) -> bytes:
        """``spec()`` as cloudpickle bytes, for shipping to worker processes."""
        return self.spec().payload

    @property
    def token(self) -> str:
        """Identifies this batch's payload; workers cache the runner under it."""
        return self.spec().token

    def report(self, outcome: ReplicateOutcome) -> None:
        """Record a finished unit; call from the thread running ``execute_replicates``."""
        unit = (outcome.condition, outcome.replicate)
        if unit not in self._pending:
            raise RuntimeError(f"unit {unit} was reported twice or is not part of this batch")
        self._pending.discard(unit)
        self._on_outcome(outcome)

    @property
    def pending(self) -> tuple[Unit, ...]:
        """Units not reported yet, in batch order."""
        return tuple(u for u in self.units if u in self._pending)
