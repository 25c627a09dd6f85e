"""What :meth:`Experiment.run` returns: :class:`Result`.

The shape follows crystallize-ml, so existing analysis code keeps working::

    result.metrics.baseline.metrics["accuracy"]         # values over replicates
    result.metrics.treatments["fast"].metrics["accuracy"]
    result.metrics.hypotheses                           # [HypothesisResult]
    result.errors["fast"][3]                             # ReplicateError (with .traceback)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from crystallize.hypothesis import HypothesisResult

if TYPE_CHECKING:
    from crystallize.run import ArtifactRecord, ReplicateError, Run

__all__ = ["Result", "ExperimentMetrics", "ConditionMetrics", "TreatmentMetrics"]


@attrs.define
class ConditionMetrics:
    """One condition's metrics: ``metrics[name]`` is the list over replicates."""

    metrics: dict[str, list[Any]] = attrs.field(factory=dict)


TreatmentMetrics = ConditionMetrics  # crystallize-ml's name


@attrs.define
class ExperimentMetrics:
    """Metrics of every condition and the verified hypotheses."""

    baseline: ConditionMetrics
    treatments: dict[str, ConditionMetrics]
    hypotheses: list[HypothesisResult] = attrs.field(factory=list)

    def condition(self, name: str) -> ConditionMetrics:
        """Metrics of the condition ``name`` (``"baseline"`` or a treatment)."""
        from crystallize.context import BASELINE

        if name == BASELINE:
            return self.baseline
        return self.treatments[name]


@attrs.define
class Result:
    """The outcome of one run.

    :ivar metrics: see :class:`ExperimentMetrics`.
    :ivar errors: ``{condition: {replicate: ReplicateError}}`` for every
        replicate that failed; empty when all succeeded.
    :ivar artifacts: records of the artifacts written by this run.
    :ivar run: the :class:`~crystallize.run.Run` (version, location, status).
    """

    metrics: ExperimentMetrics
    errors: dict[str, dict[int, ReplicateError]] = attrs.field(factory=dict)
    artifacts: list[ArtifactRecord] = attrs.field(factory=list)
    run: Run | None = None

    @property
    def ok(self) -> bool:
        """``True`` when no replicate failed."""
        return not self.errors

    def get_hypothesis(self, name: str) -> HypothesisResult | None:
        """The verified hypothesis called ``name``, if any."""
        return next((h for h in self.metrics.hypotheses if h.name == name), None)

    def error_list(self) -> list[ReplicateError]:
        """Every failure, ordered by condition then replicate."""
        return [err for reps in self.errors.values() for _, err in sorted(reps.items())]

    def summary(self) -> Mapping[str, Any]:
        """A JSON-friendly digest: conditions, replicates, errors, version."""
        return {
            "conditions": ["baseline", *self.metrics.treatments],
            "errors": [str(e) for e in self.error_list()],
            "version": None if self.run is None else self.run.version,
            "status": None if self.run is None else self.run.status,
        }
