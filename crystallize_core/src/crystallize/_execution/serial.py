"""The default executor: every replicate in this process, one after another."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crystallize._dispatch import hookimpl

if TYPE_CHECKING:
    from crystallize._execution.batch import ReplicateBatch

__all__ = ["SerialExecution"]


class SerialExecution:
    """Run replicates one at a time in the calling thread.

    Registered as a built-in plugin with ``trylast``, so any other executor
    passed in ``plugins=[...]`` takes precedence.
    """

    plugin_name = "serial-execution"

    @hookimpl(trylast=True)
    def execute_replicates(self, batch: ReplicateBatch) -> bool:
        for condition, replicate in batch.units:
            batch.report(batch.run_here(condition, replicate))
        return True

    def __repr__(self) -> str:
        return "SerialExecution()"
