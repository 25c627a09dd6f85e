"""Replicates whose steps are ``async def``, interleaved on one event loop: :class:`AsyncExecution`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crystallize._dispatch import hookimpl
from crystallize._execution.serial import record_progress

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from crystallize._execution.batch import ReplicateBatch
    from crystallize._records import ReplicateOutcome, Run

__all__ = ["AsyncExecution"]


def _run_on(loop: asyncio.AbstractEventLoop, batch: ReplicateBatch, condition: str, replicate: int) -> ReplicateOutcome:
    from crystallize._async import target_loop

    with target_loop(loop):
        return batch.run_here(condition, replicate)


class AsyncExecution:
    """Run many replicates at once when their steps wait on I/O with ``async def``.

    Up to ``max_concurrency`` replicates are in flight together. Each one's
    plain code (hooks, sync steps) runs in a worker thread; every ``await``
    of every replicate runs on one shared event loop, so hundreds of
    requests to a model API or a database overlap. Results, artifacts and
    resume behave exactly as with :class:`~crystallize.SerialExecution`.

    :param max_concurrency: replicates in flight at once (default 32).
    :param progress: ``True``/``False`` to force progress bars on or off
        for runs it executes (needs ``crystallize-progress``); ``None`` lets
        the progress plugin decide.
    """

    plugin_name = "async-execution"

    def __init__(self, max_concurrency: int | None = None, *, progress: bool | None = None) -> None:
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise ValueError(f"AsyncExecution: max_concurrency must be a positive int or None, got {max_concurrency!r}")
        if progress is not None and not isinstance(progress, bool):
            raise TypeError(f"AsyncExecution(progress=...) takes True, False or None, got {progress!r}")
        self.max_concurrency = max_concurrency or 32
        self.progress = progress

    @hookimpl
    def before_run(self, run: Run) -> None:
        from crystallize._records import EXECUTION_FACT

        run.facts[EXECUTION_FACT] = {"engine": "async", "workers": self.max_concurrency}
        record_progress(run, self.progress)

    async def run_experiment_loop(self, experiment: Any, replicate_fn: Callable[[int], Any]) -> list[Any]:
        """crystallize-ml 0.27's engine method: ``replicate_fn(rep)`` for every replicate, awaited together.

        At most ``max_concurrency`` are in flight; results come in replicate
        order. Runs use the ``execute_replicates`` hook; this serves 0.27 code
        that drives the engine itself.
        """
        from crystallize._execution.classic_loop import run_concurrently

        return await run_concurrently(experiment, replicate_fn, self.max_concurrency)

    @hookimpl
    def execute_replicates(self, batch: ReplicateBatch) -> bool:
        if not batch.units:
            return True
        from concurrent.futures import ThreadPoolExecutor

        from crystallize._async import LoopThread

        units = list(batch.units)
        with LoopThread() as loop:
            workers = min(self.max_concurrency, len(units))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crystallize-async") as pool:
                batch.report_as_completed([pool.submit(_run_on, loop, batch, c, r) for c, r in units])
        return True

    def __repr__(self) -> str:
        return f"AsyncExecution(max_concurrency={self.max_concurrency!r})"

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)
