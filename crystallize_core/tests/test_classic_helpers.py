"""crystallize-ml's decorators and helpers: treatment, verifier, pipeline, inject_from_ctx,
the datasource registry, standalone_context, quick_experiment, steps without ctx."""

from __future__ import annotations

import pickle
import random

import pytest

from crystallize import (
    Experiment,
    FrozenContext,
    Hypothesis,
    Pipeline,
    Treatment,
    data_source,
    get_datasource,
    hypothesis,
    inject_from_ctx,
    list_datasources,
    pipeline,
    pipeline_step,
    quick_experiment,
    register_datasource,
    resource_factory,
    standalone_context,
    treatment,
    verifier,
)
from crystallize._source_registry import clear_registry


@pytest.fixture(autouse=True)
def empty_registry():
    clear_registry()
    yield
    clear_registry()


@treatment("warm")
def warm(ctx):
    ctx.add("temperature", 0.9)


@verifier
def gain(baseline, treatment, *, threshold=0.0):
    diff = sum(treatment["score"]) / len(treatment["score"]) - sum(baseline["score"]) / len(baseline["score"])
    return {"gain": diff, "accepted": diff > threshold, "p_value": 0.5}


@pipeline_step()
def score(data, ctx):
    ctx.metrics.add("score", data + ctx.get("temperature", 0.0))
    return data


@data_source
def base(ctx):
    return 1.0


def test_treatment_decorator_and_factory_build_treatments():
    assert isinstance(warm(), Treatment) and warm().name == "warm"
    ctx = FrozenContext()
    warm().apply(ctx)
    assert ctx["temperature"] == 0.9
    mapping = treatment("cold", {"temperature": 0.1})
    assert isinstance(mapping, Treatment) and mapping.values == {"temperature": 0.1}
    with pytest.raises(ValueError, match="treatment"):
        treatment("../bad")


def test_verifier_binds_parameters_checks_them_and_pickles():
    strict = gain(threshold=1.0)
    assert strict({"score": [1.0]}, {"score": [1.5]})["accepted"] is False
    assert gain()({"score": [1.0]}, {"score": [1.5]})["accepted"] is True
    with pytest.raises(TypeError, match="unexpected keyword argument 'thresold'"):
        gain(thresold=1)
    assert pickle.loads(pickle.dumps(strict))({"score": [0.0]}, {"score": [2.0]})["gain"] == 2.0


def test_decorated_pieces_run_an_experiment_with_a_hypothesis():
    @hypothesis(verifier=gain(), metrics="score")
    def by_gain(verdict):
        return -verdict["gain"]

    exp = Experiment(datasource=base(), pipeline=pipeline(score()), treatments=[warm()], hypotheses=[by_gain])
    result = exp.run(replicates=2)
    verdict = result.get_hypothesis("by_gain")
    assert verdict.results["warm"]["accepted"] is True and verdict.ranking["best"] == "warm"


def test_inject_from_ctx_fills_missing_parameters_from_the_context():
    @inject_from_ctx
    def step(data, ctx, *, delta=0, scale):
        return (data + delta) * scale

    assert step(1, FrozenContext({"scale": 2})) == 2
    assert step(1, FrozenContext({"scale": 2, "delta": 4})) == 10
    assert step(1, FrozenContext({"scale": 2}), delta=1) == 4
    with pytest.raises(TypeError, match="parameter 'scale' was not passed, is not in the context"):
        step(1, FrozenContext())
    with pytest.raises(TypeError, match="ctx must be a FrozenContext"):
        step(1, {"scale": 2})
    with pytest.raises(TypeError, match="needs a ctx argument"):
        step(1)


def test_inject_from_ctx_builds_resources_from_factories_only():
    @inject_from_ctx
    def use(data, ctx, *, client, transform):
        return transform(client["id"])

    made = resource_factory(lambda ctx: {"id": 7}, key="client-for-test")
    assert use(0, FrozenContext({"client": made, "transform": str})) == "7"


def test_steps_may_leave_out_ctx():
    @pipeline_step()
    def shift(data, *, by=1):
        return data + by

    assert shift()(3, FrozenContext({"by": 4})) == 7
    assert shift(by=2)(3, FrozenContext()) == 5
    exp = Experiment(datasource=base(), pipeline=[shift(), score()], treatments=[Treatment("far", {"by": 10})])
    assert exp.run().metrics.treatments["far"].metrics["score"] == [11.0]


def test_the_registry_holds_sources_and_factories_by_name():
    @data_source("rows", register=True)
    def load(ctx, n=2):
        return list(range(n))

    @data_source(register=True)
    def constant(ctx):
        return "c"

    register_datasource("fixed", load(n=1))
    assert list_datasources() == ["constant", "fixed", "rows"]
    assert get_datasource("rows", n=3).fetch(standalone_context()) == [0, 1, 2]
    assert get_datasource("constant").fetch(standalone_context()) == "c"
    with pytest.raises(KeyError, match="No datasource registered as 'missing'.*'constant', 'fixed', 'rows'"):
        get_datasource("missing")
    with pytest.raises(ValueError, match="already registered as 'rows'"):
        register_datasource("rows", load())
    with pytest.raises(TypeError, match="takes no parameters"):
        get_datasource("fixed", n=2)


def test_standalone_context_runs_steps_by_hand():
    ctx = standalone_context({"temperature": 0.5})
    score()(1.0, ctx)
    ctx.record("loss", 0.1, tags={"split": "train"})
    assert ctx.metrics["score"] == (1.5,) and ctx.metrics.get_tags("loss") == ({"split": "train"},)
    assert Pipeline([score()]).run(2.0, ctx) == 2.0


def test_quick_experiment_collects_outputs_with_paired_seeds():
    def draw(config, ctx):
        return (config["scale"] * random.random(), ctx["replicate"])

    first = quick_experiment(draw, {"a": {"scale": 1}, "b": {"scale": 2}}, replicates=3, seed=42)
    again = quick_experiment(draw, {"a": {"scale": 1}, "b": {"scale": 2}}, replicates=3, seed=42)
    assert first == again
    assert [r for _, r in first["a"]] == [0, 1, 2]
    assert [2 * a for a, _ in first["a"]] == pytest.approx([b for b, _ in first["b"]])  # same draws per replicate
    assert quick_experiment(lambda: 1, replicates=2) == {"baseline": [1, 1]}
    with pytest.raises(ValueError, match="replicates must be a positive int"):
        quick_experiment(lambda: 1, replicates=0)


def test_hypothesis_rank_treatments_and_unscored_verdicts():
    hyp = Hypothesis(verifier=lambda b, t: {"diff": 1}, metrics="score")
    assert hyp.rank_treatments({"a": {"diff": 1}, "b": {"diff": 2}})["best"] is None  # nothing to rank by
    assert hyp.rank_treatments({"a": {"p_value": 0.3}, "b": {"p_value": 0.1}})["best"] == "b"
    assert Hypothesis(verifier=lambda b, t: {}, metrics=" ").name == "hypothesis"  # not a usable name


def test_groups_of_metrics_call_the_verifier_once_per_group():
    def totals(baseline, treatment):
        return {key: sum(treatment[key]) - sum(baseline[key]) for key in baseline}

    hyp = Hypothesis(verifier=totals, metrics=[["x"], ["y", "z"]])
    verdict = hyp.verify({"x": [1], "y": [1], "z": [1]}, {"x": [2], "y": [4], "z": [0]})
    assert verdict == [{"x": 1}, {"y": 3, "z": -1}]
    with pytest.raises(ValueError, match="only your own verifier can compare"):
        Hypothesis(metrics=[["x"], ["y"]])
