"""Hypotheses: compare each treatment with the baseline, then rank treatments.

A :class:`Hypothesis` selects metrics, runs a *verifier* on the baseline's and
one treatment's values (``verifier(baseline, treatment) -> dict``) for every
treatment, and ranks the treatments with a *ranker* (``ranker(result) ->
float``, lower is better)::

    @hypothesis(verifier=permutation_test, metrics="accuracy")
    def by_p_value(result):
        return result["p_value"]

With no verifier, :func:`crystallize.stats.permutation_test` is used; with no
ranker, treatments are ranked by ``p_value``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from crystallize.errors import MissingMetricError
from crystallize.names import check_name
from crystallize.stats import permutation_test

__all__ = ["Hypothesis", "HypothesisResult", "hypothesis", "rank_by_p_value"]

Verifier = Callable[[Mapping[str, Sequence[Any]], Mapping[str, Sequence[Any]]], Mapping[str, Any]]


def rank_by_p_value(result: Mapping[str, Any]) -> float:
    """Default ranker: the verifier's ``p_value`` (lower ranks first)."""
    try:
        return float(result["p_value"])
    except (KeyError, TypeError):
        raise ValueError(
            f"the default ranker reads 'p_value' from the verifier's result, got {result!r}; "
            "pass ranker=... to the Hypothesis"
        ) from None


@attrs.frozen
class HypothesisResult:
    """A verified hypothesis.

    :ivar results: ``{treatment: verifier output}``.
    :ivar ranking: ``{"best": name, "ranked": [(name, score), ...]}``.
    """

    name: str
    results: Mapping[str, Any]
    ranking: Mapping[str, Any]

    def get_for_treatment(self, treatment: str) -> Any:
        return self.results.get(treatment)


class Hypothesis:
    """A statistical comparison of treatments against the baseline.

    :param verifier: ``verifier(baseline, treatment) -> mapping``, each argument
        ``{metric: [values]}`` restricted to ``metrics``.
    :param metrics: the metric name, or names, passed to the verifier
        (all recorded metrics when ``None``).
    :param ranker: ``ranker(verifier_result) -> float``; lower ranks first.
    :param name: defaults to the ranker's function name.
    """

    def __init__(
        self,
        verifier: Verifier | None = None,
        metrics: str | Sequence[str] | None = None,
        ranker: Callable[[Mapping[str, Any]], float] | None = None,
        name: str | None = None,
    ) -> None:
        self.verifier = verifier or permutation_test
        if isinstance(metrics, str):
            self.metrics: tuple[str, ...] | None = (metrics,)
        else:
            self.metrics = None if metrics is None else tuple(metrics)
        self.ranker = ranker or rank_by_p_value
        default_name = getattr(ranker, "__name__", None) if ranker is not None else None
        if default_name in (None, "<lambda>"):
            default_name = "hypothesis" if not self.metrics else "_".join(self.metrics)
        self.name = check_name(name or default_name, "hypothesis")

    def verify(self, baseline: Mapping[str, Sequence[Any]], treatment: Mapping[str, Sequence[Any]]) -> Any:
        """Run the verifier on the selected metrics of two conditions."""
        keys = self.metrics if self.metrics is not None else tuple(baseline)
        b: dict[str, Sequence[Any]] = {}
        t: dict[str, Sequence[Any]] = {}
        for key in keys:
            for label, source, target in (("baseline", baseline, b), ("treatment", treatment, t)):
                if key not in source:
                    raise MissingMetricError(
                        f"hypothesis {self.name!r} needs metric {key!r}, which the {label} did not "
                        f"record (recorded: {sorted(source) or 'none'})"
                    )
                target[key] = source[key]
        return self.verifier(b, t)

    def rank(self, results: Mapping[str, Any]) -> dict[str, Any]:
        """Rank treatments by the ranker's score, lowest first."""
        ranked = sorted(((name, self.ranker(res)) for name, res in results.items()), key=lambda x: x[1])
        return {"best": ranked[0][0] if ranked else None, "ranked": ranked}

    def evaluate(
        self, baseline: Mapping[str, Sequence[Any]], treatments: Mapping[str, Mapping[str, Sequence[Any]]]
    ) -> HypothesisResult:
        """Verify every treatment against the baseline and rank them."""
        results = {name: self.verify(baseline, metrics) for name, metrics in treatments.items()}
        return HypothesisResult(name=self.name, results=results, ranking=self.rank(results))

    def __repr__(self) -> str:
        return f"Hypothesis(name={self.name!r}, metrics={self.metrics!r})"


def hypothesis(
    *,
    verifier: Verifier | None = None,
    metrics: str | Sequence[str] | None = None,
    name: str | None = None,
) -> Callable[[Callable[[Mapping[str, Any]], float]], Hypothesis]:
    """Decorate a ranker function to build a :class:`Hypothesis`."""

    def decorate(ranker: Callable[[Mapping[str, Any]], float]) -> Hypothesis:
        return Hypothesis(verifier=verifier, metrics=metrics, ranker=ranker, name=name or ranker.__name__)

    return decorate
