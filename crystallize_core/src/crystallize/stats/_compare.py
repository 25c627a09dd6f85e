"""One treatment against the baseline: a test, an interval and an effect size in one verdict."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from crystallize.stats._bootstrap import CI_METHODS, bootstrap_ci, bootstrap_distribution
from crystallize.stats._common import Values, check_alternative, groups, pairs
from crystallize.stats._effect import cohens_dz, hedges_g
from crystallize.stats._permutation import permutation_test, sign_flip_test
from crystallize.stats._scipy import mann_whitney_u, paired_t_test, welch_t_test, wilcoxon_signed_rank

__all__ = ["TESTS", "FAMILIES", "TestSpec", "resolve_test", "compare"]


@attrs.frozen
class TestSpec:
    """A test :func:`compare` can run.

    :ivar function: ``function(baseline, treatment, alternative=..., alpha=..., **options)``.
    :ivar paired: whether it compares pairs (one per replicate) or two independent groups.
    :ivar resampling: whether it takes ``n_resamples`` and ``seed``.
    :ivar needs_scipy: computed by SciPy (the ``stats`` extra).
    """

    __test__ = False  # not a pytest test class, despite its name

    name: str
    function: Callable[..., dict[str, Any]]
    paired: bool
    resampling: bool = False
    needs_scipy: bool = False


TESTS: dict[str, TestSpec] = {
    spec.name: spec
    for spec in (
        TestSpec("permutation", permutation_test, paired=False, resampling=True),
        TestSpec("sign_flip", sign_flip_test, paired=True, resampling=True),
        TestSpec("welch", welch_t_test, paired=False, needs_scipy=True),
        TestSpec("paired_t", paired_t_test, paired=True, needs_scipy=True),
        TestSpec("mann_whitney", mann_whitney_u, paired=False, needs_scipy=True),
        TestSpec("wilcoxon", wilcoxon_signed_rank, paired=True, needs_scipy=True),
    )
}
"""Every test by the name verdicts report in ``test``."""

FAMILIES: dict[str, tuple[str, str]] = {
    "permutation": ("permutation", "sign_flip"),
    "t": ("welch", "paired_t"),
    "rank": ("mann_whitney", "wilcoxon"),
}
"""``test=`` names that pick the unpaired or the paired member by the pairing: ``(unpaired, paired)``."""


def check_test(test: str) -> str:
    """``test`` if it names a family or a test, else a ``ValueError`` listing them."""
    if test not in FAMILIES and test not in TESTS:
        raise ValueError(
            f"test must be one of {', '.join(map(repr, FAMILIES))} (the paired or unpaired member is chosen "
            f"from the seeds) or one of {', '.join(repr(t) for t in TESTS if t not in FAMILIES)}, got {test!r}"
        )
    return test


def resolve_test(test: str, paired: bool) -> TestSpec:
    """The test to run for ``test`` (a family or a test name) on paired or unpaired data."""
    check_test(test)
    if test in FAMILIES:
        return TESTS[FAMILIES[test][paired]]
    spec = TESTS[test]
    if spec.paired != paired:
        kind = "paired" if spec.paired else "unpaired"
        raise ValueError(f"test {test!r} is {kind}; it cannot compare {'paired' if paired else 'unpaired'} data")
    return spec


def compare(
    baseline: Values,
    treatment: Values,
    *,
    paired: bool = False,
    test: str = "permutation",
    alternative: str = "two-sided",
    alpha: float = 0.05,
    confidence: float = 0.95,
    ci_method: str = "bca",
    n_resamples: int = 9_999,
    seed: int = 0,
) -> dict[str, Any]:
    """Test a treatment against the baseline and describe the difference.

    :param baseline: one value per replicate (a sequence, or one-metric mapping).
    :param treatment: same, for the treatment.
    :param paired: position ``i`` of both is replicate ``i`` run with the
        same seed; the groups must then be equally long.
    :param test: a family (``"permutation"``, ``"t"``, ``"rank"``: the
        paired or unpaired member is used according to ``paired``) or a test
        name from :data:`TESTS`.
    :param alternative: ``"two-sided"``, ``"greater"`` or ``"less"``
        (treatment compared with baseline).
    :param alpha: significance level.
    :param confidence: coverage of the bootstrap interval ``ci``.
    :param ci_method: ``"bca"`` or ``"percentile"``.
    :param n_resamples: draws of the bootstrap and of Monte Carlo permutation tests.
    :param seed: seed of those draws.
    :returns: the verdict: ``test``, ``paired``, ``alternative``, ``n``
        (pairs when paired, else both groups' values), ``n_baseline``,
        ``n_treatment``, ``baseline_mean``, ``treatment_mean``,
        ``mean_difference``, ``statistic`` (the test's own), ``p_value``,
        ``adjusted_p_value`` (equal to ``p_value`` until a correction
        applies), ``correction``, ``alpha``, ``significant``, ``ci`` (for the
        mean difference, one-sided like the test), ``ci_level``,
        ``ci_method``, ``effect_size`` (Hedges' g unpaired, d_z paired),
        ``effect_size_name``, and what the test adds (``exact``, ``df``).
    """
    check_alternative(alternative)
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha!r}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {', '.join(map(repr, CI_METHODS))}, got {ci_method!r}")
    spec = resolve_test(test, paired)
    b, t = (pairs if paired else groups)(baseline, treatment, f"test {spec.name!r}")
    options: dict[str, Any] = {"n_resamples": n_resamples, "seed": seed} if spec.resampling else {}
    outcome = spec.function(b, t, alternative=alternative, alpha=alpha, **options)

    distribution = bootstrap_distribution(b, t, paired=paired, n_resamples=n_resamples, seed=seed)
    ci_options = {"paired": paired, "confidence": confidence, "alternative": alternative, "distribution": distribution}
    method = ci_method
    ci = bootstrap_ci(b, t, method=method, **ci_options)
    if method == "bca" and any(math.isnan(end) for end in ci):
        method = "percentile"  # BCa is undefined here (a group below two values, or a degenerate bootstrap)
        ci = bootstrap_ci(b, t, method=method, **ci_options)
    if paired:
        effect, effect_name = cohens_dz(b, t), "d_z"
    else:
        effect, effect_name = (hedges_g(b, t), "hedges_g")
    p_value = outcome["p_value"]
    verdict = {
        "test": spec.name,
        "paired": paired,
        "alternative": alternative,
        "n": len(b) if paired else len(b) + len(t),
        "n_baseline": len(b),
        "n_treatment": len(t),
        "baseline_mean": outcome["baseline_mean"],
        "treatment_mean": outcome["treatment_mean"],
        "mean_difference": outcome["treatment_mean"] - outcome["baseline_mean"],
        "statistic": outcome["statistic"],
        "p_value": p_value,
        "adjusted_p_value": p_value,
        "correction": None,
        "alpha": alpha,
        "significant": outcome["significant"],
        "ci": ci,
        "ci_level": confidence,
        "ci_method": method,
        "effect_size": effect,
        "effect_size_name": effect_name,
    }
    for extra in ("exact", "df"):
        if extra in outcome:
            verdict[extra] = outcome[extra]
    return verdict
