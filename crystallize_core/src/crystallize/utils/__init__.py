"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize`` and ``crystallize.errors``.

``from crystallize import FrozenContext, inject_from_ctx``; errors from
``crystallize.errors`` (0.27's ``ValidationError`` is ``ConfigurationError``).
"""

from crystallize._cache import compute_hash, load_cache, store_cache
from crystallize._context import FrozenContext
from crystallize._decorators import inject_from_ctx
from crystallize._standalone import LoggingContext
from crystallize.errors import ConfigurationError as ValidationError
from crystallize.errors import ContextMutationError, MissingMetricError, PipelineExecutionError

__all__ = [
    "FrozenContext",
    "ContextMutationError",
    "LoggingContext",
    "MissingMetricError",
    "PipelineExecutionError",
    "ValidationError",
    "compute_hash",
    "load_cache",
    "store_cache",
    "inject_from_ctx",
]
