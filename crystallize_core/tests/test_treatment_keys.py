"""Treatment keys reach datasource parameters, and a key nothing read is reported."""

import warnings

import pytest

from crystallize import Experiment, ParallelExecution, Pipeline, PipelineStep, Treatment, data_source, pipeline_step
from crystallize.errors import UnreadTreatmentKeyWarning


@data_source
def numbers(ctx, n=3):
    return list(range(n))


@pipeline_step()
def total(data, ctx, scale=1):
    ctx.metrics.add("total", sum(data) * scale)
    return data


@pipeline_step()
def count(data, ctx):
    ctx.metrics.add("count", len(data))
    return data


def run(source, steps, *treatments, plugins=(), replicates=2):
    exp = Experiment(source, Pipeline(steps), treatments=list(treatments), plugins=list(plugins), replicates=replicates)
    return exp.run()


def quietly(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreadTreatmentKeyWarning)
        return fn()


def test_a_treatment_sets_a_datasource_parameter_like_a_step_parameter():
    result = quietly(lambda: run(numbers(), [count(), total()], Treatment("big", {"n": 5, "scale": 2})))
    assert result.metrics.baseline.metrics["count"] == [3, 3]
    assert result.metrics.treatments["big"].metrics["count"] == [5, 5]
    assert result.metrics.treatments["big"].metrics["total"] == [20, 20]


def test_a_datasource_parameter_passed_explicitly_wins_and_the_unread_key_is_named():
    with pytest.warns(UnreadTreatmentKeyWarning) as caught:
        result = run(numbers(n=4), [count()], Treatment("big", {"n": 5}))
    assert result.metrics.treatments["big"].metrics["count"] == [4, 4]
    (warning,) = caught
    message = str(warning.message)
    assert "treatment 'big'" in message and "sets 'n'" in message and "(in 2 replicate(s))" in message
    assert "datasource 'numbers' has a parameter 'n', but it was passed explicitly (numbers(n=4))" in message
    assert warning.filename == __file__  # it points at the run() call


def test_a_step_parameter_passed_explicitly_is_named():
    with pytest.warns(UnreadTreatmentKeyWarning, match=r"step 'total' has a parameter 'scale'.*total\(scale=3\)"):
        run(numbers(), [total(scale=3)], Treatment("double", {"scale": 2}))


def test_a_key_no_one_could_read_says_how_to_read_it():
    with pytest.warns(UnreadTreatmentKeyWarning, match=r"sets 'lr'.*no step or datasource parameter is named 'lr'"):
        run(numbers(), [count()], Treatment("fast", {"lr": 0.1}))


def test_a_class_step_attribute_of_that_name_is_pointed_at():
    class Scale(PipelineStep):
        def __init__(self, factor):
            self.factor = factor

        def __call__(self, data, ctx):
            return [x * self.factor for x in data]

    with pytest.warns(UnreadTreatmentKeyWarning, match=r"step 'Scale' has an attribute 'factor'.*ctx\['factor'\]"):
        run(numbers(), [Scale(2)], Treatment("t", {"factor": 3}))


@pytest.mark.parametrize(
    "read",
    [
        lambda ctx: ctx["lr"],
        lambda ctx: ctx.get("lr"),
        lambda ctx: "lr" in ctx,
        lambda ctx: dict(ctx),
        lambda ctx: ctx.as_dict()["lr"],
    ],
    ids=["getitem", "get", "in", "dict", "as_dict"],
)
def test_every_way_of_reading_the_context_counts(read):
    @pipeline_step()
    def reader(data, ctx):
        read(ctx)
        return data

    quietly(lambda: run(numbers(), [reader()], Treatment("fast", {"lr": 0.1})))


def test_keys_added_by_a_callable_treatment_are_watched_too():
    def apply(ctx):
        ctx["n"] = 6
        ctx["unused"] = True

    with pytest.warns(UnreadTreatmentKeyWarning) as caught:
        result = run(numbers(), [count()], Treatment("fn", apply))
    assert result.metrics.treatments["fn"].metrics["count"] == [6, 6]
    assert [str(w.message).split(", but")[0].rsplit(" ", 1)[1] for w in caught] == ["'unused'"]


def test_a_failed_replicate_is_not_counted_as_not_reading():
    @pipeline_step()
    def fails_first(data, ctx):
        if ctx["replicate"] == 0:
            raise RuntimeError("before reading")
        ctx["lr"]
        return data

    result = quietly(lambda: run(numbers(), [fails_first()], Treatment("t", {"lr": 1})))
    assert list(result.errors) == ["baseline", "t"]


def test_unread_keys_come_back_from_worker_processes():
    with pytest.warns(UnreadTreatmentKeyWarning, match=r"nothing read it \(in 4 replicate"):
        run(numbers(), [count()], Treatment("t", {"lr": 1}), plugins=[ParallelExecution(2, "process")], replicates=4)


def test_a_datasource_parameter_left_to_the_context_is_set_by_the_treatment():
    @data_source
    def sized(ctx, size=1):
        return [0] * size

    exp = Experiment(sized(), Pipeline([count()]), treatments=[Treatment("t", {"size": 3})], replicates=1)
    result = exp.run()
    assert result.metrics.baseline.metrics["count"] == [1]
    assert result.metrics.treatments["t"].metrics["count"] == [3]


def test_one_warning_per_key_however_many_treatments_set_it():
    treatments = [Treatment(f"t{i}", {"level": i}) for i in range(5)]
    with pytest.warns(UnreadTreatmentKeyWarning) as caught:
        run(numbers(), [count()], *treatments)
    (warning,) = caught
    assert "treatments 't0', 't1', 't2' and 2 more of experiment" in str(warning.message)
    assert "set 'level', but nothing read it (in 10 replicate(s))" in str(warning.message)
