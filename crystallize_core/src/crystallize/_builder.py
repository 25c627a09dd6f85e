"""Building an experiment step by step: :class:`ExperimentBuilder`.

::

    experiment = (
        Experiment.builder("training")
        .datasource(numbers())
        .add_step(scale(factor=2))
        .treatments([Treatment("double", {"factor": 4})])
        .replicates(5)
        .build()
    )
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crystallize._artifact import Artifact
    from crystallize._datasource import DataSource
    from crystallize._experiment import Experiment
    from crystallize._hypothesis import Hypothesis
    from crystallize._steps import Pipeline, PipelineStep
    from crystallize._treatment import Treatment

__all__ = ["ExperimentBuilder"]


class ExperimentBuilder:
    """Collects an experiment's parts, then :meth:`build` makes the :class:`~crystallize.Experiment`.

    Every setter returns the builder, so calls chain. A pipeline given with
    :meth:`pipeline` wins over steps added with :meth:`add_step`.
    """

    def __init__(self, name: str | None = None) -> None:
        self._name = name
        self._datasource: DataSource | None = None
        self._steps: list[PipelineStep] = []
        self._pipeline: Pipeline | None = None
        self._plugins: list[Any] = []
        self._treatments: list[Treatment] = []
        self._hypotheses: list[Hypothesis] = []
        self._replicates = 1
        self._description: str | None = None
        self._initial_ctx: dict[str, Any] = {}
        self._outputs: list[Artifact] = []

    def datasource(self, datasource: DataSource) -> ExperimentBuilder:
        """Set the datasource."""
        self._datasource = datasource
        return self

    def pipeline(self, pipeline: Pipeline) -> ExperimentBuilder:
        """Set the whole pipeline."""
        self._pipeline = pipeline
        return self

    def add_step(self, step: PipelineStep) -> ExperimentBuilder:
        """Append a step (used when no pipeline is set)."""
        self._steps.append(step)
        return self

    def plugins(self, plugins: Iterable[Any]) -> ExperimentBuilder:
        """Set the plugins."""
        self._plugins = list(plugins)
        return self

    def treatments(self, treatments: Iterable[Treatment]) -> ExperimentBuilder:
        """Set the treatments."""
        self._treatments = list(treatments)
        return self

    def hypotheses(self, hypotheses: Iterable[Hypothesis]) -> ExperimentBuilder:
        """Set the hypotheses."""
        self._hypotheses = list(hypotheses)
        return self

    def replicates(self, replicates: int) -> ExperimentBuilder:
        """Set the replicate count."""
        self._replicates = replicates
        return self

    def description(self, description: str) -> ExperimentBuilder:
        """Set the description."""
        self._description = description
        return self

    def initial_ctx(self, initial_ctx: Mapping[str, Any]) -> ExperimentBuilder:
        """Set the keys every replicate's context starts with."""
        self._initial_ctx = dict(initial_ctx)
        return self

    def outputs(self, outputs: Iterable[Artifact]) -> ExperimentBuilder:
        """Set the artifacts steps may write."""
        self._outputs = list(outputs)
        return self

    def build(self) -> Experiment:
        """The experiment; raises ``ValueError`` when no datasource was given."""
        from crystallize._experiment import Experiment
        from crystallize._steps import Pipeline

        if self._datasource is None:
            raise ValueError("ExperimentBuilder: a datasource must be provided; call .datasource(my_source()) first")
        return Experiment(
            datasource=self._datasource,
            pipeline=self._pipeline if self._pipeline is not None else Pipeline(self._steps),
            plugins=self._plugins,
            outputs=self._outputs,
            name=self._name,
            treatments=self._treatments,
            hypotheses=self._hypotheses,
            replicates=self._replicates,
            description=self._description,
            initial_ctx=self._initial_ctx or None,
        )

    def __repr__(self) -> str:
        return f"ExperimentBuilder({self._name!r})"
