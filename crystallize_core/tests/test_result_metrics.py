"""Result metrics keep their replicate: flattened as in crystallize-ml, and one entry per replicate."""

import pytest
from core_helpers import FailOn, numbers

from crystallize import Experiment, Hypothesis, Pipeline, SeedPlugin, Treatment, hookimpl, pipeline_step
from crystallize._result import ConditionMetrics, Series
from crystallize.errors import PseudoReplicationError


class SeedFromReplicate(SeedPlugin):
    @hookimpl
    def before_replicate(self, ctx):
        ctx["seed_used"] = 100 + ctx["replicate"]


@pipeline_step()
def record(data, ctx):
    r = ctx["replicate"]
    ctx.metrics.add("once", r)
    for i in range(r % 3):  # replicate 0 records "losses" 0 times, 1 once, 2 twice, ...
        ctx.metrics.add("losses", r * 10 + i)
    return data


def run(*steps, replicates=5):
    exp = Experiment(
        numbers(),
        Pipeline([*steps, record()]),
        plugins=[SeedFromReplicate()],
        treatments=[Treatment("t", {})],
        replicates=replicates,
    )
    return exp.run()


def test_each_replicate_has_an_entry_a_value_a_series_or_a_gap():
    baseline = run().metrics.baseline
    assert baseline.replicates == 5
    assert baseline.by_replicate["once"] == [0, 1, 2, 3, 4]
    assert baseline.by_replicate["losses"] == [None, 10, Series([20, 21]), None, 40]
    assert type(baseline.by_replicate["losses"][2]) is Series
    assert baseline.seeds == [100, 101, 102, 103, 104]
    assert baseline.missing == ()


def test_the_flat_list_is_every_value_in_replicate_order_as_in_crystallize_ml():
    baseline = run().metrics.baseline
    assert baseline.metrics == {"once": [0, 1, 2, 3, 4], "losses": [10, 20, 21, 40]}


def test_a_failed_replicate_is_an_explicit_gap_and_keeps_its_seed():
    result = run(FailOn("t", 1))
    treatment = result.metrics.treatments["t"]
    assert treatment.by_replicate["once"] == [0, None, 2, 3, 4]
    assert treatment.missing == (1,)
    assert treatment.seeds[1] == 101  # the seed it failed with
    assert treatment.metrics["once"] == [0, 2, 3, 4]  # the flat list only holds what was recorded
    assert result.errors["t"][1].replicate == 1


def test_a_series_repr_says_what_it_is_and_compares_as_a_list():
    series = Series([1, 2])
    assert repr(series) == "Series([1, 2])" and series == [1, 2]


def test_flat_results_without_a_split_are_split_when_the_counts_allow_it():
    legacy = ConditionMetrics.from_flat(3, {"acc": [0.1, 0.2, 0.3], "loss": [1, 2, 3, 4, 5, 6], "odd": [1, 2]})
    assert legacy.by_replicate == {"acc": [0.1, 0.2, 0.3], "loss": [Series([1, 2]), Series([3, 4]), Series([5, 6])]}
    assert legacy.metrics == {"acc": [0.1, 0.2, 0.3], "loss": [1, 2, 3, 4, 5, 6], "odd": [1, 2]}
    other = ConditionMetrics.from_flat(3, {"odd": [3, 4]})
    with pytest.raises(PseudoReplicationError, match="which replicate recorded each value of metric 'odd'"):
        Hypothesis(metrics="odd").verify(legacy, other)


def test_conditions_compare_equal_only_when_their_replicates_agree():
    a = ConditionMetrics.from_replicates(2, {0: {"m": [1]}, 1: {"m": [2]}}, {0: 5, 1: 6})
    same = ConditionMetrics.from_replicates(2, {1: {"m": [2]}, 0: {"m": [1]}}, {1: 6, 0: 5})
    gap = ConditionMetrics.from_replicates(2, {0: {"m": [1]}}, {0: 5, 1: 6}, missing=[1])
    assert a == same
    assert gap != a and gap.by_replicate == {"m": [1, None]}


def test_two_unseeded_runs_with_the_same_metrics_compare_equal_whatever_their_seeds():
    def exp():  # each gets a default SeedPlugin, which draws a random base
        return Experiment(numbers(), Pipeline([record()]), treatments=[Treatment("t", {})], replicates=3)

    first, second = exp().run(), exp().run()
    assert first.metrics.baseline.seeds != second.metrics.baseline.seeds
    assert first.metrics == second.metrics


def test_conditions_with_different_replicate_counts_or_metrics_differ():
    two = ConditionMetrics.from_replicates(2, {0: {"m": [1]}, 1: {"m": [2]}}, {0: 5, 1: 6})
    assert two == ConditionMetrics.from_replicates(2, {0: {"m": [1]}, 1: {"m": [2]}}, {0: 7, 1: 8})
    assert two != ConditionMetrics.from_replicates(3, {0: {"m": [1]}, 1: {"m": [2]}}, {0: 5, 1: 6}, missing=[2])
    assert two != ConditionMetrics.from_replicates(2, {0: {"m": [1]}, 1: {"m": [3]}}, {0: 5, 1: 6})


# -- ReplicateColumns: a condition's split when each replicate recorded each metric once -----------------


def test_replicate_columns_read_as_the_per_replicate_dicts_they_stand_for():
    import pickle

    from crystallize.plugin import ReplicateColumns

    columns = ReplicateColumns({"acc": [0.5, 0.7, 0.9], "loss": [[1, 2], None, 3]}, 3)
    as_dicts = {0: {"acc": [0.5], "loss": [[1, 2]]}, 1: {"acc": [0.7], "loss": [None]}, 2: {"acc": [0.9], "loss": [3]}}
    assert dict(columns) == as_dicts and columns == as_dicts
    assert list(columns) == [0, 1, 2] and len(columns) == 3
    assert 2 in columns and 3 not in columns and "1" not in columns
    for missing in (3, -1, "0", 1.0):
        with pytest.raises(KeyError):
            columns[missing]
    assert pickle.loads(pickle.dumps(columns)) == as_dicts
    assert dict(ReplicateColumns({}, 2)) == {0: {}, 1: {}}


def test_replicate_columns_refuse_a_column_that_is_not_one_value_per_replicate():
    from crystallize.plugin import ReplicateColumns

    with pytest.raises(ValueError, match="metric 'acc' holds 2 value"):
        ReplicateColumns({"acc": [1, 2]}, 3)


@pytest.mark.parametrize("missing", [(), (1,)])
def test_metrics_built_from_columns_equal_those_built_from_per_replicate_dicts(missing):
    from crystallize.plugin import ReplicateColumns

    columns = {"acc": [0.5, float("nan"), 0.9], "tag": ["a", "b", "c"]}
    seeds = {0: 10, 2: 12}
    fast = ConditionMetrics.from_replicates(3, ReplicateColumns(columns, 3), seeds, missing)
    slow = ConditionMetrics.from_replicates(3, dict(ReplicateColumns(columns, 3)), seeds, missing)
    assert type(fast.metrics["acc"]) is list and fast.metrics["acc"] is not columns["acc"]  # copied
    assert fast.metrics == slow.metrics or str(fast.metrics) == str(slow.metrics)  # NaN != NaN
    assert str(fast.by_replicate) == str(slow.by_replicate) and list(fast.by_replicate) == ["acc", "tag"]
    assert fast.seeds == slow.seeds == [10, None, 12]
    assert fast.missing == slow.missing == missing
    # Columns for fewer replicates than the condition has take the general path, with gaps.
    short = ConditionMetrics.from_replicates(4, ReplicateColumns(columns, 3), seeds)
    assert short.by_replicate["tag"] == ["a", "b", "c", None]
