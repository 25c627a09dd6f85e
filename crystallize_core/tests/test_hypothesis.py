import math
import statistics

import pytest
from core_helpers import FailOn, numbers, total

from crystallize import Experiment, Hypothesis, Pipeline, SeedPlugin, Treatment, hookimpl, hypothesis, pipeline_step
from crystallize._result import ConditionMetrics, Series
from crystallize.errors import MissingMetricError, PseudoReplicationError
from crystallize.stats import permutation_test, sign_flip_test


class SharedSeeds(SeedPlugin):
    """Seeds each replicate the same in every condition (common random numbers)."""

    @hookimpl
    def before_replicate(self, ctx):
        ctx["seed_used"] = 1000 + ctx["replicate"]


class SeedPerCondition(SeedPlugin):
    """Seeds each (condition, replicate) differently: independent streams."""

    @hookimpl
    def before_replicate(self, ctx):
        ctx["seed_used"] = 1000 + ctx["replicate"] + (0 if ctx["condition"] == "baseline" else 500)


@pipeline_step()
def measure(data, ctx, shift=0.0, times=1):
    # the value depends on the replicate (shared by both conditions) plus the treatment's shift
    for i in range(times):
        ctx.metrics.add("score", ctx["replicate"] * 10.0 + shift + i)
    return data


def experiment(*treatments, hypotheses=(), plugins=(), steps=None, replicates=6):
    return Experiment(
        numbers(),
        Pipeline(steps or [measure()]),
        plugins=list(plugins),
        treatments=list(treatments),
        hypotheses=list(hypotheses),
        replicates=replicates,
    )


def test_shared_seeds_make_the_test_paired_and_the_verdict_says_so():
    result = experiment(
        Treatment("up", {"shift": 1.0}), hypotheses=[Hypothesis(metrics="score")], plugins=[SharedSeeds()]
    ).run()
    verdict = result.get_hypothesis("score").verdict("up")
    assert verdict["paired"] is True and verdict["test"] == "sign_flip"
    assert verdict["pairing"] == "every compared replicate ran with the same seed in both conditions"
    assert verdict["n"] == 6 and verdict["n_baseline"] == verdict["n_treatment"] == 6
    # every pair differs by exactly +1: the exact sign-flip p-value is 2 / 2**6
    assert verdict["p_value"] == pytest.approx(2 / 64)
    assert verdict["mean_difference"] == pytest.approx(1.0)
    assert verdict["ci"] == pytest.approx((1.0, 1.0))
    assert verdict["effect_size_name"] == "d_z" and verdict["effect_size"] == math.inf


def test_different_or_unknown_seeds_make_the_test_unpaired():
    seeded = experiment(
        Treatment("up", {"shift": 1.0}), hypotheses=[Hypothesis(metrics="score")], plugins=[SeedPerCondition()]
    ).run()
    verdict = seeded.get_hypothesis("score").verdict("up")
    assert verdict["paired"] is False and verdict["test"] == "permutation"
    assert verdict["pairing"] == "replicate 0 ran with different seeds (1000 and 1500)"
    assert verdict["n"] == 12 and verdict["effect_size_name"] == "hedges_g"
    # unpaired, a shift of 1 is lost in the replicate-to-replicate spread of 10
    assert verdict["p_value"] > 0.5

    unknown = ConditionMetrics.from_replicates(3, {r: {"score": [float(r)]} for r in range(3)}, {0: 7, 1: None, 2: 9})
    known = ConditionMetrics.from_replicates(3, {r: {"score": [r + 1.0]} for r in range(3)}, {0: 7, 1: 8, 2: 9})
    verdict = Hypothesis(metrics="score").verify(unknown, known)
    assert verdict["paired"] is False and verdict["pairing"] == "seed of replicate 1 unknown"


def test_paired_can_be_forced_either_way_and_a_fixed_test_fixes_it():
    forced = Hypothesis(metrics="score", paired=False, name="forced")
    forced_paired = Hypothesis(metrics="score", test="permutation", paired=True, name="paired")
    result = experiment(
        Treatment("up", {"shift": 1.0}), hypotheses=[forced, forced_paired], plugins=[SharedSeeds()]
    ).run()
    assert result.get_hypothesis("forced").verdict("up")["paired"] is False
    assert result.get_hypothesis("forced").verdict("up")["pairing"] == "paired=False given"
    assert result.get_hypothesis("paired").verdict("up")["test"] == "sign_flip"

    baseline, up = result.metrics.baseline, result.metrics.treatments["up"]
    fixed = Hypothesis(metrics="score", test="mann_whitney").verify(baseline, up)
    assert fixed["test"] == "mann_whitney" and fixed["pairing"] == "test 'mann_whitney' is unpaired"
    assert Hypothesis(metrics="score", verifier=sign_flip_test).test == "sign_flip"
    # permutation_test, the former default verifier, stands for the family: it pairs by the seeds
    assert Hypothesis(metrics="score", verifier=permutation_test).verify(baseline, up)["test"] == "sign_flip"


def test_a_metric_recorded_several_times_per_replicate_is_refused_naming_the_metric_and_the_fix():
    exp = experiment(
        Treatment("up", {"shift": 1.0}),
        steps=[measure(times=3)],
        hypotheses=[Hypothesis(metrics="score")],
        replicates=4,
    )
    with pytest.raises(PseudoReplicationError) as caught:
        exp.run()
    message = str(caught.value)
    assert "metric 'score' was recorded 3 times in baseline replicate 0" in message
    assert "pseudo-replication" in message and "reduce='mean'" in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("reduce", "expected"),
    [
        ("mean", [1.0, 11.0, 21.0, 31.0]),
        ("last", [2.0, 12.0, 22.0, 32.0]),
        ("sum", [3.0, 33.0, 63.0, 93.0]),
        ("first", [0.0, 10.0, 20.0, 30.0]),
        (lambda values: max(values) - min(values), [2.0, 2.0, 2.0, 2.0]),
    ],
)
def test_reduce_turns_each_replicates_series_into_one_value(reduce, expected):
    seen = {}

    def verifier(baseline, treatment):
        seen["baseline"], seen["treatment"] = baseline["score"], treatment["score"]
        return {"p_value": 0.5}

    exp = experiment(
        Treatment("up", {"shift": 1.0}),
        steps=[measure(times=3)],
        hypotheses=[Hypothesis(verifier=verifier, metrics="score", reduce=reduce)],
        replicates=4,
    )
    result = exp.run()
    assert seen["baseline"] == pytest.approx(expected)
    assert result.metrics.baseline.by_replicate["score"][1] == Series([10.0, 11.0, 12.0])
    assert len(result.metrics.baseline.metrics["score"]) == 12  # the flat list keeps every value


def test_four_replicates_are_tested_as_four_not_twelve():
    exp = experiment(
        Treatment("up", {"shift": 1.0}),
        steps=[measure(times=3)],
        hypotheses=[Hypothesis(metrics="score", reduce="mean", paired=False)],
        replicates=4,
    )
    verdict = exp.run().get_hypothesis("score").verdict("up")
    assert verdict["n_baseline"] == verdict["n_treatment"] == 4


def test_gaps_are_dropped_pairwise_and_reported():
    exp = experiment(
        Treatment("up", {"shift": 1.0}),
        steps=[FailOn("up", 2), FailOn("baseline", 4), measure()],
        hypotheses=[Hypothesis(metrics="score")],
        plugins=[SharedSeeds()],
    )
    result = exp.run()
    assert set(result.errors) == {"up", "baseline"}
    assert result.metrics.treatments["up"].by_replicate["score"] == [1.0, 11.0, None, 31.0, 41.0, 51.0]
    assert result.metrics.treatments["up"].missing == (2,)
    verdict = result.get_hypothesis("score").verdict("up")
    assert verdict["paired"] is True
    assert verdict["n"] == 4  # replicates 2 and 4 lack a value in one condition
    assert verdict["gaps"] == {"baseline": [4], "treatment": [2]}
    assert verdict["p_value"] == pytest.approx(2 / 2**4)


def test_gaps_are_dropped_per_group_when_unpaired():
    exp = experiment(
        Treatment("up", {"shift": 1.0}),
        steps=[FailOn("up", 2), measure()],
        hypotheses=[Hypothesis(metrics="score", paired=False)],
    )
    verdict = exp.run().get_hypothesis("score").verdict("up")
    assert (verdict["n_baseline"], verdict["n_treatment"], verdict["n"]) == (6, 5, 11)


def test_correction_applies_across_the_treatments_of_one_hypothesis():
    treatments = [Treatment("a", {"shift": 1.0}), Treatment("b", {"shift": 1.0}), Treatment("c", {"shift": -1.0})]
    holm = Hypothesis(metrics="score", name="holm")
    bh = Hypothesis(metrics="score", correction="bh", name="bh")
    none = Hypothesis(metrics="score", correction=None, name="none")
    result = experiment(*treatments, hypotheses=[holm, bh, none], plugins=[SharedSeeds()]).run()
    raw = 2 / 64
    for name in "abc":
        assert result.get_hypothesis("none").verdict(name)["adjusted_p_value"] == pytest.approx(raw)
        assert result.get_hypothesis("holm").verdict(name)["adjusted_p_value"] == pytest.approx(3 * raw)
        assert result.get_hypothesis("bh").verdict(name)["adjusted_p_value"] == pytest.approx(raw)
        assert result.get_hypothesis("holm").verdict(name)["p_value"] == pytest.approx(raw)
    assert result.get_hypothesis("none").significant == ["a", "b", "c"]
    assert result.get_hypothesis("bh").significant == ["a", "b", "c"]
    assert result.get_hypothesis("holm").significant == []  # 3 * 0.03125 > 0.05
    assert result.get_hypothesis("holm").correction == "holm"
    assert result.get_hypothesis("holm").verdict("a")["correction"] == "holm"


def test_one_sided_alternatives_follow_the_treatment():
    up = Treatment("up", {"shift": 1.0})
    greater = Hypothesis(metrics="score", alternative="greater", correction=None, name="greater")
    less = Hypothesis(metrics="score", alternative="less", correction=None, name="less")
    result = experiment(up, hypotheses=[greater, less], plugins=[SharedSeeds()]).run()
    assert result.get_hypothesis("greater").verdict("up")["p_value"] == pytest.approx(1 / 64)
    assert result.get_hypothesis("greater").verdict("up")["ci"] == (pytest.approx(1.0), math.inf)
    assert result.get_hypothesis("less").verdict("up")["p_value"] == pytest.approx(1.0)
    assert result.get_hypothesis("less").verdict("up")["alternative"] == "less"


def test_a_custom_verifier_gets_one_value_per_replicate_and_an_adjusted_p_value():
    calls = []

    def verifier(baseline, treatment):
        calls.append((baseline, treatment))
        return {"p_value": 0.02, "significant": True}

    @hypothesis(verifier=verifier, metrics="score")
    def mine(result):
        return result["p_value"]

    result = experiment(
        Treatment("a", {"shift": 1.0}), Treatment("b", {"shift": 2.0}), hypotheses=[mine], replicates=3
    ).run()
    assert calls[0][0] == {"score": [0.0, 10.0, 20.0]} and calls[0][1] == {"score": [1.0, 11.0, 21.0]}
    verdict = result.get_hypothesis("mine").verdict("a")
    assert verdict["adjusted_p_value"] == pytest.approx(0.04) and verdict["significant"] is True


def test_the_decorator_takes_the_new_options():
    @hypothesis(metrics="score", alternative="greater", test="permutation", correction="bh", alpha=0.1)
    def by_effect(verdict):
        return -verdict["effect_size"]

    assert (by_effect.name, by_effect.alternative, by_effect.correction, by_effect.alpha) == (
        "by_effect",
        "greater",
        "bh",
        0.1,
    )
    result = experiment(
        Treatment("small", {"shift": 1.0}),
        Treatment("big", {"shift": 30.0}),
        hypotheses=[by_effect],
        plugins=[SeedPlugin(per_condition=True)],  # unpaired: Cohen's d is finite and ranks them
    ).run()
    assert result.get_hypothesis("by_effect").ranking["best"] == "big"


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
        plugins=[SeedPlugin(seed=5, per_condition=True)],  # unpaired: 5 replicates can reach p < 0.05
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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alternative": "bigger"}, "alternative must be one of 'two-sided', 'greater', 'less', got 'bigger'"),
        ({"test": "anova"}, "test must be one of 'permutation', 't', 'rank'"),
        ({"test": "welch", "paired": True}, "test 'welch' is unpaired, which contradicts paired=True"),
        ({"correction": "bonferroni"}, "correction must be 'holm'"),
        ({"reduce": "average"}, "reduce must be one of 'mean'"),
        ({"alpha": 5}, "alpha must be between 0 and 1"),
        ({"verifier": permutation_test, "test": "welch"}, "disagree"),
        ({"verifier": lambda b, t: {}, "test": "t"}, "give either verifier="),
        ({"paired": "yes"}, "paired must be None"),
    ],
)
def test_bad_hypothesis_options_are_refused_naming_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Hypothesis(metrics="score", **kwargs)


def test_verify_accepts_plain_lists_as_one_value_per_replicate():
    verdict = Hypothesis(metrics="m").verify({"m": [1.0, 2.0, 3.0]}, {"m": [4.0, 5.0, 6.0]})
    assert verdict["paired"] is False and verdict["pairing"] == "seeds unknown"
    assert verdict["p_value"] == pytest.approx(2 / 20)
    hand_built = ConditionMetrics({"m": [1.0, 2.0, 3.0]})
    assert Hypothesis(metrics="m").verify(hand_built, {"m": [4.0, 5.0, 6.0]})["p_value"] == verdict["p_value"]


def test_the_built_in_tests_compare_one_metric():
    with pytest.raises(ValueError, match="compare one metric"):
        Hypothesis(metrics=["a", "b"]).verify({"a": [1], "b": [2]}, {"a": [1], "b": [2]})
