import logging

import pytest
from core_helpers import FailOn, numbers, total

from crystallize import (
    Artifact,
    ConfigurationError,
    Experiment,
    Hypothesis,
    Pipeline,
    PipelineStep,
    SeedPlugin,
    Treatment,
    data_source,
    pipeline_step,
)


def make(**kwargs):
    defaults = dict(datasource=numbers(), pipeline=Pipeline([total()]), plugins=[SeedPlugin(seed=1)], replicates=3)
    defaults.update(kwargs)
    return Experiment(**defaults)


def test_baseline_and_treatments_over_replicates():
    exp = make(treatments=[Treatment("double", {"scale": 2.0})], replicates=4)
    result = exp.run()
    base = result.metrics.baseline.metrics["total"]
    doubled = result.metrics.treatments["double"].metrics["total"]
    assert len(base) == len(doubled) == 4
    assert result.ok and result.errors == {}
    assert result.run.status == "completed" and result.run.conditions == ("baseline", "double")
    assert result.metrics.condition("double").metrics["total"] == doubled


def test_treatment_as_callable():
    def apply(ctx):
        ctx["scale"] = 10.0

    result = make(treatments=[Treatment("ten", apply)], replicates=1).run()
    assert result.metrics.treatments["ten"].metrics["total"][0] > 1


def test_a_treatment_named_baseline_changes_the_baseline():
    result = make(treatments=[Treatment("baseline", {"scale": 0.0}), Treatment("t", {"scale": 1.0})]).run()
    assert result.metrics.baseline.metrics["total"] == [0.0, 0.0, 0.0]
    assert list(result.metrics.treatments) == ["t"]


def test_failed_replicate_is_recorded_with_traceback_and_does_not_stop_others(caplog):
    exp = make(pipeline=Pipeline([total(), FailOn("t", 1)]), treatments=[Treatment("t", {"scale": 2.0})])
    with caplog.at_level(logging.WARNING, logger="crystallize"):
        result = exp.run()
    assert not result.ok and result.run.status == "failed"
    error = result.errors["t"][1]
    assert error.step == "FailOn" and error.type_name == "RuntimeError"
    assert "planned failure at t/1" in error.message and "Traceback" in error.traceback
    assert isinstance(error.exception, RuntimeError)
    assert list(result.errors) == ["t"] and list(result.errors["t"]) == [1]
    # the other replicates ran; the failed one contributes no metrics
    assert len(result.metrics.treatments["t"].metrics["total"]) == 2
    assert len(result.metrics.baseline.metrics["total"]) == 3
    assert "replicate 1 in step 'FailOn'" in str(error)
    assert "1 replicate(s)" in caplog.text  # never silent


def test_datasource_failure_is_a_replicate_error_without_step():
    @data_source
    def broken(ctx):
        raise OSError("disk gone")

    result = make(datasource=broken()).run()
    assert set(result.errors["baseline"]) == {0, 1, 2}
    assert result.errors["baseline"][0].step is None


def test_run_overrides_replicates_treatments_and_hypotheses():
    exp = make(treatments=[Treatment("a", {"scale": 2.0})], hypotheses=[Hypothesis(metrics="total")])
    result = exp.run(treatments=[Treatment("b", {"scale": 3.0})], hypotheses=[], replicates=2)
    assert list(result.metrics.treatments) == ["b"]
    assert result.metrics.hypotheses == []
    assert len(result.metrics.baseline.metrics["total"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(datasource=None), "has no datasource"),
        (dict(pipeline=Pipeline([])), "has no pipeline steps"),
        (dict(replicates=0), "replicates must be a positive int, got 0"),
        (dict(hypotheses=[Hypothesis(metrics="total")]), "hypotheses but no treatments"),
        (
            dict(treatments=[Treatment("t", {"scale": 1}), Treatment("t", {"scale": 2})]),
            "two treatments are named 't'",
        ),
        (
            dict(
                treatments=[Treatment("t", {"scale": 1})],
                hypotheses=[Hypothesis(metrics="total", name="h"), Hypothesis(metrics="total", name="h")],
            ),
            "two hypotheses are named 'h'",
        ),
    ],
)
def test_configuration_errors_raise_before_any_work(kwargs, message):
    calls = []

    class Spy(PipelineStep):
        def __call__(self, data, ctx):
            calls.append(1)
            return data

    exp = make(**kwargs)
    if exp.pipeline.steps:
        exp.pipeline.steps.append(Spy())
    with pytest.raises(ConfigurationError, match=message):
        exp.validate()
    with pytest.raises(ConfigurationError, match=message):
        exp.run()
    assert calls == []


def test_a_replicate_count_that_is_not_an_int_is_refused_when_the_experiment_is_made():
    with pytest.raises(TypeError, match="replicates must be an int, got str: '3'"):
        make(replicates="3")
    with pytest.raises(TypeError, match="got bool: True"):
        make(replicates=True)


def test_invalid_strategy_and_run_replicates():
    exp = make()
    with pytest.raises(ValueError, match="strategy must be one of 'rerun', 'resume', got 'restart'"):
        exp.run(strategy="restart")
    with pytest.raises(ValueError, match=r"run\(replicates=\.\.\.\) must be a positive int, got -1"):
        exp.run(replicates=-1)


def test_outputs_must_be_unique_artifacts():
    with pytest.raises(ValueError, match="two outputs are named 'a.bin'"):
        make(outputs=[Artifact("a.bin"), Artifact("a.bin")])
    with pytest.raises(TypeError, match="outputs must hold Artifact objects"):
        make(outputs=["a.bin"])


class Writer(PipelineStep):
    def __init__(self, out):
        self.out = out

    def __call__(self, data, ctx):
        self.out.write(b"x")
        return data


def test_step_holding_an_undeclared_artifact_is_a_configuration_error():
    exp = make(pipeline=Pipeline([Writer(Artifact("model.bin"))]))
    with pytest.raises(ConfigurationError, match=r"holds Artifact\('model.bin'\), which is not in outputs"):
        exp.validate()


def test_two_steps_with_one_name_writing_one_artifact_is_an_error():
    out = Artifact("model.bin")
    exp = make(pipeline=Pipeline([Writer(out), Writer(out)]), outputs=[out])
    with pytest.raises(ConfigurationError, match="steps 0 and 1 are both named 'Writer'"):
        exp.validate()

    @pipeline_step()
    def save(data, ctx, out):
        out.write(b"y")
        return data

    exp2 = make(pipeline=Pipeline([save(out=out), save(out=out)]), outputs=[out])
    with pytest.raises(ConfigurationError, match="both named 'save'"):
        exp2.validate()


def test_datasource_may_be_a_plain_callable_but_not_a_factory():
    result = make(datasource=lambda ctx: [1.0, 2.0]).run()
    assert result.metrics.baseline.metrics["total"] == [3.0, 3.0, 3.0]
    with pytest.raises(TypeError, match=r"call it: datasource=numbers\(\)"):
        make(datasource=numbers)


def test_pipeline_may_be_given_as_a_list():
    exp = make(pipeline=[total()])
    assert isinstance(exp.pipeline, Pipeline)
    assert exp.run().ok


def test_repr_and_key():
    unnamed = make()
    assert unnamed.key == unnamed.id and "unnamed" in repr(unnamed)
    named = make(name="study")
    assert named.key == "study"
