"""Corrections for testing several treatments against one baseline.

Testing k treatments at level alpha each finds a "significant" one by chance
far more often than alpha. Holm's step-down method keeps the family-wise
error rate (any false positive at all) at alpha, under any dependence
between the tests. Benjamini-Hochberg keeps the false discovery rate (the
expected share of false positives among the treatments declared significant)
at alpha; it is less conservative and suits screening many treatments.
Both return adjusted p-values: compare them with alpha directly. A ``nan``
p-value (a test that could not be computed) stays ``nan`` and does not count
among the tests corrected for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["holm", "benjamini_hochberg", "adjust_p_values", "CORRECTIONS"]

CORRECTIONS = ("holm", "bh")


def _check(p_values: Sequence[float]) -> list[float]:
    values = [float(p) for p in p_values]
    bad = [p for p in values if not (0 <= p <= 1 or math.isnan(p))]
    if bad:
        raise ValueError(f"p-values must lie in [0, 1], got {bad[0]!r}")
    return values


def _ranked(p: list[float]) -> list[int]:
    """Indices of the p-values that are not ``nan``, smallest p-value first."""
    return sorted((i for i, v in enumerate(p) if not math.isnan(v)), key=p.__getitem__)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given.

    Sorted ascending, the i-th smallest of m p-values (i from 1) is
    multiplied by ``m - i + 1``; adjusted values are made non-decreasing in
    that order and capped at 1.
    """
    p = _check(p_values)
    order = _ranked(p)
    m = len(order)
    adjusted = [math.nan] * len(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the order given.

    Sorted ascending, the i-th smallest of m p-values is multiplied by
    ``m / i``; adjusted values are made non-decreasing from the largest
    down and capped at 1 (as ``scipy.stats.false_discovery_control``).
    """
    p = _check(p_values)
    order = _ranked(p)
    m = len(order)
    adjusted = [math.nan] * len(p)
    running = math.inf
    for rank in range(m - 1, -1, -1):
        index = order[rank]
        running = min(running, p[index] * m / (rank + 1))
        adjusted[index] = min(1.0, running)
    return adjusted


def adjust_p_values(p_values: Sequence[float], method: str | None) -> list[float]:
    """Adjust ``p_values`` with ``method``: ``"holm"``, ``"bh"``, or ``None`` (unchanged)."""
    if method is None:
        return _check(p_values)
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    raise ValueError(
        f"correction must be 'holm' (family-wise error), 'bh' (Benjamini-Hochberg false discovery rate) "
        f"or None, got {method!r}"
    )
