"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import SerialExecution, ParallelExecution, AsyncExecution``;
``VALID_EXECUTOR_TYPES`` is ``Experiment.VALID_EXECUTOR_TYPES``.
"""

from crystallize._execution import ParallelExecution, SerialExecution
from crystallize._execution.asynchronous import AsyncExecution
from crystallize._execution.parallel import EXECUTOR_TYPES as VALID_EXECUTOR_TYPES

__all__ = ["SerialExecution", "ParallelExecution", "AsyncExecution", "VALID_EXECUTOR_TYPES"]
