import pickle

import cloudpickle
import pytest

from crystallize import Experiment, FrozenContext, Pipeline, PipelineStep, Treatment, data_source, pipeline_step


@pipeline_step()
def scale(data, ctx, factor=2, offset=0):
    return data * factor + offset


@pipeline_step
def bare(data, ctx):
    return data + 1


@pipeline_step()
def needs_lr(data, ctx, lr=0.01):
    ctx.metrics.add("lr", lr)
    return data


class Add(PipelineStep):
    def __init__(self, amount):
        self.amount = amount
        self._cache = object()

    def __call__(self, data, ctx):
        return data + self.amount


def test_function_step_factory_binds_params_and_defaults():
    step = scale(factor=3)
    assert step(2, FrozenContext()) == 6
    assert step.params == {"factor": 3, "offset": 0}
    assert step.step_name == "scale"
    assert scale(3, 1)(2, FrozenContext()) == 7  # positional parameters work too
    assert bare()(1, FrozenContext()) == 2


def test_unknown_parameter_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"scale\(\.\.\.\): got an unexpected keyword argument 'factr'"):
        scale(factr=3)


def test_decorated_function_must_take_data_first():
    with pytest.raises(TypeError, match=r"must take data as its first positional parameter"):

        @pipeline_step()
        def wrong():
            return 1

    with pytest.raises(TypeError, match=r"must take data as its first positional parameter"):

        @pipeline_step()
        def keyword_only(*, data):
            return data


def test_parameters_not_passed_come_from_the_context():
    ctx = FrozenContext({"lr": 0.5})
    needs_lr()(1, ctx)
    assert ctx.metrics["lr"] == (0.5,)
    # an explicit value wins over the context
    ctx2 = FrozenContext({"lr": 0.5})
    needs_lr(lr=0.1)(1, ctx2)
    assert ctx2.metrics["lr"] == (0.1,)


def test_a_parameter_without_a_default_must_be_passed_to_the_factory_which_names_it():
    @pipeline_step()
    def fit(data, ctx, lr, epochs=1):
        return data

    @data_source
    def rows(ctx, path):
        return path

    with pytest.raises(TypeError, match=r"fit\(\) is missing parameter\(s\) 'lr'.*fit\(lr=\.\.\.\)"):
        fit(epochs=2)
    with pytest.raises(TypeError, match=r"rows\(\) is missing parameter\(s\) 'path'.*give them a default"):
        rows()
    assert fit(lr=0.1).params == {"lr": 0.1, "epochs": 1} and rows("a.csv").fetch(FrozenContext()) == "a.csv"


def test_a_parameter_left_to_the_context_falls_back_to_its_default():
    assert needs_lr()(1, FrozenContext({"replicate": 0})) == 1


def test_treatment_values_reach_function_steps():
    @data_source
    def one(ctx):
        return 1

    exp = Experiment(one(), Pipeline([needs_lr()]), treatments=[Treatment("fast", {"lr": 0.9})])
    result = exp.run(treatments=[Treatment("fast", {"lr": 0.9}), Treatment("baseline", {"lr": 0.1})])
    assert result.metrics.baseline.metrics == {"lr": [0.1]}
    assert result.metrics.treatments["fast"].metrics == {"lr": [0.9]}


def test_class_step_defaults_params_to_public_attributes_and_name_to_class():
    step = Add(3)
    assert step.params == {"amount": 3}
    assert step.step_name == "Add"


def test_function_steps_pickle_with_standard_pickle_and_cloudpickle():
    step = scale(factor=5)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        clone = pickle.loads(dumps(step))
        assert clone(1, FrozenContext()) == 5 and clone.params == step.params


def test_pipeline_rejects_factories_and_classes_with_a_hint():
    with pytest.raises(TypeError, match=r"did you mean scale\(\)\?"):
        Pipeline([scale])
    with pytest.raises(TypeError, match=r"did you mean Add\(\.\.\.\)\?"):
        Pipeline([Add])
    with pytest.raises(TypeError, match="not a PipelineStep"):
        Pipeline([lambda d, c: d])
