"""The default executor: every replicate in this process, one after another."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crystallize._dispatch import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from crystallize._execution.batch import ReplicateBatch
    from crystallize._records import Run

__all__ = ["SerialExecution", "record_progress"]


def record_progress(run: Run, progress: bool | None) -> None:
    """Tell the progress display what an engine's ``progress=`` asked for (nothing when ``None``)."""
    if progress is not None:
        from crystallize._records import PROGRESS_FACT

        run.facts[PROGRESS_FACT] = progress


class SerialExecution:
    """Run replicates one at a time in the calling thread.

    Registered as a built-in plugin with ``trylast``, so any other executor
    passed in ``plugins=[...]`` takes precedence.

    :param progress: ``True``/``False`` to force progress bars on or off
        (needs ``crystallize-progress``); ``None`` (the default) lets the
        progress plugin decide from the terminal and the environment.
    """

    plugin_name = "serial-execution"

    def __init__(self, progress: bool | None = None) -> None:
        if progress is not None and not isinstance(progress, bool):
            raise TypeError(f"SerialExecution(progress=...) takes True, False or None, got {progress!r}")
        self.progress = progress

    @hookimpl
    def before_run(self, run: Run) -> None:
        record_progress(run, self.progress)

    @hookimpl(trylast=True)
    def execute_replicates(self, batch: ReplicateBatch) -> bool:
        for condition, replicate in batch.units:
            batch.report(batch.run_here(condition, replicate))
        return True

    async def run_experiment_loop(self, experiment: Any, replicate_fn: Callable[[int], Any]) -> list[Any]:
        """crystallize-ml 0.27's engine method: ``replicate_fn(rep)`` for each replicate, in order.

        What ``replicate_fn`` returns is awaited when it is awaitable. Runs
        use the ``execute_replicates`` hook; this serves 0.27 code that drives
        the engine itself.
        """
        from crystallize._execution.classic_loop import run_serially

        return await run_serially(experiment, replicate_fn)

    def __repr__(self) -> str:
        return "SerialExecution()"
