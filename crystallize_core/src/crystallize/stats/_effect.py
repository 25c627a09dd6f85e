"""Standardised effect sizes of the mean difference (treatment minus baseline).

A p-value says whether a difference is distinguishable from noise; an effect
size says how large it is, in standard deviations, comparable across metrics
and experiments. Conventional readings (Cohen 1988): 0.2 small, 0.5 medium,
0.8 large.
"""

from __future__ import annotations

import math

from crystallize.stats._common import Values, groups, mean, pairs, variance

__all__ = ["cohens_d", "hedges_g", "cohens_dz"]


def _standardised(difference: float, sd: float) -> float:
    if math.isnan(sd):
        return math.nan
    if sd == 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return difference / sd


def cohens_d(baseline: Values, treatment: Values) -> float:
    """Cohen's d: the mean difference over the pooled standard deviation (unpaired).

    ``nan`` when the pooled standard deviation is undefined (fewer than
    three values in all); ``±inf`` when it is zero and the means differ.
    """
    b, t = groups(baseline, treatment, "cohens_d")
    nb, nt = len(b), len(t)
    if nb + nt < 3:
        return math.nan
    pooled = ((nb - 1) * (variance(b) if nb > 1 else 0.0) + (nt - 1) * (variance(t) if nt > 1 else 0.0)) / (nb + nt - 2)
    return _standardised(mean(t) - mean(b), math.sqrt(pooled))


def hedges_g(baseline: Values, treatment: Values) -> float:
    """Hedges' g: Cohen's d corrected for its upward bias in small samples (unpaired).

    ``g = J * d`` with the exact factor ``J = Γ(df/2) / (sqrt(df/2) Γ((df-1)/2))``,
    ``df = n_baseline + n_treatment - 2``.
    """
    b, t = groups(baseline, treatment, "hedges_g")
    d = cohens_d(b, t)
    df = len(b) + len(t) - 2
    if math.isnan(d) or df < 2:
        return math.nan
    j = math.exp(math.lgamma(df / 2) - math.lgamma((df - 1) / 2)) / math.sqrt(df / 2)
    return d * j


def cohens_dz(baseline: Values, treatment: Values) -> float:
    """Cohen's d_z: the mean of the paired differences over their standard deviation (paired).

    ``nan`` below two pairs; ``±inf`` when every difference is the same non-zero value.
    """
    b, t = pairs(baseline, treatment, "cohens_dz")
    d = [y - x for x, y in zip(b, t)]
    return _standardised(mean(d), math.sqrt(variance(d)) if len(d) > 1 else math.nan)
