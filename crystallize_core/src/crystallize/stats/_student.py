"""Student's t quantiles and the t interval of a mean, without SciPy.

A summary table shows each condition's mean with its confidence interval;
with a handful of replicates the interval must use Student's t, not the
normal distribution (for 3 replicates the 95% quantile is 4.30, not 1.96).
The core may not import SciPy, so the quantile is computed here:

- for ``df <= 200`` exactly: ``P(|T| < t)`` has a closed form for integer
  degrees of freedom (Abramowitz and Stegun 26.7.3-4, a finite series in
  ``cos(theta)`` with ``theta = atan(t / sqrt(df))``), inverted by bisection
  on ``theta`` to double precision;
- above, by the Cornish-Fisher expansion around the normal quantile (Hill
  1970, ACM Algorithm 396), whose error there is below ``1e-9``.

The test suite checks both against ``scipy.stats.t.ppf``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from crystallize.stats._common import normal

__all__ = ["t_quantile", "mean_interval"]

_EXACT_UP_TO = 200


def _central(theta: float, df: int) -> float:
    """``P(|T| < sqrt(df) tan(theta))`` for ``df`` degrees of freedom (A&S 26.7.3-4)."""
    c, s = math.cos(theta), math.sin(theta)
    c2 = c * c
    if df % 2:
        if df == 1:
            return 2 * theta / math.pi
        term = total = c
        for k in range(3, df - 1, 2):
            term *= c2 * (k - 1) / k
            total += term
        return 2 / math.pi * (theta + s * total)
    term = total = 1.0
    for k in range(2, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return s * total


def _cornish_fisher(p: float, df: int) -> float:
    z = normal.inv_cdf(p)
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``scipy.stats.t.ppf(p, df)``).

    :param p: a probability strictly between 0 and 1.
    :param df: a positive whole number of degrees of freedom.
    """
    if not 0 < p < 1:
        raise ValueError(f"t_quantile: p must be strictly between 0 and 1, got {p!r}")
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"t_quantile: df must be a positive int, got {df!r}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1 - p, df)
    if df > _EXACT_UP_TO:
        return _cornish_fisher(p, df)
    central = 2 * p - 1  # P(|T| < t) for the upper quantile t
    low, high = 0.0, math.pi / 2
    for _ in range(200):
        mid = (low + high) / 2
        if mid in (low, high):
            break
        if _central(mid, df) < central:
            low = mid
        else:
            high = mid
    return math.sqrt(df) * math.tan((low + high) / 2)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided Student t confidence interval of the mean of ``values``.

    ``(nan, nan)`` with fewer than two values (no spread to estimate).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    centre = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - centre) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return centre - half, centre + half
