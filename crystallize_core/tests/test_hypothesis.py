import statistics

import pytest
from core_helpers import numbers, total

from crystallize import Experiment, Hypothesis, Pipeline, SeedPlugin, Treatment, hypothesis
from crystallize.errors import MissingMetricError


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
