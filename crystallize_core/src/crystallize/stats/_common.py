"""What every test shares: reading its two groups, alternatives, moments, quantiles."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ALTERNATIVES",
    "Values",
    "check_alternative",
    "groups",
    "pairs",
    "mean",
    "variance",
    "quantile",
    "normal",
    "tie_tolerance",
]

ALTERNATIVES = ("two-sided", "greater", "less")
"""``"greater"``: the treatment's mean is larger than the baseline's; ``"less"``: smaller."""

Values = Mapping[str, Sequence[Any]] | Sequence[Any]
"""A group of values: a sequence, or ``{metric: values}`` holding exactly one metric
(the shape a hypothesis passes its verifier)."""


class _StandardNormal:
    """The standard normal distribution (``cdf``, ``inv_cdf``), made on first use.

    :class:`statistics.NormalDist` does the work; importing :mod:`statistics`
    imports :mod:`fractions` and :mod:`decimal` too, a few milliseconds that
    ``import crystallize`` need not pay for a test nobody has run yet.
    """

    __slots__ = ()
    _dist: Any = None

    def _get(self) -> Any:
        dist = _StandardNormal._dist
        if dist is None:
            from statistics import NormalDist

            dist = _StandardNormal._dist = NormalDist()
        return dist

    def cdf(self, x: float) -> float:
        return float(self._get().cdf(x))

    def inv_cdf(self, p: float) -> float:
        return float(self._get().inv_cdf(p))


normal = _StandardNormal()
"""The standard normal distribution (``cdf``, ``inv_cdf``)."""


def tie_tolerance(observed: float, data: Sequence[float]) -> float:
    """How far a resampled statistic may lie from ``observed`` and still count as equal to it.

    Rearrangements of the same values give the same statistic in exact
    arithmetic but may differ in the last bits in floating point; they must
    count as ties. SciPy allows ``100 * eps * |observed|``; a mean
    difference is rounded on the scale of the data, so the tolerance also
    covers ``16 * eps * max|value|`` (it matters when the difference is small
    compared with the values).
    """
    eps = 2.220446049250313e-16
    scale = max((abs(v) for v in data), default=0.0)
    return max(100 * eps * abs(observed), 16 * eps * scale)


def check_alternative(alternative: str) -> str:
    """``alternative`` if it is one of :data:`ALTERNATIVES`, else a ``ValueError`` naming it."""
    if alternative not in ALTERNATIVES:
        raise ValueError(
            f"alternative must be one of {', '.join(map(repr, ALTERNATIVES))}, got {alternative!r} "
            "('greater': the treatment's mean is larger than the baseline's)"
        )
    return alternative


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (``nan`` for an empty sequence)."""
    return math.fsum(values) / len(values) if values else math.nan


def variance(values: Sequence[float]) -> float:
    """Sample variance, ``n - 1`` in the denominator (``nan`` below two values)."""
    n = len(values)
    if n < 2:
        return math.nan
    m = math.fsum(values) / n
    return math.fsum((v - m) ** 2 for v in values) / (n - 1)


def quantile(ordered: Sequence[float], p: float) -> float:
    """The ``p``-quantile of sorted values, interpolated linearly between order statistics.

    This is Hyndman and Fan's type 7, NumPy's and SciPy's default (``method="linear"``).
    """
    if not ordered or math.isnan(p):
        return math.nan
    h = (len(ordered) - 1) * min(max(p, 0.0), 1.0)
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def _floats(values: Sequence[Any], label: str, caller: str) -> list[float]:
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)  # NumPy scalars, Decimal, Fraction
            except (TypeError, ValueError):
                raise TypeError(
                    f"{caller}: {label} values must be numbers, got {value!r} in {list(values)[:5]!r}; "
                    "a hypothesis over a list-valued metric needs your own verifier"
                ) from None
        out.append(float(value))
    return out


def _one(values: Values, label: str, caller: str) -> list[float]:
    if isinstance(values, Mapping):
        if len(values) != 1:
            raise ValueError(
                f"{caller} compares one metric, got {sorted(values)}; "
                "give the hypothesis metrics='name' or your own verifier"
            )
        values = next(iter(values.values()))
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        values = list(values)
    return _floats(values, label, caller)


def groups(baseline: Values, treatment: Values, caller: str, minimum: int = 1) -> tuple[list[float], list[float]]:
    """Both groups as lists of floats, each with at least ``minimum`` values."""
    b = _one(baseline, "baseline", caller)
    t = _one(treatment, "treatment", caller)
    if len(b) < minimum or len(t) < minimum:
        raise ValueError(
            f"{caller} needs at least {minimum} value(s) per group, got {len(b)} baseline and {len(t)} treatment values"
        )
    return b, t


def pairs(baseline: Values, treatment: Values, caller: str, minimum: int = 1) -> tuple[list[float], list[float]]:
    """Both groups of a paired test: equally long, position ``i`` of each from the same replicate."""
    b = _one(baseline, "baseline", caller)
    t = _one(treatment, "treatment", caller)
    if len(b) != len(t):
        raise ValueError(
            f"{caller} is paired: baseline and treatment need one value per replicate each, in the same "
            f"order, got {len(b)} and {len(t)} values; drop unpaired replicates first, or use an unpaired test"
        )
    if len(b) < minimum:
        raise ValueError(f"{caller} needs at least {minimum} pair(s), got {len(b)}")
    return b, t
