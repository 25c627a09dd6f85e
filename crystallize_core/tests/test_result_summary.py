"""Result as a table and as data: summary(), print(result), to_records(), to_dict(), to_frame()."""

from __future__ import annotations

import json
import math
import statistics
import sys

import pytest

from crystallize import (
    ConditionMetrics,
    Experiment,
    Hypothesis,
    Pipeline,
    SeedPlugin,
    Series,
    Treatment,
    data_source,
    pipeline_step,
)
from crystallize.stats import mean_interval, t_quantile


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 10, 29, 30, 199, 200, 201, 1000, 123456])
def test_t_quantiles_match_scipy_to_nine_digits(df):
    scipy_stats = pytest.importorskip("scipy.stats")
    for p in (0.5005, 0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.025, 0.001):
        expected = scipy_stats.t.ppf(p, df)
        assert t_quantile(p, df) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_t_quantile_refuses_values_outside_its_domain_naming_them():
    with pytest.raises(ValueError, match="p must be strictly between 0 and 1, got 1.0"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="df must be a positive int, got 0"):
        t_quantile(0.9, 0)


def test_mean_interval_is_the_student_t_interval():
    scipy_stats = pytest.importorskip("scipy.stats")
    values = [0.71, 0.74, 0.69, 0.75, 0.72]
    low, high = mean_interval(values, 0.9)
    exp_low, exp_high = scipy_stats.t.interval(0.9, 4, loc=statistics.mean(values), scale=scipy_stats.sem(values))
    assert (low, high) == (pytest.approx(exp_low, rel=1e-12), pytest.approx(exp_high, rel=1e-12))
    assert all(math.isnan(v) for v in mean_interval([1.0]))


@data_source
def level(ctx):
    return ctx["replicate"] / 10


@pipeline_step()
def fit(x, ctx, boost=0.0):
    if ctx["condition"] == "boosted" and ctx["replicate"] == 3:
        raise RuntimeError("diverged at epoch 2")
    for epoch in range(3):
        ctx.metrics.add("loss", 1.0 - x - boost - epoch / 10)
    ctx.metrics.add("score", x + boost)
    ctx.metrics.add("label", f"r{ctx['replicate']}")
    return x


def run_experiment():
    return Experiment(
        level(),
        Pipeline([fit()]),
        plugins=[SeedPlugin(seed=3)],
        treatments=[Treatment("boosted", {"boost": 0.5})],
        hypotheses=[Hypothesis(metrics="score")],
        replicates=5,
    ).run()


def test_the_summary_has_n_mean_sd_and_the_t_interval_of_each_condition_and_metric():
    result = run_experiment()
    summary = result.summary()
    baseline_scores = [r / 10 for r in range(5)]
    row = summary.row("baseline", "score")
    assert (row.n, row.replicates) == (5, 5)
    assert row.mean == pytest.approx(statistics.mean(baseline_scores))
    assert row.sd == pytest.approx(statistics.stdev(baseline_scores))
    assert row.ci == pytest.approx(mean_interval(baseline_scores))
    boosted = summary.row("boosted", "score")
    assert (boosted.n, boosted.replicates) == (4, 5)  # replicate 3 failed: a gap, not a zero
    assert boosted.mean == pytest.approx(statistics.mean([r / 10 + 0.5 for r in (0, 1, 2, 4)]))
    loss = summary.row("baseline", "loss")  # three values per replicate, reduced to their mean first
    assert loss.per_replicate == 3 and loss.n == 5
    assert loss.mean == pytest.approx(statistics.mean([1.0 - r / 10 - 0.1 for r in range(5)]))
    label = summary.row("baseline", "label")
    assert (label.n, label.mean, label.sd, label.ci) == (5, None, None, None)
    with pytest.raises(KeyError, match="no row for condition 'baseline' and metric 'nope'"):
        summary.row("baseline", "nope")


def test_printing_a_result_shows_the_table_the_verdicts_and_the_failures(capsys):
    result = run_experiment()
    text = str(result)
    lines = text.splitlines()
    assert lines[1].split() == ["condition", "metric", "n", "mean", "sd", "95%", "CI"]
    assert any(line.split()[:3] == ["boosted", "score", "4/5"] for line in lines)
    assert any(line.startswith("baseline") and "loss (mean of 3)" in line for line in lines)
    assert "score: boosted vs baseline" in text and "p=" in text
    assert "boosted replicate 3: RuntimeError: diverged at epoch 2 (in fit)" in text
    result.print_table(confidence=0.9, reduce="last")
    printed = capsys.readouterr().out
    assert "90% CI" in printed and "loss (last of 3)" in printed
    last = result.summary(reduce="last").row("baseline", "loss")
    assert last.mean == pytest.approx(statistics.mean([1.0 - r / 10 - 0.2 for r in range(5)]))


def test_summary_options_are_checked():
    result = run_experiment()
    with pytest.raises(ValueError, match="reduce must be one of .* got 'avg'"):
        result.summary(reduce="avg")
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        result.summary(confidence=95)


def test_records_hold_one_row_per_recorded_value_with_its_replicate_and_seed():
    result = run_experiment()
    records = result.to_records()
    losses = [r for r in records if r["condition"] == "baseline" and r["metric"] == "loss" and r["replicate"] == 2]
    assert [(r["index"], r["value"]) for r in losses] == [(i, pytest.approx(0.8 - i / 10)) for i in range(3)]
    assert {r["seed"] for r in losses} == {result.metrics.baseline.seeds[2]}
    boosted = {r["replicate"] for r in records if r["condition"] == "boosted" and r["metric"] == "score"}
    assert boosted == {0, 1, 2, 4}
    assert set(records[0]) == {"experiment", "version", "condition", "replicate", "metric", "index", "value", "seed"}


def test_to_dict_is_json_and_keeps_crystallize_ml_shape_verdicts_and_tracebacks():
    result = run_experiment()
    document = json.loads(json.dumps(result.to_dict()))
    assert document["metrics"]["baseline"]["score"] == result.metrics.baseline.metrics["score"]
    assert (
        document["metrics"]["treatments"]["boosted"]["score"] == result.metrics.treatments["boosted"].metrics["score"]
    )
    assert document["conditions"]["boosted"]["missing"] == [3]
    assert document["conditions"]["baseline"]["by_replicate"]["loss"][0] == pytest.approx([1.0, 0.9, 0.8])
    assert document["hypotheses"][0]["name"] == "score"
    assert (
        document["hypotheses"][0]["results"]["boosted"]["p_value"]
        == result.get_hypothesis("score").verdict("boosted")["p_value"]
    )
    [error] = document["errors"]
    assert (error["condition"], error["replicate"], error["type"]) == ("boosted", 3, "RuntimeError")
    assert "diverged at epoch 2" in error["traceback"]
    assert document["summary"]["metrics"][0]["condition"] == "baseline"


def test_to_frame_is_a_dataframe_of_the_records():
    pd = pytest.importorskip("pandas")
    result = run_experiment()
    frame = result.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [
        "experiment",
        "version",
        "condition",
        "replicate",
        "metric",
        "index",
        "value",
        "seed",
    ]
    assert len(frame) == len(result.to_records())
    means = frame[frame.metric == "score"].groupby("condition")["value"].mean()
    assert means["baseline"] == pytest.approx(0.2)


def test_to_frame_without_pandas_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas, which is not installed: pip install pandas"):
        run_experiment().to_frame()


def test_a_condition_without_a_split_by_replicate_is_summarised_from_its_flat_lists():
    # crystallize-ml 0.27 stored 3 successful replicates of 4 as flat lists: 3 accuracies, 9 losses.
    flat = ConditionMetrics.from_flat(4, {"accuracy": [0.7, 0.8, 0.9], "loss": [3, 2, 1, 6, 5, 4, 9, 8, 7]})
    assert "loss" not in flat.by_replicate
    from crystallize import ExperimentMetrics, Result

    summary = Result(metrics=ExperimentMetrics(baseline=flat, treatments={})).summary()
    assert (summary.row("baseline", "loss").n, summary.row("baseline", "loss").per_replicate) == (3, 3)
    assert summary.row("baseline", "loss").mean == pytest.approx(5.0)
    assert summary.row("baseline", "accuracy").n == 3
    assert isinstance(Series([1, 2]), list)
