"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import ConditionMetrics, HypothesisResult`` (0.27's
``TreatmentMetrics`` is ``ConditionMetrics``).
"""

from crystallize._aggregation import AggregateData
from crystallize._hypothesis import HypothesisResult
from crystallize._result import ExperimentMetrics, TreatmentMetrics

__all__ = ["ExperimentMetrics", "TreatmentMetrics", "HypothesisResult", "AggregateData"]
