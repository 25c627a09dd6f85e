"""crystallize.stats, checked against SciPy on fixed data.

The data are multiples of 0.5 in groups of 4 and 8, so every mean and every
bootstrap mean is exact in floating point: both implementations then see
the same ties, and exact results must agree to the last bit.
"""

import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import scipy
from scipy import stats as sp

from crystallize import Hypothesis
from crystallize import stats as cs

BASELINE = [1.0, 2.5, 0.5, 3.0, 2.0, 1.5, 2.5, 0.5]
TREATMENT4 = [3.0, 4.0, 2.5, 4.5]
TREATMENT8 = [2.5, 4.0, 1.5, 3.5, 2.0, 3.5, 2.5, 1.0]  # paired with BASELINE
ALTERNATIVES = ["two-sided", "greater", "less"]


def mean_difference(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def mean_of_differences(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def test_scipy_is_the_pinned_version():
    assert scipy.__version__ == "1.17.1"


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_exact_permutation_p_values_equal_scipys(alternative):
    ours = cs.permutation_test(BASELINE, TREATMENT4, alternative=alternative)
    theirs = sp.permutation_test(
        (TREATMENT4, BASELINE),
        mean_difference,
        permutation_type="independent",
        alternative=alternative,
        n_resamples=np.inf,
        vectorized=True,
    )
    assert ours["exact"] is True
    assert ours["p_value"] == theirs.pvalue
    assert ours["statistic"] == pytest.approx(theirs.statistic)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_exact_sign_flip_p_values_equal_scipys_paired_permutation_test(alternative):
    ours = cs.sign_flip_test(BASELINE, TREATMENT8, alternative=alternative)
    theirs = sp.permutation_test(
        (TREATMENT8, BASELINE),
        mean_of_differences,
        permutation_type="samples",
        alternative=alternative,
        n_resamples=np.inf,
        vectorized=True,
    )
    assert ours["exact"] is True and ours["paired"] is True
    assert ours["p_value"] == theirs.pvalue


def test_exact_p_values_with_ties_and_unequal_groups_equal_scipys():
    baseline, treatment = [1.0, 1.0, 2.0, 2.0, 3.0], [2.0, 3.0, 3.0, 4.0, 4.0, 4.0, 1.0]
    for alternative in ALTERNATIVES:
        theirs = sp.permutation_test(
            (treatment, baseline), mean_difference, alternative=alternative, n_resamples=np.inf, vectorized=True
        )
        assert cs.permutation_test(baseline, treatment, alternative=alternative)["p_value"] == theirs.pvalue


@pytest.mark.parametrize("test", [cs.permutation_test, cs.sign_flip_test])
def test_monte_carlo_p_values_are_deterministic_and_close_to_the_exact_ones(test):
    exact = test(BASELINE, TREATMENT8)
    estimate = test(BASELINE, TREATMENT8, exact=False, n_resamples=20_000, seed=1)
    assert estimate["exact"] is False
    assert estimate == test(BASELINE, TREATMENT8, exact=False, n_resamples=20_000, seed=1)
    standard_error = math.sqrt(exact["p_value"] * (1 - exact["p_value"]) / 20_000)
    assert abs(estimate["p_value"] - exact["p_value"]) < 4 * standard_error


def test_a_large_unpaired_sample_uses_monte_carlo_with_scipys_convention():
    baseline = [i * 0.25 for i in range(40)]
    treatment = [i * 0.25 + 1.0 for i in range(40)]
    result = cs.permutation_test(baseline, treatment, n_resamples=1999)
    assert result["exact"] is False
    # (hits + 1) / (n_resamples + 1): never zero, a multiple of 1 / 2000 (two-sided: twice a one-sided one)
    assert result["p_value"] > 0 and (result["p_value"] * 2000 / 2) == pytest.approx(round(result["p_value"] * 1000))


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_bootstrap_intervals_equal_scipys_for_the_same_draws(paired, method, alternative):
    treatment = TREATMENT8 if paired else TREATMENT4
    draws = cs.bootstrap_distribution(BASELINE, treatment, paired=paired, n_resamples=4000, seed=7)
    ours = cs.bootstrap_ci(
        BASELINE, treatment, paired=paired, method=method, alternative=alternative, distribution=draws
    )
    theirs = sp.bootstrap(
        (treatment, BASELINE),
        mean_difference,
        paired=paired,
        method=method,
        alternative=alternative,
        confidence_level=0.95,
        n_resamples=0,
        bootstrap_result=SimpleNamespace(bootstrap_distribution=np.asarray(draws)),
        vectorized=True,
    ).confidence_interval
    assert ours == (pytest.approx(theirs.low, rel=1e-12), pytest.approx(theirs.high, rel=1e-12))


@pytest.mark.parametrize("paired", [False, True])
def test_bootstrap_resamples_as_scipy_does_pairs_together_groups_apart(paired):
    ours = cs.bootstrap_ci(BASELINE, TREATMENT8, paired=paired, method="percentile", n_resamples=20_000)
    theirs = sp.bootstrap(
        (TREATMENT8, BASELINE),
        mean_difference,
        paired=paired,
        method="percentile",
        n_resamples=20_000,
        vectorized=True,
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert ours == (pytest.approx(theirs.low, abs=0.04), pytest.approx(theirs.high, abs=0.04))
    other = cs.bootstrap_ci(BASELINE, TREATMENT8, paired=not paired, method="percentile", n_resamples=20_000)
    assert abs(other[0] - theirs.low) > 0.15  # the check above tells the two schemes apart


def test_bootstrap_intervals_are_deterministic_for_a_seed():
    first = cs.bootstrap_ci(BASELINE, TREATMENT4, seed=3)
    assert first == cs.bootstrap_ci(BASELINE, TREATMENT4, seed=3)
    draws = cs.bootstrap_distribution(BASELINE, TREATMENT4, seed=3)
    assert draws == cs.bootstrap_distribution(BASELINE, TREATMENT4, seed=3)
    assert draws != cs.bootstrap_distribution(BASELINE, TREATMENT4, seed=4)
    assert first[0] < cs.mean(TREATMENT4) - cs.mean(BASELINE) < first[1]


def test_bca_is_undefined_below_two_values_and_compare_falls_back_to_percentile():
    assert all(math.isnan(end) for end in cs.bootstrap_ci([1.0], [2.0, 3.0], method="bca"))
    verdict = cs.compare([1.0], [2.0, 3.0])
    assert verdict["ci_method"] == "percentile" and verdict["ci"] == (pytest.approx(1.0), pytest.approx(2.0))


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_scipy_backed_tests_match_scipy_with_the_treatment_first(alternative):
    welch = sp.ttest_ind(TREATMENT4, BASELINE, equal_var=False, alternative=alternative)
    ours = cs.welch_t_test(BASELINE, TREATMENT4, alternative=alternative)
    assert (ours["p_value"], ours["statistic"], ours["df"]) == (welch.pvalue, welch.statistic, welch.df)
    u = sp.mannwhitneyu(TREATMENT4, BASELINE, alternative=alternative)
    assert cs.mann_whitney_u(BASELINE, TREATMENT4, alternative=alternative)["p_value"] == u.pvalue
    w = sp.wilcoxon(TREATMENT8, BASELINE, alternative=alternative)
    assert cs.wilcoxon_signed_rank(BASELINE, TREATMENT8, alternative=alternative)["p_value"] == w.pvalue
    t = sp.ttest_rel(TREATMENT8, BASELINE, alternative=alternative)
    assert cs.paired_t_test(BASELINE, TREATMENT8, alternative=alternative)["p_value"] == t.pvalue


def test_greater_means_the_treatment_is_larger():
    for test in (cs.welch_t_test, cs.mann_whitney_u, cs.permutation_test):
        assert test(BASELINE, TREATMENT4, alternative="greater")["p_value"] < 0.05
        assert test(BASELINE, TREATMENT4, alternative="less")["p_value"] > 0.5
    for test in (cs.paired_t_test, cs.wilcoxon_signed_rank, cs.sign_flip_test):
        assert test(BASELINE, TREATMENT8, alternative="greater")["p_value"] < 0.05


def test_effect_sizes_follow_their_textbook_formulas():
    b, t = np.array(BASELINE), np.array(TREATMENT4)
    pooled = math.sqrt(((len(b) - 1) * b.var(ddof=1) + (len(t) - 1) * t.var(ddof=1)) / (len(b) + len(t) - 2))
    d = (t.mean() - b.mean()) / pooled
    assert cs.cohens_d(BASELINE, TREATMENT4) == pytest.approx(d, rel=1e-12)
    df = len(b) + len(t) - 2
    j = scipy.special.gamma(df / 2) / (math.sqrt(df / 2) * scipy.special.gamma((df - 1) / 2))
    assert cs.hedges_g(BASELINE, TREATMENT4) == pytest.approx(j * d, rel=1e-12)
    assert cs.hedges_g(BASELINE, TREATMENT4) == pytest.approx(d * (1 - 3 / (4 * df - 1)), rel=1e-3)  # Hedges' approx
    diff = np.array(TREATMENT8) - b
    assert cs.cohens_dz(BASELINE, TREATMENT8) == pytest.approx(diff.mean() / diff.std(ddof=1), rel=1e-12)
    assert math.isnan(cs.cohens_dz([1.0], [2.0]))
    assert cs.cohens_dz([1.0, 2.0], [2.0, 3.0]) == math.inf


def test_holm_on_the_textbook_example():
    # Four tests at alpha = 0.05 (Holm 1979; the Holm-Bonferroni example of most textbooks):
    # sorted 0.005, 0.01, 0.03, 0.04 are multiplied by 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04,
    # then made non-decreasing -> 0.02, 0.03, 0.06, 0.06: only the first two are rejected.
    assert cs.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert cs.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert cs.holm([]) == []


def test_benjamini_hochberg_equals_scipys_false_discovery_control():
    rng = np.random.default_rng(3)
    for p in ([0.01, 0.04, 0.03, 0.005], [0.2, 0.2, 0.01, 0.9, 0.04, 0.04], list(rng.uniform(0, 0.2, 30))):
        assert cs.benjamini_hochberg(p) == pytest.approx(list(sp.false_discovery_control(p, method="bh")))


def test_corrections_leave_nan_out_of_the_count():
    assert cs.holm([0.01, math.nan, 0.04]) == [pytest.approx(0.02), pytest.approx(math.nan, nan_ok=True), 0.04]
    with pytest.raises(ValueError, match="p-values must lie in"):
        cs.holm([1.5])
    with pytest.raises(ValueError, match="correction must be 'holm'"):
        cs.adjust_p_values([0.1], "bonferroni")


def test_compare_reports_the_verdict_a_hypothesis_shows():
    verdict = cs.compare(BASELINE, TREATMENT8, paired=True, alternative="greater")
    assert verdict["test"] == "sign_flip" and verdict["paired"] is True and verdict["n"] == 8
    assert verdict["p_value"] == cs.sign_flip_test(BASELINE, TREATMENT8, alternative="greater")["p_value"]
    assert verdict["ci"][1] == math.inf and verdict["ci_level"] == 0.95
    assert verdict["effect_size"] == cs.cohens_dz(BASELINE, TREATMENT8)
    assert verdict["mean_difference"] == pytest.approx(cs.mean(TREATMENT8) - cs.mean(BASELINE))
    assert cs.compare(BASELINE, TREATMENT4, test="t")["test"] == "welch"
    assert cs.compare(BASELINE, TREATMENT8, test="rank", paired=True)["test"] == "wilcoxon"
    with pytest.raises(ValueError, match="test 'wilcoxon' is paired"):
        cs.compare(BASELINE, TREATMENT4, test="wilcoxon")


def test_bad_input_names_the_value_and_the_fix():
    with pytest.raises(ValueError, match="is paired: .* got 8 and 4 values"):
        cs.sign_flip_test(BASELINE, TREATMENT4)
    with pytest.raises(TypeError, match="values must be numbers, got 'x'"):
        cs.permutation_test(["x"], [1.0])
    with pytest.raises(ValueError, match="at least 1 value"):
        cs.permutation_test([], [1.0])
    with pytest.raises(ValueError, match="compares one metric"):
        cs.permutation_test({"a": [1], "b": [2]}, {"a": [1], "b": [2]})
    with pytest.raises(ValueError, match="alternative must be one of"):
        cs.permutation_test([1.0], [2.0], alternative="up")
    with pytest.raises(ValueError, match="every paired difference is zero"):
        cs.wilcoxon_signed_rank([1.0, 2.0], [1.0, 2.0])


def test_the_scipy_tests_say_how_to_install_scipy_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    with pytest.raises(ImportError, match=r'pip install "crystallize-core\[stats\]"'):
        cs.welch_t_test(BASELINE, TREATMENT4)
    with pytest.raises(ImportError, match=r'pip install "crystallize-core\[stats\]"'):
        Hypothesis(metrics="m", test="t").verify({"m": BASELINE}, {"m": TREATMENT4})
    assert cs.permutation_test(BASELINE, TREATMENT4)["p_value"] < 0.05  # the pure-Python tests still work


def test_importing_crystallize_leaves_statistics_fractions_and_decimal_for_first_use():
    script = (
        "import sys\n"
        "import crystallize\n"
        "print(sorted(m for m in ('statistics', 'fractions', 'decimal') if m in sys.modules))\n"
        "import crystallize.stats\n"
        "r = crystallize.stats.compare([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 7.0])\n"  # BCa: normal quantiles
        "print('statistics' in sys.modules, r['ci'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "True (0.0, 4.0)"]


def test_importing_crystallize_and_testing_hypotheses_imports_neither_numpy_nor_scipy():
    script = (
        "import sys\n"
        "import crystallize, crystallize.stats\n"
        "from crystallize import Hypothesis\n"
        "v = Hypothesis(metrics='m').verify({'m': [1.0, 2.0, 3.0]}, {'m': [3.0, 4.0, 5.0]})\n"
        "crystallize.stats.compare([1.0, 2.0], [2.0, 4.0], paired=True)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy', 'pandas'))\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
