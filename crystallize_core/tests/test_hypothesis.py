import itertools
import math
import statistics

import pytest
from core_helpers import numbers, total

from crystallize import Experiment, Hypothesis, Pipeline, SeedPlugin, Treatment, hypothesis
from crystallize.errors import MissingMetricError
from crystallize.stats import permutation_test


def brute_force_p(b, t):
    pooled = b + t
    observed = abs(statistics.fmean(t) - statistics.fmean(b))
    hits = total_count = 0
    for idx in itertools.combinations(range(len(pooled)), len(t)):
        chosen = [pooled[i] for i in idx]
        rest = [pooled[i] for i in range(len(pooled)) if i not in idx]
        total_count += 1
        hits += abs(statistics.fmean(chosen) - statistics.fmean(rest)) >= observed - 1e-12
    return hits / total_count


def test_exact_permutation_p_value_matches_brute_force():
    b, t = [1.0, 2.0, 3.0, 4.0], [3.5, 5.0, 6.0, 7.5, 8.0]
    result = permutation_test({"m": b}, {"m": t})
    assert result["exact"] is True
    assert result["p_value"] == pytest.approx(brute_force_p(b, t))
    assert result["statistic"] == pytest.approx(statistics.fmean(t) - statistics.fmean(b))


def test_identical_groups_are_not_significant_and_separated_groups_are():
    same = permutation_test([1, 2, 3], [1, 2, 3])
    assert same["p_value"] == 1.0 and not same["significant"]
    apart = permutation_test(list(range(8)), list(range(100, 108)))
    assert apart["p_value"] == pytest.approx(2 / math.comb(16, 8))
    assert apart["significant"]


def test_large_samples_use_a_deterministic_monte_carlo_estimate():
    b = [i * 0.1 for i in range(40)]
    t = [i * 0.1 + 0.5 for i in range(40)]
    first = permutation_test(b, t, n_resamples=2000)
    assert first["exact"] is False
    assert first == permutation_test(b, t, n_resamples=2000)
    assert 0 < first["p_value"] < 1


def test_default_verifier_needs_one_metric_and_numbers():
    with pytest.raises(ValueError, match="compares one metric"):
        permutation_test({"a": [1], "b": [2]}, {"a": [1], "b": [2]})
    with pytest.raises(TypeError, match="must be numbers"):
        permutation_test(["x"], [1.0])
    with pytest.raises(ValueError, match="at least one value per group"):
        permutation_test([], [1.0])


def test_hypothesis_ranks_treatments_by_the_ranker():
    @hypothesis(metrics="total")
    def by_p_value(result):
        return result["p_value"]

    @hypothesis(verifier=lambda b, t: {"gain": statistics.fmean(t["total"]) - statistics.fmean(b["total"])})
    def biggest_gain(result):
        return -result["gain"]

    exp = Experiment(
        numbers(),
        Pipeline([total()]),
        plugins=[SeedPlugin(seed=5)],
        treatments=[Treatment("x3", {"scale": 3.0}), Treatment("x10", {"scale": 10.0})],
        hypotheses=[by_p_value, biggest_gain],
        replicates=5,
    )
    result = exp.run()
    gain = result.get_hypothesis("biggest_gain")
    assert gain.ranking["best"] == "x10"
    assert [name for name, _ in gain.ranking["ranked"]] == ["x10", "x3"]
    assert set(result.get_hypothesis("by_p_value").results) == {"x3", "x10"}
    assert result.get_hypothesis("by_p_value").get_for_treatment("x3")["significant"] is True
    assert result.get_hypothesis("nope") is None


def test_missing_metric_error_names_the_metric_and_what_was_recorded():
    exp = Experiment(
        numbers(),
        Pipeline([total()]),
        treatments=[Treatment("t", {"scale": 2.0})],
        hypotheses=[Hypothesis(metrics="accuracy")],
        replicates=2,
    )
    with pytest.raises(MissingMetricError, match=r"needs metric 'accuracy'.*recorded: \['total'\]"):
        exp.run()


def test_hypothesis_names_default_from_ranker_or_metrics():
    assert Hypothesis(metrics="loss").name == "loss"
    assert Hypothesis(ranker=lambda r: 0).name == "hypothesis"
    with pytest.raises(ValueError, match="invalid hypothesis name"):
        Hypothesis(metrics="a", name="../x")
