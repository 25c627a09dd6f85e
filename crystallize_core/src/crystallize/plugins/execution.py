"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import SerialExecution, ParallelExecution``.
"""

from crystallize._execution import ParallelExecution, SerialExecution

__all__ = ["SerialExecution", "ParallelExecution"]
