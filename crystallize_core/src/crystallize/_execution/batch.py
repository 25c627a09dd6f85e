"""What an execution engine receives: :class:`ReplicateBatch`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from crystallize._execution.runner import ReplicateRunner
    from crystallize._execution.worker import RunnerSpec
    from crystallize._records import ReplicateOutcome

__all__ = ["ReplicateBatch", "Unit", "Units"]

Unit = tuple[str, int]


class Units(Sequence[Unit]):
    """``(condition, replicate)`` pairs, stored per condition.

    A run of many replicates would otherwise hold one tuple per unit for its
    whole duration; this keeps a ``range`` (or, when resuming, the list of
    replicates left) per condition and builds the pairs as they are read.
    """

    __slots__ = ("_count", "_parts")

    def __init__(self, parts: list[tuple[str, Sequence[int]]]) -> None:
        self._parts = [(condition, replicates) for condition, replicates in parts if len(replicates)]
        self._count = sum(len(replicates) for _, replicates in self._parts)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Unit]:
        for condition, replicates in self._parts:
            for replicate in replicates:
                yield (condition, replicate)

    @overload
    def __getitem__(self, index: int) -> Unit: ...
    @overload
    def __getitem__(self, index: slice) -> list[Unit]: ...
    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("unit index out of range")
        for condition, replicates in self._parts:
            if index < len(replicates):
                return (condition, replicates[index])
            index -= len(replicates)
        raise IndexError("unit index out of range")  # pragma: no cover - guarded above

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Units({len(self)} units over {len(self._parts)} condition(s))"


class ReplicateBatch:
    """The pending (condition, replicate) units of a run and the means to run them.

    - :attr:`units` — what to run, a sequence of ``(condition, replicate)``
      pairs in the order a serial run would use.
    - :meth:`run_here` — run one unit in this process (any thread).
    - :meth:`payload` — the bytes a worker process needs to run units with
      :func:`crystallize._execution.worker.run_unit`; built once, on demand.
    - :meth:`report` — hand back each unit's outcome, from the thread that
      called ``execute_replicates``, as soon as it is known.
    """

    def __init__(
        self,
        units: Units,
        runner: ReplicateRunner,
        spec: Callable[[], RunnerSpec],
        on_outcome: Callable[[ReplicateOutcome], None],
    ) -> None:
        self.units = units
        self._runner = runner
        self._started: Callable[[str, int], ReplicateOutcome] | None = None
        if runner.hooks.on_worker_start is not None:  # this process starts like a worker, on first use
            self.run_here = self._start_then_run  # type: ignore[method-assign]
        self._spec_factory = spec
        self._spec: RunnerSpec | None = None
        self._on_outcome = on_outcome
        # one byte per unit: 1 while it is waiting for its outcome
        self._waiting: dict[str, bytearray] = {}
        for condition, replicates in units._parts:
            flags = self._waiting.setdefault(condition, bytearray(max(replicates) + 1))
            for replicate in replicates:
                flags[replicate] = 1
        self._left = len(units)
        self._lock = threading.Lock()

    def run_here(self, condition: str, replicate: int) -> ReplicateOutcome:
        """Run one unit in this process and return its outcome (does not report it)."""
        return self._runner(condition, replicate)

    def _start_then_run(self, condition: str, replicate: int) -> ReplicateOutcome:
        """``run_here`` until this process has run ``on_worker_start`` (once, whatever the thread)."""
        with self._lock:
            if self._started is None:
                self._started = self._runner.start()
                self.run_here = self._started  # type: ignore[method-assign]
        return self._started(condition, replicate)

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
        flags = self._waiting.get(outcome.condition)
        replicate = outcome.replicate
        if flags is None or not 0 <= replicate < len(flags) or not flags[replicate]:
            unit = (outcome.condition, replicate)
            raise RuntimeError(f"unit {unit} was reported twice or is not part of this batch")
        flags[replicate] = 0
        self._left -= 1
        self._on_outcome(outcome)

    @property
    def remaining(self) -> int:
        """How many units have not been reported yet."""
        return self._left

    @property
    def pending(self) -> tuple[Unit, ...]:
        """Units not reported yet, in batch order."""
        return tuple(u for u in self.units if self._waiting[u[0]][u[1]])

    def report_as_completed(self, futures: Sequence[Any]) -> None:
        """Report the outcomes of ``concurrent.futures`` futures as they finish; if reporting
        stops (an error, Ctrl-C), cancel those not started yet and re-raise."""
        from concurrent.futures import as_completed

        try:
            for future in as_completed(futures):
                self.report(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
