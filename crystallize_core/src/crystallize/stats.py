"""Small, dependency-free statistics for hypotheses.

The default verifier is a two-sided permutation test on the difference of
means. It makes no normality assumption, is exact for small samples (all
relabellings are enumerated) and uses a fixed-seed Monte Carlo estimate for
large ones, so the same metrics always give the same p-value. Install SciPy
and pass your own verifier for parametric tests.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["permutation_test", "mean"]

_EXACT_LIMIT = 20_000


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (``nan`` for an empty sequence)."""
    return math.fsum(values) / len(values) if values else math.nan


def _as_floats(values: Sequence[Any], label: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"permutation_test: {label} values must be numbers, got {list(values)[:5]!r}") from None


def permutation_test(
    baseline: Mapping[str, Sequence[float]] | Sequence[float],
    treatment: Mapping[str, Sequence[float]] | Sequence[float],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Two-sided permutation test for a difference in means.

    Accepts two sequences, or the ``{metric: values}`` mappings a hypothesis
    passes its verifier (which must then hold exactly one metric).

    :returns: ``p_value``, ``statistic`` (treatment mean minus baseline mean),
        ``baseline_mean``, ``treatment_mean``, ``significant`` (p < ``alpha``)
        and ``exact`` (whether every relabelling was enumerated).
    """
    b = _single(baseline, "baseline")
    t = _single(treatment, "treatment")
    if not b or not t:
        raise ValueError(
            f"permutation_test needs at least one value per group, got {len(b)} baseline and {len(t)} treatment values"
        )
    pooled = b + t
    n, k = len(pooled), len(t)
    total = math.fsum(pooled)
    observed = mean(t) - mean(b)
    tolerance = 1e-12 * max(1.0, abs(observed))

    def diff(t_sum: float) -> float:
        return t_sum / k - (total - t_sum) / (n - k)

    exact = math.comb(n, k) <= _EXACT_LIMIT
    if exact:
        hits = count = 0
        for idx in itertools.combinations(range(n), k):
            count += 1
            if abs(diff(math.fsum(pooled[i] for i in idx))) >= abs(observed) - tolerance:
                hits += 1
        p_value = hits / count
    else:
        rng = random.Random(seed)
        hits = 0
        for _ in range(n_resamples):
            sample = rng.sample(pooled, k)
            if abs(diff(math.fsum(sample))) >= abs(observed) - tolerance:
                hits += 1
        p_value = (hits + 1) / (n_resamples + 1)
    return {
        "p_value": p_value,
        "statistic": observed,
        "baseline_mean": mean(b),
        "treatment_mean": mean(t),
        "significant": p_value < alpha,
        "exact": exact,
    }


def _single(values: Mapping[str, Sequence[float]] | Sequence[float], label: str) -> list[float]:
    if isinstance(values, Mapping):
        if len(values) != 1:
            raise ValueError(
                f"the default verifier compares one metric, got {sorted(values)}; "
                "give the hypothesis metrics='name' or your own verifier"
            )
        values = next(iter(values.values()))
    return _as_floats(values, label)
