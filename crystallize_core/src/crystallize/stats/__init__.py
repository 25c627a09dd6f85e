"""Statistics for comparing a treatment with the baseline, one value per replicate.

Dependency-free (pure Python, deterministic):

- :func:`permutation_test` — unpaired, on the mean difference;
- :func:`sign_flip_test` — paired (replicates that share a seed), on the
  mean of the differences;
- :func:`bootstrap_ci` — percentile or BCa interval for the mean
  difference, paired or unpaired (:func:`bootstrap_distribution` gives the draws);
- :func:`cohens_d`, :func:`hedges_g` (unpaired) and :func:`cohens_dz` (paired) effect sizes;
- :func:`holm` and :func:`benjamini_hochberg` corrections across treatments;
- :func:`t_quantile` and :func:`mean_interval` — Student's t quantiles and the t interval of
  one condition's mean (what summary tables show);
- :func:`compare` — one of the tests, the interval and the effect size in a
  single verdict (what a :class:`~crystallize.Hypothesis` reports).

Computed by SciPy, imported only when called (``pip install "crystallize-core[stats]"``):
:func:`welch_t_test`, :func:`mann_whitney_u`, :func:`wilcoxon_signed_rank`, :func:`paired_t_test`.

Every test takes ``baseline`` and ``treatment`` as sequences (or as the
one-metric ``{metric: values}`` mappings a hypothesis hands its verifier,
so each also works as ``verifier=``) and ``alternative="two-sided" |
"greater" | "less"``, where ``"greater"`` means the treatment's values are
larger. See ``docs/statistics.md`` for which to use when.
"""

from __future__ import annotations

from crystallize.stats._bootstrap import CI_METHODS, bootstrap_ci, bootstrap_distribution
from crystallize.stats._common import ALTERNATIVES, mean, variance
from crystallize.stats._compare import FAMILIES, TESTS, TestSpec, compare, resolve_test
from crystallize.stats._correction import CORRECTIONS, adjust_p_values, benjamini_hochberg, holm
from crystallize.stats._effect import cohens_d, cohens_dz, hedges_g
from crystallize.stats._permutation import EXACT_LIMIT, permutation_test, sign_flip_test
from crystallize.stats._scipy import mann_whitney_u, paired_t_test, welch_t_test, wilcoxon_signed_rank
from crystallize.stats._student import mean_interval, t_quantile

__all__ = [
    "permutation_test",
    "sign_flip_test",
    "bootstrap_ci",
    "bootstrap_distribution",
    "cohens_d",
    "hedges_g",
    "cohens_dz",
    "holm",
    "benjamini_hochberg",
    "adjust_p_values",
    "compare",
    "resolve_test",
    "welch_t_test",
    "mann_whitney_u",
    "wilcoxon_signed_rank",
    "paired_t_test",
    "t_quantile",
    "mean_interval",
    "mean",
    "variance",
    "TESTS",
    "FAMILIES",
    "TestSpec",
    "ALTERNATIVES",
    "CORRECTIONS",
    "CI_METHODS",
    "EXACT_LIMIT",
]
