"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize.errors``.

0.27's ``ValidationError`` is ``crystallize.errors.ConfigurationError``.
"""

from crystallize.errors import ConfigurationError as ValidationError
from crystallize.errors import ContextMutationError, CrystallizeError, MissingMetricError, PipelineExecutionError

__all__ = [
    "CrystallizeError",
    "MissingMetricError",
    "PipelineExecutionError",
    "ContextMutationError",
    "ValidationError",
]
