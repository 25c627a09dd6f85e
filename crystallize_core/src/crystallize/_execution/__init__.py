"""Execution engines: where replicates run.

The core ships :class:`SerialExecution` (the default) and
:class:`ParallelExecution` (threads or processes); ``crystallize-dask`` adds
``DaskExecution``. Each is a plugin implementing the ``execute_replicates``
hook, so a new engine is written the same way.
"""

from crystallize._execution.batch import ReplicateBatch
from crystallize._execution.parallel import ParallelExecution
from crystallize._execution.serial import SerialExecution

__all__ = ["ReplicateBatch", "SerialExecution", "ParallelExecution", "AsyncExecution"]


def __getattr__(name: str) -> object:
    if name == "AsyncExecution":  # imported on first use: `import crystallize` stays light
        from crystallize._execution.asynchronous import AsyncExecution

        return AsyncExecution
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
