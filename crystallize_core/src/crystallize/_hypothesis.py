"""Hypotheses: compare each treatment with the baseline, then rank treatments.

A :class:`Hypothesis` tests one value per replicate. For every treatment it
takes the selected metric's value in each replicate of the baseline and of
the treatment, decides whether the replicates are paired (same seed in both
conditions), runs a test (:mod:`crystallize.stats`), corrects the p-values
across the treatments, and ranks the treatments (``ranker(verdict) ->
float``, lower is better)::

    @hypothesis(metrics="accuracy", alternative="greater")
    def by_p_value(verdict):
        return verdict["p_value"]

A metric recorded several times in a replicate is refused unless
``reduce=`` says how to turn those values into one (testing them as if they
were replicates would be pseudo-replication). A custom ``verifier(baseline,
treatment) -> mapping`` still works: it receives ``{metric: [one value per
replicate]}``, gaps left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import Any

import attrs

from crystallize._names import check_name, name_problem
from crystallize.errors import MissingMetricError, PseudoReplicationError
from crystallize.stats import TESTS, compare
from crystallize.stats._bootstrap import CI_METHODS
from crystallize.stats._common import check_alternative
from crystallize.stats._compare import FAMILIES, check_test
from crystallize.stats._correction import CORRECTIONS, adjust_p_values

__all__ = ["Hypothesis", "HypothesisResult", "hypothesis", "rank_by_p_value", "REDUCERS"]

Verifier = Callable[[Mapping[str, Sequence[Any]], Mapping[str, Sequence[Any]]], Mapping[str, Any]]


def _mean(values: Sequence[Any]) -> float:
    from statistics import fmean  # imported on first use: statistics pulls in fractions and decimal

    return fmean(values)


def _median(values: Sequence[Any]) -> Any:
    from statistics import median

    return median(values)


REDUCERS: dict[str, Callable[[Sequence[Any]], Any]] = {
    "mean": _mean,
    "median": _median,
    "sum": math.fsum,
    "first": lambda values: values[0],
    "last": lambda values: values[-1],
    "min": min,
    "max": max,
}
"""Names ``reduce=`` accepts; each turns the values one replicate recorded into one value."""


def rank_by_p_value(result: Mapping[str, Any]) -> float:
    """Default ranker: the verifier's ``p_value`` (lower ranks first).

    A verdict without a numeric ``p_value`` (your own verifier returned other
    values) scores ``nan``: it is ranked last, and a hypothesis where no
    treatment has a score names no ``best``. Pass ``ranker=...`` to rank by
    what your verifier returns.
    """
    value = result.get("p_value") if isinstance(result, Mapping) else None
    if isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    return math.nan


@attrs.frozen
class HypothesisResult:
    """A verified hypothesis.

    :ivar results: ``{treatment: verdict}``. With the built-in tests a verdict
        is the mapping :func:`crystallize.stats.compare` returns, plus
        ``metric``, ``pairing`` (why it is paired or not) and ``gaps``
        (``{"baseline": [replicates], "treatment": [replicates]}`` without a
        value); ``adjusted_p_value`` and ``significant`` account for the
        correction across treatments.
    :ivar ranking: ``{"best": name, "ranked": [(name, score), ...]}``.
    :ivar correction: ``"holm"``, ``"bh"`` or ``None``.
    :ivar alpha: the significance level.
    """

    name: str
    results: Mapping[str, Any]
    ranking: Mapping[str, Any]
    correction: str | None = None
    alpha: float | None = None

    def get_for_treatment(self, treatment: str) -> Any:
        """The verdict for ``treatment``, or ``None`` if it was not compared."""
        return self.results.get(treatment)

    def verdict(self, treatment: str) -> Any:
        """The verdict for ``treatment``; ``KeyError`` naming the compared treatments otherwise."""
        try:
            return self.results[treatment]
        except KeyError:
            raise KeyError(
                f"hypothesis {self.name!r} has no verdict for {treatment!r} (compared: {sorted(self.results)})"
            ) from None

    @property
    def significant(self) -> list[str]:
        """Treatments whose verdict says ``significant`` (after the correction), best ranked first."""
        return [
            name
            for name, _ in self.ranking.get("ranked", ())
            if isinstance(self.results.get(name), Mapping) and self.results[name].get("significant") is True
        ]


def _unscored(score: Any) -> bool:
    return isinstance(score, float) and math.isnan(score)


class _Column:
    """One metric of one condition: an entry per replicate, and the seeds."""

    __slots__ = ("entries", "seeds")

    def __init__(self, entries: list[Any], seeds: list[int | None] | None) -> None:
        self.entries = entries
        self.seeds = seeds


def _has_metric(source: Any, key: str) -> bool:
    if isinstance(source, Mapping):
        return key in source
    return key in source.metrics or key in source.by_replicate


def _recorded(source: Any) -> list[str]:
    if isinstance(source, Mapping):
        return list(source)
    return list(dict.fromkeys([*source.metrics, *source.by_replicate]))


class Hypothesis:
    """A statistical comparison of treatments against the baseline.

    :param verifier: your own ``verifier(baseline, treatment) -> mapping``,
        each argument ``{metric: [one value per replicate]}`` restricted to
        ``metrics`` (gaps left out; when paired, position ``i`` of both is
        the same replicate). A test of :mod:`crystallize.stats`
        (``permutation_test``, ``welch_t_test``, ...) given here is the same
        as naming it in ``test=`` (``permutation_test`` stands for the
        permutation family, paired by the seeds like the default). Leave it
        out to use ``test``.
    :param metrics: the metric, or metrics, to compare (the built-in tests
        take one). ``None``: every recorded metric. A list of lists
        (``[["loss"], ["accuracy", "f1"]]``) makes groups: your verifier is
        called once per group and the verdict is the list of its results.
    :param ranker: ``ranker(verdict) -> float``; lower ranks first (default: ``p_value``).
    :param name: defaults to the ranker's function name, else the metric.
    :param test: ``"permutation"`` (default; dependency-free), ``"t"``
        (Welch / paired t) or ``"rank"`` (Mann-Whitney / Wilcoxon) pick the
        unpaired or paired member from the pairing; a test name
        (``"sign_flip"``, ``"welch"``, ``"paired_t"``, ``"mann_whitney"``,
        ``"wilcoxon"``) fixes it. ``t`` and ``rank`` need SciPy.
    :param alternative: ``"two-sided"``, ``"greater"`` (the treatment's
        values are larger than the baseline's) or ``"less"``.
    :param paired: ``None`` (default): paired when baseline and treatment
        ran every compared replicate with the same seed, unpaired when a
        seed differs or is unknown. ``True``/``False`` decide it yourself.
    :param correction: ``"holm"`` (default; family-wise error rate),
        ``"bh"`` (Benjamini-Hochberg false discovery rate) or ``None``,
        applied across the treatments of this hypothesis.
    :param reduce: how to turn a metric recorded several times in one
        replicate into one value: ``"mean"``, ``"median"``, ``"sum"``,
        ``"first"``, ``"last"``, ``"min"``, ``"max"``, or
        ``callable(values) -> value``. Without it such a metric is refused
        (:class:`~crystallize.errors.PseudoReplicationError`).
    :param alpha: significance level.
    :param confidence: coverage of the bootstrap interval ``ci``.
    :param ci_method: ``"bca"`` (default) or ``"percentile"``.
    :param n_resamples: bootstrap and Monte Carlo draws.
    :param seed: seed of those draws (results are deterministic).
    """

    def __init__(
        self,
        verifier: Verifier | None = None,
        metrics: str | Sequence[str] | None = None,
        ranker: Callable[[Mapping[str, Any]], float] | None = None,
        name: str | None = None,
        *,
        test: str | None = None,
        alternative: str = "two-sided",
        paired: bool | None = None,
        correction: str | None = "holm",
        reduce: str | Callable[[Sequence[Any]], Any] | None = None,
        alpha: float = 0.05,
        confidence: float = 0.95,
        ci_method: str = "bca",
        n_resamples: int = 9_999,
        seed: int = 0,
    ) -> None:
        # permutation_test was the default verifier: given here it means the permutation family,
        # paired by the seeds like the default; any other test of crystallize.stats is taken as named.
        builtin = {spec.function: spec.name for spec in TESTS.values()}
        if verifier is not None and verifier in builtin:
            if test is not None and test != builtin[verifier]:
                raise ValueError(f"verifier={verifier.__name__} and test={test!r} disagree; give one of them")
            verifier, test = None, builtin[verifier]
        if verifier is not None and test is not None:
            raise ValueError(
                f"give either verifier= (your own function) or test= (a built-in test), not both; got test={test!r}"
            )
        if verifier is not None and not callable(verifier):
            raise TypeError(f"verifier must be callable(baseline, treatment) -> mapping, got {verifier!r}")
        self.verifier = verifier
        self.test = check_test(test or "permutation")
        self.alternative = check_alternative(alternative)
        if paired not in (None, True, False):
            raise ValueError(f"paired must be None (decided from the seeds), True or False, got {paired!r}")
        if paired is not None and self.test not in FAMILIES and TESTS[self.test].paired != paired:
            kind = "paired" if TESTS[self.test].paired else "unpaired"
            raise ValueError(f"test {self.test!r} is {kind}, which contradicts paired={paired!r}")
        self.paired = paired
        if correction not in (*CORRECTIONS, None):
            raise ValueError(
                "correction must be 'holm' (family-wise error), 'bh' (Benjamini-Hochberg false discovery "
                f"rate) or None, got {correction!r}"
            )
        self.correction = correction
        if reduce is not None and not callable(reduce) and reduce not in REDUCERS:
            raise ValueError(
                f"reduce must be one of {', '.join(map(repr, REDUCERS))} or callable(values) -> value, got {reduce!r}"
            )
        self.reduce = reduce
        if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
            raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha!r}")
        self.alpha = alpha
        if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
            raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
        self.confidence = confidence
        if ci_method not in CI_METHODS:
            raise ValueError(f"ci_method must be one of {', '.join(map(repr, CI_METHODS))}, got {ci_method!r}")
        self.ci_method = ci_method
        if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
            raise ValueError(f"n_resamples must be a positive int, got {n_resamples!r}")
        self.n_resamples = n_resamples
        self.seed = seed
        self.groups: tuple[tuple[str, ...], ...] | None = None
        if isinstance(metrics, str):
            self.metrics: tuple[str, ...] | None = (metrics,)
        elif metrics is not None and metrics and all(isinstance(g, (list, tuple)) for g in metrics):
            if verifier is None:
                raise ValueError(
                    f"metrics={metrics!r} makes groups of metrics, which only your own verifier can compare; "
                    "give verifier=... or one metric name"
                )
            self.groups = tuple(tuple(group) for group in metrics)
            self.metrics = tuple(dict.fromkeys(m for group in self.groups for m in group))
        else:
            self.metrics = None if metrics is None else tuple(metrics)
        self.ranker = ranker or rank_by_p_value
        default_name = getattr(ranker, "__name__", None) if ranker is not None else None
        if default_name in (None, "<lambda>"):
            default_name = "hypothesis" if not self.metrics else "_".join(self.metrics)
        if name is None and name_problem(default_name) is not None:
            default_name = "hypothesis"  # a metric name that cannot be a file name
        self.name = check_name(name or default_name, "hypothesis")

    # -- one value per replicate -------------------------------------------------------

    def _column(self, source: Any, key: str, label: str) -> _Column:
        """``key``'s entries per replicate in ``source`` (ConditionMetrics or ``{metric: values}``)."""
        if isinstance(source, Mapping):  # values over replicates, one each; seeds unknown
            return _Column(list(source[key]), None)
        if source.replicates == 0:  # built by hand from flat lists
            return _Column(list(source.metrics.get(key, ())), None)
        entries = source.by_replicate.get(key)
        if entries is None:
            raise PseudoReplicationError(
                f"hypothesis {self.name!r}: which replicate recorded each value of metric {key!r} in the "
                f"{label} is unknown (resumed from results that kept no split by replicate); rerun it with "
                "strategy='rerun' to test it"
            )
        return _Column(entries, list(source.seeds))

    def _one_value(self, column: _Column, key: str, label: str) -> list[Any]:
        """Each entry reduced to one value (gaps stay ``None``); refuse series without ``reduce``."""
        from crystallize._result import Series

        reduce = self.reduce
        if reduce is None:
            for replicate, entry in enumerate(column.entries):
                if type(entry) is Series:
                    raise PseudoReplicationError(
                        f"hypothesis {self.name!r} tests one value per replicate, but metric {key!r} was recorded "
                        f"{len(entry)} times in {label} replicate {replicate}; testing each value as if it were a "
                        f"replicate would overstate the evidence (pseudo-replication). Say how to reduce a "
                        f"replicate's values to one: Hypothesis(..., reduce='mean') (or 'last', 'sum', 'median', "
                        f"'min', 'max', 'first', or a function of the list), or record {key!r} once per replicate"
                    )
            return column.entries
        fn = REDUCERS[reduce] if isinstance(reduce, str) else reduce
        return [None if entry is None else fn(entry if type(entry) is Series else [entry]) for entry in column.entries]

    def _pairing(self, b: _Column, t: _Column, used: list[int]) -> tuple[bool, str]:
        """Whether to pair, and why (shown in the verdict as ``pairing``)."""
        if self.paired is not None:
            return self.paired, f"paired={self.paired} given"
        if self.test not in FAMILIES:
            paired = TESTS[self.test].paired
            return paired, f"test {self.test!r} is {'paired' if paired else 'unpaired'}"
        if b.seeds is None or t.seeds is None:
            return False, "seeds unknown"
        if not used:
            return False, "no replicate has a value in both conditions"
        for r in used:
            sb = b.seeds[r] if r < len(b.seeds) else None
            st = t.seeds[r] if r < len(t.seeds) else None
            if sb is None or st is None:
                return False, f"seed of replicate {r} unknown"
            if sb != st:
                return False, f"replicate {r} ran with different seeds ({sb} and {st})"
        return True, "every compared replicate ran with the same seed in both conditions"

    def _select(
        self, baseline: Any, treatment: Any, keys: tuple[str, ...] | None = None
    ) -> dict[str, tuple[list[Any], list[Any], _Column, _Column]]:
        if keys is None:
            keys = self.metrics if self.metrics is not None else tuple(_recorded(baseline))
        selected = {}
        for key in keys:
            for label, source in (("baseline", baseline), ("treatment", treatment)):
                if not _has_metric(source, key):
                    raise MissingMetricError(
                        f"hypothesis {self.name!r} needs metric {key!r}, which the {label} did not "
                        f"record (recorded: {sorted(_recorded(source)) or 'none'})"
                    )
            b = self._column(baseline, key, "the baseline's")
            t = self._column(treatment, key, "the treatment's")
            selected[key] = (self._one_value(b, key, "baseline"), self._one_value(t, key, "treatment"), b, t)
        return selected

    # -- verification --------------------------------------------------------------------

    def verify(self, baseline: Any, treatment: Any) -> Any:
        """Compare one treatment with the baseline (no correction; see :meth:`evaluate`).

        With groups of metrics, the list of the verifier's results, one per group.

        :param baseline: the baseline's :class:`~crystallize._result.ConditionMetrics`,
            or ``{metric: [one value per replicate]}``.
        :param treatment: the treatment's, in the same form.
        """
        if self.groups is not None:
            return [self._verify(self._select(baseline, treatment, group)) for group in self.groups]
        return self._verify(self._select(baseline, treatment))

    def _verify(self, selected: dict[str, tuple[list[Any], list[Any], _Column, _Column]]) -> Any:
        if self.verifier is None:
            if len(selected) != 1:
                raise ValueError(
                    f"hypothesis {self.name!r}: the built-in tests compare one metric, got {sorted(selected)}; "
                    "give the hypothesis metrics='name' or your own verifier"
                )
            ((key, (b, t, b_col, t_col)),) = selected.items()
            return self._compare(key, b, t, b_col, t_col)
        b_values: dict[str, list[Any]] = {}
        t_values: dict[str, list[Any]] = {}
        for key, (b, t, b_col, t_col) in selected.items():
            both = [r for r in range(min(len(b), len(t))) if b[r] is not None and t[r] is not None]
            paired, _ = self._pairing(b_col, t_col, both)
            if paired:
                b_values[key], t_values[key] = [b[r] for r in both], [t[r] for r in both]
            else:
                b_values[key] = [v for v in b if v is not None]
                t_values[key] = [v for v in t if v is not None]
        return self.verifier(b_values, t_values)

    def _compare(self, key: str, b: list[Any], t: list[Any], b_col: _Column, t_col: _Column) -> dict[str, Any]:
        both = [r for r in range(min(len(b), len(t))) if b[r] is not None and t[r] is not None]
        paired, why = self._pairing(b_col, t_col, both)
        if paired:
            if len(b) != len(t):
                raise ValueError(
                    f"hypothesis {self.name!r} is paired, but the baseline has {len(b)} replicates of "
                    f"{key!r} and the treatment {len(t)}; pass paired=False"
                )
            b_used, t_used = [b[r] for r in both], [t[r] for r in both]
            if not both:
                raise ValueError(
                    f"hypothesis {self.name!r}: no replicate has a value of {key!r} in both conditions, so "
                    "nothing can be paired; pass paired=False to compare them unpaired"
                )
        else:
            b_used, t_used = [v for v in b if v is not None], [v for v in t if v is not None]
        try:
            verdict = compare(
                b_used,
                t_used,
                paired=paired,
                test=self.test,
                alternative=self.alternative,
                alpha=self.alpha,
                confidence=self.confidence,
                ci_method=self.ci_method,
                n_resamples=self.n_resamples,
                seed=self.seed,
            )
        except (TypeError, ValueError) as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(f"(hypothesis {self.name!r}, metric {key!r})")
            raise
        verdict["metric"] = key
        verdict["pairing"] = why
        verdict["gaps"] = {
            "baseline": [r for r, v in enumerate(b) if v is None],
            "treatment": [r for r, v in enumerate(t) if v is None],
        }
        return verdict

    def rank(self, results: Mapping[str, Any]) -> dict[str, Any]:
        """Rank treatments by the ranker's score, lowest first (``nan`` scores last)."""
        scored = [(name, self.ranker(res)) for name, res in results.items()]
        ranked = sorted(scored, key=lambda x: (_unscored(x[1]), x[1]))
        best = ranked[0][0] if ranked and not _unscored(ranked[0][1]) else None
        return {"best": best, "ranked": ranked}

    def rank_treatments(self, results: Mapping[str, Any]) -> dict[str, Any]:
        """crystallize-ml's name of :meth:`rank`."""
        return self.rank(results)

    def _correct(self, results: dict[str, Any]) -> dict[str, Any]:
        """Adjust the p-values across treatments (verdicts with a numeric ``p_value`` only)."""
        names = [
            n
            for n, r in results.items()
            if isinstance(r, Mapping) and isinstance(r.get("p_value"), Real) and not isinstance(r["p_value"], bool)
        ]
        if not names:
            return results
        if self.verifier is not None and self.correction is None:
            return results
        adjusted = adjust_p_values([float(results[n]["p_value"]) for n in names], self.correction)
        for name, p in zip(names, adjusted):
            verdict = dict(results[name])
            verdict["adjusted_p_value"] = p
            verdict["correction"] = self.correction
            if self.verifier is None:  # your own verifier decides its own significance
                verdict["significant"] = not math.isnan(p) and p < self.alpha
            results[name] = verdict
        return results

    def evaluate(self, baseline: Any, treatments: Mapping[str, Any]) -> HypothesisResult:
        """Verify every treatment against the baseline, correct across them, and rank them.

        :param baseline: the baseline's metrics (``result.metrics.baseline``).
        :param treatments: ``{name: metrics}`` (``result.metrics.treatments``).
        """
        results = self._correct({name: self.verify(baseline, metrics) for name, metrics in treatments.items()})
        return HypothesisResult(
            name=self.name, results=results, ranking=self.rank(results), correction=self.correction, alpha=self.alpha
        )

    def __repr__(self) -> str:
        test = "verifier" if self.verifier is not None else self.test
        return (
            f"Hypothesis(name={self.name!r}, metrics={self.metrics!r}, test={test!r}, "
            f"alternative={self.alternative!r}, correction={self.correction!r})"
        )


def hypothesis(
    *,
    verifier: Verifier | None = None,
    metrics: str | Sequence[str] | None = None,
    name: str | None = None,
    **options: Any,
) -> Callable[[Callable[[Mapping[str, Any]], float]], Hypothesis]:
    """Decorate a ranker function to build a :class:`Hypothesis`.

    Keyword ``options`` are those of :class:`Hypothesis` (``test``,
    ``alternative``, ``paired``, ``correction``, ``reduce``, ``alpha``, ...).
    """

    def decorate(ranker: Callable[[Mapping[str, Any]], float]) -> Hypothesis:
        return Hypothesis(verifier=verifier, metrics=metrics, ranker=ranker, name=name or ranker.__name__, **options)

    return decorate
