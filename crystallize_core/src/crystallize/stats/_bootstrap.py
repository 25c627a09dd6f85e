"""Bootstrap confidence intervals for the mean difference (treatment minus baseline).

Resampling replicates with replacement shows how much the mean difference
would vary had other replicates been drawn. Unpaired, each group is resampled
on its own; paired, replicates are resampled as pairs (so what both
conditions share in a replicate stays together). Draws use a fixed seed, so
the same data always give the same interval.

Two methods, as in ``scipy.stats.bootstrap``: ``"percentile"`` takes
quantiles of the bootstrap distribution; ``"bca"`` (bias-corrected and
accelerated, Efron and Tibshirani 1993, ch. 14) shifts them to correct for
bias and skew, which keeps coverage closer to the nominal level in small or
skewed samples. BCa needs at least two values in every resampled group. Its
bias correction counts draws equal to the estimate as half below, half above
(SciPy's rule), treating draws equal up to rounding as equal.
"""

from __future__ import annotations

import math
import random

from crystallize.stats._common import Values, check_alternative, groups, normal, pairs, quantile, tie_tolerance

__all__ = ["bootstrap_distribution", "bootstrap_ci", "CI_METHODS"]

CI_METHODS = ("bca", "percentile")


def _check(confidence: float, method: str, n_resamples: int) -> None:
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    if method not in CI_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, CI_METHODS))}, got {method!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive int, got {n_resamples!r}")


def bootstrap_distribution(
    baseline: Values, treatment: Values, *, paired: bool = False, n_resamples: int = 9_999, seed: int = 0
) -> list[float]:
    """``n_resamples`` bootstrap replicates of the mean difference, in draw order.

    :param paired: resample pairs (position ``i`` of both groups together)
        instead of each group on its own.
    """
    _check(0.5, "bca", n_resamples)
    choices = random.Random(seed).choices
    fsum = math.fsum
    if paired:
        b, t = pairs(baseline, treatment, "bootstrap")
        d = [y - x for x, y in zip(b, t)]
        n = len(d)
        return [fsum(choices(d, k=n)) / n for _ in range(n_resamples)]
    b, t = groups(baseline, treatment, "bootstrap")
    nb, nt = len(b), len(t)
    return [fsum(choices(t, k=nt)) / nt - fsum(choices(b, k=nb)) / nb for _ in range(n_resamples)]


def _jackknife(b: list[float], t: list[float], paired: bool) -> list[list[float]]:
    """Leave-one-out mean differences, one list per resampled group."""
    if paired:
        d = [y - x for x, y in zip(b, t)]
        total, n = math.fsum(d), len(d)
        return [[(total - v) / (n - 1) for v in d]]
    sb, st, nb, nt = math.fsum(b), math.fsum(t), len(b), len(t)
    return [[st / nt - (sb - v) / (nb - 1) for v in b], [(st - v) / (nt - 1) - sb / nb for v in t]]


def _bca_levels(
    b: list[float], t: list[float], paired: bool, distribution: list[float], alpha: float
) -> tuple[float, float]:
    """The quantile levels of the BCa interval (``nan`` where it is undefined)."""
    if min(len(b), len(t)) < 2:
        return math.nan, math.nan
    d = [y - x for x, y in zip(b, t)] if paired else None
    observed = math.fsum(d) / len(d) if d is not None else math.fsum(t) / len(t) - math.fsum(b) / len(b)
    gamma = tie_tolerance(observed, b + t)
    below = sum(1 for v in distribution if v < observed - gamma)
    at_most = sum(1 for v in distribution if v <= observed + gamma)
    share = (below + at_most) / (2 * len(distribution))
    if not 0 < share < 1:
        return math.nan, math.nan
    z0 = normal.inv_cdf(share)
    num = den = 0.0
    for theta in _jackknife(b, t, paired):
        n = len(theta)
        centre = math.fsum(theta) / n
        u = [(n - 1) * (centre - v) for v in theta]
        num += math.fsum(x**3 for x in u) / n**3
        den += math.fsum(x**2 for x in u) / n**2
    if den == 0:
        return math.nan, math.nan
    a = num / 6 / den**1.5
    z_alpha = normal.inv_cdf(alpha)
    levels = []
    for z in (z_alpha, -z_alpha):
        shifted = z0 + z
        levels.append(normal.cdf(z0 + shifted / (1 - a * shifted)))
    return levels[0], levels[1]


def bootstrap_ci(
    baseline: Values,
    treatment: Values,
    *,
    paired: bool = False,
    confidence: float = 0.95,
    method: str = "bca",
    alternative: str = "two-sided",
    n_resamples: int = 9_999,
    seed: int = 0,
    distribution: list[float] | None = None,
) -> tuple[float, float]:
    """Bootstrap confidence interval ``(low, high)`` for the mean difference.

    :param paired: resample replicates as pairs (see :func:`bootstrap_distribution`).
    :param confidence: coverage, e.g. ``0.95``.
    :param method: ``"bca"`` or ``"percentile"``.
    :param alternative: ``"two-sided"``; ``"greater"`` gives ``(low, inf)``,
        ``"less"`` gives ``(-inf, high)``, matching a one-sided test.
    :param n_resamples: bootstrap draws.
    :param seed: seed of the draws.
    :param distribution: a bootstrap distribution already drawn for these
        data (from :func:`bootstrap_distribution`), to compute several
        intervals from one set of draws.
    :returns: the interval; ``(nan, nan)`` when BCa is undefined (fewer than
        two values in a group, or every draw on one side of the estimate).
    """
    _check(confidence, method, n_resamples)
    check_alternative(alternative)
    b, t = (pairs if paired else groups)(baseline, treatment, "bootstrap_ci")
    if distribution is None:
        distribution = bootstrap_distribution(b, t, paired=paired, n_resamples=n_resamples, seed=seed)
    alpha = (1 - confidence) / 2 if alternative == "two-sided" else 1 - confidence
    if method == "bca":
        low_level, high_level = _bca_levels(b, t, paired, distribution, alpha)
    else:
        low_level, high_level = alpha, 1 - alpha
    ordered = sorted(distribution)
    low, high = quantile(ordered, low_level), quantile(ordered, high_level)
    if alternative == "greater":
        high = math.inf
    elif alternative == "less":
        low = -math.inf
    return low, high
