"""Permutation tests on the mean difference: unpaired relabelling and paired sign flips.

Both make no assumption about the shape of the distribution. When the
number of rearrangements is small they are all enumerated and the p-value is
exact; otherwise a fixed-seed Monte Carlo sample of rearrangements estimates
it, so the same data always give the same p-value. The conventions are
SciPy's (``scipy.stats.permutation_test``): the observed arrangement counts
as one of the rearrangements, a Monte Carlo p-value is ``(hits + 1) /
(n_resamples + 1)``, and a two-sided p-value is twice the smaller one-sided
one (at most 1). Rearrangements whose statistic equals the observed one up to
rounding count as ties (see :func:`~crystallize.stats._common.tie_tolerance`).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable
from typing import Any

from crystallize.stats._common import Values, check_alternative, groups, mean, pairs, tie_tolerance

__all__ = ["permutation_test", "sign_flip_test", "EXACT_LIMIT"]

EXACT_LIMIT = 50_000
"""Enumerate every rearrangement when there are at most this many (or at most ``n_resamples``)."""


def _p_value(null: Iterable[float], observed: float, gamma: float, count: int, exact: bool, alternative: str) -> float:
    low = high = 0
    for value in null:
        if value <= observed + gamma:
            low += 1
        if value >= observed - gamma:
            high += 1
    extra = 0 if exact else 1
    p_less = (low + extra) / (count + extra)
    p_greater = (high + extra) / (count + extra)
    if alternative == "less":
        return p_less
    if alternative == "greater":
        return p_greater
    return min(1.0, 2 * min(p_less, p_greater))


def _is_exact(count: int, n_resamples: int, exact: bool | None) -> bool:
    if exact is None:
        return count <= max(EXACT_LIMIT, n_resamples)
    return bool(exact)


def _check_resamples(n_resamples: int, caller: str) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"{caller}: n_resamples must be a positive int, got {n_resamples!r}")


def permutation_test(
    baseline: Values,
    treatment: Values,
    *,
    alternative: str = "two-sided",
    n_resamples: int = 9_999,
    seed: int = 0,
    exact: bool | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Unpaired permutation test for a difference in means (treatment minus baseline).

    Under the null hypothesis the labels "baseline" and "treatment" are
    exchangeable; the p-value is the share of relabellings whose mean
    difference is at least as extreme as the observed one. Use it when the
    two groups are independent (different seeds, or unknown seeds).

    :param baseline: the baseline's values (a sequence, or ``{metric: values}``
        with one metric).
    :param treatment: the treatment's values, same forms.
    :param alternative: ``"two-sided"``, ``"greater"`` (the treatment's mean
        is larger) or ``"less"``.
    :param n_resamples: relabellings drawn when not enumerating them all.
    :param seed: seed of the Monte Carlo draws.
    :param exact: ``None``: enumerate when there are at most
        ``max(EXACT_LIMIT, n_resamples)`` relabellings; ``True``/``False``
        force enumeration / Monte Carlo.
    :param alpha: significance level for ``significant``.
    :returns: ``test``, ``paired`` (``False``), ``alternative``, ``p_value``,
        ``statistic`` (the mean difference), ``baseline_mean``,
        ``treatment_mean``, ``n_baseline``, ``n_treatment``, ``exact`` and
        ``significant`` (``p_value < alpha``).
    """
    check_alternative(alternative)
    _check_resamples(n_resamples, "permutation_test")
    b, t = groups(baseline, treatment, "permutation_test")
    pooled = b + t
    n, k = len(pooled), len(t)
    total = math.fsum(pooled)
    observed = mean(t) - mean(b)

    def diff(t_sum: float) -> float:
        return t_sum / k - (total - t_sum) / (n - k)

    count = math.comb(n, k)
    is_exact = _is_exact(count, n_resamples, exact)
    if is_exact:
        null: Iterable[float] = (diff(math.fsum(c)) for c in itertools.combinations(pooled, k))
    else:
        sample = random.Random(seed).sample
        null = (diff(math.fsum(sample(pooled, k))) for _ in range(n_resamples))
        count = n_resamples
    p_value = _p_value(null, observed, tie_tolerance(observed, pooled), count, is_exact, alternative)
    return {
        "test": "permutation",
        "paired": False,
        "alternative": alternative,
        "p_value": p_value,
        "statistic": observed,
        "baseline_mean": mean(b),
        "treatment_mean": mean(t),
        "n_baseline": len(b),
        "n_treatment": len(t),
        "exact": is_exact,
        "significant": p_value < alpha,
    }


def sign_flip_test(
    baseline: Values,
    treatment: Values,
    *,
    alternative: str = "two-sided",
    n_resamples: int = 9_999,
    seed: int = 0,
    exact: bool | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Paired permutation (sign-flip) test for the mean of the differences.

    Position ``i`` of both groups is one replicate, run with the same seed
    in both conditions. Under the null hypothesis the two values of a pair
    are exchangeable, so each difference ``treatment[i] - baseline[i]`` is as
    likely positive as negative; the p-value is the share of the ``2**n`` sign
    assignments whose mean difference is at least as extreme as the observed
    one. Pairing removes the replicate-to-replicate variation both conditions
    share, so it detects smaller effects than :func:`permutation_test`.

    Parameters and result as for :func:`permutation_test` (``test`` is
    ``"sign_flip"``, ``paired`` is ``True``, ``n_baseline == n_treatment``
    is the number of pairs).
    """
    check_alternative(alternative)
    _check_resamples(n_resamples, "sign_flip_test")
    b, t = pairs(baseline, treatment, "sign_flip_test")
    d = [y - x for x, y in zip(b, t)]
    n = len(d)
    total = math.fsum(d)
    observed = total / n
    count = 2**n
    is_exact = _is_exact(count, n_resamples, exact)
    if is_exact:
        # Flipping the signs of a subset S turns the sum into total - 2 * sum(S).
        null: Iterable[float] = (
            (total - 2 * math.fsum(flipped)) / n for size in range(n + 1) for flipped in itertools.combinations(d, size)
        )
    else:
        rng = random.Random(seed)
        bits = rng.getrandbits

        def draw() -> float:
            mask = bits(n)
            return (total - 2 * math.fsum(v for i, v in enumerate(d) if mask >> i & 1)) / n

        null = (draw() for _ in range(n_resamples))
        count = n_resamples
    p_value = _p_value(null, observed, tie_tolerance(observed, b + t), count, is_exact, alternative)
    return {
        "test": "sign_flip",
        "paired": True,
        "alternative": alternative,
        "p_value": p_value,
        "statistic": observed,
        "baseline_mean": mean(b),
        "treatment_mean": mean(t),
        "n_baseline": n,
        "n_treatment": n,
        "exact": is_exact,
        "significant": p_value < alpha,
    }
