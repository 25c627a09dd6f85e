"""Searching treatments: :class:`BaseOptimizer`, :class:`Objective` and :meth:`Experiment.optimize`.

An optimizer proposes a treatment (``ask``), the experiment runs it over a
few replicates, and the optimizer is told the objective's mean value
(``tell``); after the last trial it names its best treatment::

    class Grid(BaseOptimizer):
        def __init__(self, values):
            super().__init__(Objective(metric="loss", direction="minimize"))
            self.values, self.seen = list(values), []

        def ask(self):
            return [Treatment(f"lr_{self.values[len(self.seen)]}", {"lr": self.values[len(self.seen)]})]

        def tell(self, objective_values):
            self.seen.append(objective_values["loss"])

        def get_best_treatment(self):
            best = self.seen.index(min(self.seen))
            return Treatment("best", {"lr": self.values[best]})

    best = experiment.optimize(Grid([0.1, 0.01]), num_trials=2, replicates_per_trial=3)

Optimization proposes candidates; it proves nothing. Validate the winner with
a proper run and a hypothesis.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from numbers import Real
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from crystallize._experiment import Experiment
    from crystallize._result import Result
    from crystallize._treatment import Treatment

__all__ = ["Objective", "BaseOptimizer", "optimize", "DIRECTIONS"]

DIRECTIONS = ("minimize", "maximize")


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@attrs.frozen
class Objective:
    """What an optimization minimizes or maximizes.

    :ivar metric: a metric name, or several (one objective each).
    :ivar direction: ``"minimize"`` or ``"maximize"``; one per metric when
        there are several (or one for all).
    """

    metric: str | list[str] = attrs.field(converter=lambda m: m if isinstance(m, str) else list(m))
    direction: str | list[str] = attrs.field(
        default="minimize", converter=lambda d: d if isinstance(d, str) else list(d)
    )

    def __attrs_post_init__(self) -> None:
        metrics = _as_list(self.metric)
        if not metrics or not all(isinstance(m, str) and m for m in metrics):
            raise ValueError(f"Objective(metric=...) takes a metric name or a list of them, got {self.metric!r}")
        directions = _as_list(self.direction)
        for direction in directions:
            if direction not in DIRECTIONS:
                raise ValueError(
                    f"Objective(direction=...) must be 'minimize' or 'maximize' (or a list of them), got {direction!r}"
                )
        if len(directions) not in (1, len(metrics)):
            raise ValueError(
                f"Objective: {len(metrics)} metrics but {len(directions)} directions; give one direction per "
                "metric, or one for all"
            )

    @property
    def metrics(self) -> list[str]:
        """The metric names, as a list."""
        return _as_list(self.metric)

    def direction_of(self, metric: str) -> str:
        """``"minimize"`` or ``"maximize"`` for ``metric``."""
        directions = _as_list(self.direction)
        return directions[0] if len(directions) == 1 else directions[self.metrics.index(metric)]


class BaseOptimizer(ABC):
    """A search strategy over treatments; subclass it and implement the three methods.

    :param objective: what the search optimizes (``self.objective``).
    """

    def __init__(self, objective: Objective) -> None:
        if not isinstance(objective, Objective):
            raise TypeError(f"{type(self).__name__}: objective must be an Objective, got {objective!r}")
        self.objective = objective

    @abstractmethod
    def ask(self) -> list[Treatment]:
        """The treatment to evaluate next, as a one-element list."""

    @abstractmethod
    def tell(self, objective_values: dict[str, float]) -> None:
        """Learn the last treatment's result: ``{metric: mean over its replicates}``."""

    @abstractmethod
    def get_best_treatment(self) -> Treatment:
        """The best treatment found."""


def _positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"optimize(): {what} must be a positive int, got {value!r}")
    return value


def objective_values(result: Result, treatment: str, objective: Objective) -> dict[str, float]:
    """The objective's metrics of ``treatment`` in ``result``, each averaged over its replicates."""
    metrics = result.metrics.treatments[treatment]
    errors = result.errors.get(treatment)
    if errors:
        first = errors[min(errors)]
        raise RuntimeError(
            f"optimize(): trial treatment {treatment!r} failed in {len(errors)} replicate(s), so it has no "
            f"objective value; first failure: {first}"
        )
    values = {}
    for metric in objective.metrics:
        recorded = metrics.metrics.get(metric)
        if not recorded:
            known = ", ".join(map(repr, metrics.metrics)) or "none"
            raise KeyError(
                f"optimize(): the objective's metric {metric!r} was not recorded by treatment {treatment!r} "
                f"(recorded: {known}); record it with ctx.metrics.add({metric!r}, value)"
            )
        bad = [v for v in recorded if isinstance(v, bool) or not isinstance(v, Real) or math.isnan(v)]
        if bad:
            raise TypeError(
                f"optimize(): metric {metric!r} of treatment {treatment!r} holds {bad[0]!r}; an objective needs numbers"
            )
        values[metric] = math.fsum(recorded) / len(recorded)
    return values


def optimize(experiment: Experiment, optimizer: BaseOptimizer, num_trials: int, replicates_per_trial: int) -> Treatment:
    """See :meth:`Experiment.optimize <crystallize.Experiment.optimize>`."""
    from crystallize._treatment import Treatment

    if not isinstance(optimizer, BaseOptimizer):
        raise TypeError(f"optimize(optimizer): expected a BaseOptimizer subclass, got {optimizer!r}")
    _positive(num_trials, "num_trials")
    _positive(replicates_per_trial, "replicates_per_trial")
    for trial in range(num_trials):
        asked = optimizer.ask()
        if isinstance(asked, Treatment):
            asked = [asked]
        if not isinstance(asked, (list, tuple)) or len(asked) != 1 or not isinstance(asked[0], Treatment):
            raise TypeError(
                f"optimize(): {type(optimizer).__name__}.ask() must return one Treatment in a list, got "
                f"{asked!r} at trial {trial}"
            )
        treatment = asked[0]
        result = experiment.run(treatments=[treatment], hypotheses=[], replicates=replicates_per_trial)
        optimizer.tell(objective_values(result, treatment.name, optimizer.objective))
    best = optimizer.get_best_treatment()
    if not isinstance(best, Treatment):
        raise TypeError(
            f"optimize(): {type(optimizer).__name__}.get_best_treatment() returned {best!r}, not a Treatment"
        )
    return best
