"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import FrozenContext``; a context's metrics are a
``Metrics`` (0.27's ``FrozenMetrics``).
"""

from crystallize._context import FrozenContext
from crystallize._context import Metrics as FrozenMetrics
from crystallize._standalone import LoggingContext
from crystallize.errors import ContextMutationError

__all__ = ["FrozenContext", "FrozenMetrics", "LoggingContext", "ContextMutationError"]
