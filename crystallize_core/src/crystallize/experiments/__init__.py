"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import Experiment, ExperimentGraph, Hypothesis, Treatment, Result, BaseOptimizer, Objective``.
"""

from crystallize._aggregation import AggregateData, ReplicateResult
from crystallize._experiment import Experiment
from crystallize._graph import ExperimentGraph
from crystallize._hypothesis import Hypothesis, HypothesisResult
from crystallize._optimize import BaseOptimizer, Objective
from crystallize._result import ExperimentMetrics, Result, TreatmentMetrics
from crystallize._treatment import Treatment

__all__ = [
    "Experiment",
    "ExperimentGraph",
    "Hypothesis",
    "BaseOptimizer",
    "Objective",
    "Result",
    "ExperimentMetrics",
    "TreatmentMetrics",
    "HypothesisResult",
    "AggregateData",
    "ReplicateResult",
    "Treatment",
]
