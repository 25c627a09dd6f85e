"""crystallize-ml 0.27's replicate-by-replicate assembly of a result: :class:`ResultAggregator`.

In 0.27 one replicate ran every condition and produced a
:class:`ReplicateResult`; custom execution loops returned a list of them and
:class:`ResultAggregator` folded the list into a :class:`~crystallize.Result`.
The core now assembles results per (condition, replicate) itself (see
:mod:`crystallize._lifecycle`); this module keeps 0.27 code that builds
results by hand working, producing the same :class:`~crystallize.Result`
(with its ``provenance``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from crystallize._context import BASELINE

if TYPE_CHECKING:
    from crystallize._result import ExperimentMetrics, Result
    from crystallize._steps import Pipeline

__all__ = ["ReplicateResult", "AggregateData", "ResultAggregator"]


@attrs.define
class ReplicateResult:
    """What one 0.27 replicate produced, for the baseline and each treatment.

    ``errors`` maps 0.27's keys (``"<condition>_rep_<r>"``) to exceptions;
    ``provenance`` maps a condition to its steps' provenance records.
    """

    baseline_metrics: Mapping[str, Sequence[Any]] | None
    baseline_seed: int | None
    treatment_metrics: Mapping[str, Mapping[str, Sequence[Any]]] = attrs.field(factory=dict)
    treatment_seeds: Mapping[str, int] = attrs.field(factory=dict)
    errors: Mapping[str, BaseException] = attrs.field(factory=dict)
    provenance: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.define
class AggregateData:
    """Every replicate's results, grouped by condition (in replicate order)."""

    baseline_metrics: dict[str, list[Any]]
    treatment_metrics_dict: dict[str, dict[str, list[Any]]]
    baseline_seeds: list[int]
    treatment_seeds_agg: dict[str, list[int]]
    provenance_runs: Mapping[str, dict[int, Any]]
    errors: dict[str, BaseException]


def _extend(into: dict[str, list[Any]], sample: Mapping[str, Sequence[Any]]) -> None:
    for metric, values in sample.items():
        into.setdefault(metric, []).extend(values)


class ResultAggregator:
    """Folds a list of :class:`ReplicateResult` (replicate ``i`` at position ``i``) into a result.

    :param pipeline: the pipeline that ran (its signature goes into the provenance).
    :param replicates: the replicate count of the run.
    """

    def __init__(self, pipeline: Pipeline, replicates: int) -> None:
        self._pipeline = pipeline
        self._replicates = replicates

    def aggregate_results(self, results_list: Sequence[ReplicateResult]) -> AggregateData:
        """Group the replicates' metrics, seeds, provenance and errors by condition."""
        baseline: dict[str, list[Any]] = {}
        treatments: dict[str, dict[str, list[Any]]] = {}
        baseline_seeds: list[int] = []
        treatment_seeds: dict[str, list[int]] = {}
        provenance: dict[str, dict[int, Any]] = {}
        errors: dict[str, BaseException] = {}
        for replicate, result in enumerate(results_list):
            if result.baseline_metrics is not None:
                _extend(baseline, result.baseline_metrics)
            if result.baseline_seed is not None:
                baseline_seeds.append(result.baseline_seed)
            for name, sample in result.treatment_metrics.items():
                _extend(treatments.setdefault(name, {}), sample)
            for name, seed in result.treatment_seeds.items():
                treatment_seeds.setdefault(name, []).append(seed)
            for name, records in result.provenance.items():
                provenance.setdefault(name, {})[replicate] = records
            errors.update(result.errors)
        return AggregateData(baseline, treatments, baseline_seeds, treatment_seeds, provenance, errors)

    def build_result(self, metrics: ExperimentMetrics, aggregate: AggregateData) -> Result:
        """The :class:`~crystallize.Result` of ``metrics``, with the aggregate's errors and provenance."""
        from crystallize._result import Result

        provenance = {
            "pipeline_signature": self._pipeline.signature(),
            "replicates": self._replicates,
            "seeds": {BASELINE: list(aggregate.baseline_seeds), **aggregate.treatment_seeds_agg},
            "ctx_changes": dict(aggregate.provenance_runs),
        }
        return Result(metrics=metrics, errors=dict(aggregate.errors), provenance=provenance)
