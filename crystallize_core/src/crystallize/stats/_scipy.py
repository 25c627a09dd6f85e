"""Classical tests, computed by SciPy (the ``stats`` extra: ``pip install "crystallize-core[stats]"``).

SciPy is imported when one of these is first called, never with
:mod:`crystallize`. Each accepts the same arguments as the permutation tests
(two sequences, or one-metric ``{metric: values}`` mappings, so each also
works as a hypothesis's ``verifier=``) and returns the same kind of mapping.
Sides follow the treatment: ``alternative="greater"`` means the treatment's
values are larger than the baseline's.
"""

from __future__ import annotations

import math
from typing import Any

from crystallize.stats._common import Values, check_alternative, groups, mean, pairs

__all__ = ["welch_t_test", "mann_whitney_u", "wilcoxon_signed_rank", "paired_t_test", "scipy_stats"]


def scipy_stats() -> Any:
    """``scipy.stats``, or an ``ImportError`` that says how to install it."""
    try:
        from scipy import stats
    except ImportError as exc:
        raise ImportError(
            'this test is computed by SciPy, which is not installed: pip install "crystallize-core[stats]" '
            "(or use the dependency-free permutation tests: test='permutation')"
        ) from exc
    return stats


def _result(
    name: str, paired: bool, alternative: str, b: list[float], t: list[float], outcome: Any, alpha: float
) -> dict[str, Any]:
    p_value = float(outcome.pvalue)
    result = {
        "test": name,
        "paired": paired,
        "alternative": alternative,
        "p_value": p_value,
        "statistic": float(outcome.statistic),
        "baseline_mean": mean(b),
        "treatment_mean": mean(t),
        "n_baseline": len(b),
        "n_treatment": len(t),
        "significant": not math.isnan(p_value) and p_value < alpha,
    }
    df = getattr(outcome, "df", None)
    if df is not None:
        result["df"] = float(df)
    return result


def welch_t_test(
    baseline: Values, treatment: Values, *, alternative: str = "two-sided", alpha: float = 0.05
) -> dict[str, Any]:
    """Welch's t-test (unequal variances) for a difference in means, unpaired.

    Assumes each group's mean is roughly normal (many replicates, or
    near-normal metrics). ``statistic`` is t, ``df`` the Welch-Satterthwaite
    degrees of freedom. SciPy: ``ttest_ind(treatment, baseline, equal_var=False)``.
    """
    check_alternative(alternative)
    b, t = groups(baseline, treatment, "welch_t_test", minimum=2)
    outcome = scipy_stats().ttest_ind(t, b, equal_var=False, alternative=alternative)
    return _result("welch", False, alternative, b, t, outcome, alpha)


def mann_whitney_u(
    baseline: Values, treatment: Values, *, alternative: str = "two-sided", alpha: float = 0.05
) -> dict[str, Any]:
    """Mann-Whitney U test (Wilcoxon rank-sum), unpaired.

    Compares ranks, not means: robust to outliers and skew; it tests whether
    a treatment value tends to exceed a baseline value. ``statistic`` is the
    treatment's U. SciPy: ``mannwhitneyu(treatment, baseline)``.
    """
    check_alternative(alternative)
    b, t = groups(baseline, treatment, "mann_whitney_u")
    outcome = scipy_stats().mannwhitneyu(t, b, alternative=alternative)
    return _result("mann_whitney", False, alternative, b, t, outcome, alpha)


def wilcoxon_signed_rank(
    baseline: Values, treatment: Values, *, alternative: str = "two-sided", alpha: float = 0.05
) -> dict[str, Any]:
    """Wilcoxon signed-rank test on the paired differences ``treatment[i] - baseline[i]``.

    The rank-based counterpart of the paired t-test: robust to outliers;
    zero differences are dropped (SciPy's ``zero_method="wilcox"``). SciPy:
    ``wilcoxon(treatment, baseline)``.
    """
    check_alternative(alternative)
    b, t = pairs(baseline, treatment, "wilcoxon_signed_rank")
    if all(x == y for x, y in zip(b, t)):
        raise ValueError("wilcoxon_signed_rank: every paired difference is zero, there is nothing to rank")
    outcome = scipy_stats().wilcoxon(t, b, alternative=alternative)
    return _result("wilcoxon", True, alternative, b, t, outcome, alpha)


def paired_t_test(
    baseline: Values, treatment: Values, *, alternative: str = "two-sided", alpha: float = 0.05
) -> dict[str, Any]:
    """Paired t-test on the differences ``treatment[i] - baseline[i]``.

    Assumes the mean difference is roughly normal. SciPy: ``ttest_rel(treatment, baseline)``.
    """
    check_alternative(alternative)
    b, t = pairs(baseline, treatment, "paired_t_test", minimum=2)
    outcome = scipy_stats().ttest_rel(t, b, alternative=alternative)
    return _result("paired_t", True, alternative, b, t, outcome, alpha)
