"""Experiment features beyond run(): initial_ctx, setup/teardown, apply, debug, builder, optimize."""

from __future__ import annotations

import random

import pytest

from crystallize import (
    Artifact,
    BaseOptimizer,
    Experiment,
    ExperimentBuilder,
    Objective,
    ParallelExecution,
    Pipeline,
    PipelineStep,
    SeedPlugin,
    Treatment,
    data_source,
    hookimpl,
    pipeline_step,
    resource_factory,
)
from crystallize.errors import ConfigurationError
from crystallize.testing import MemoryStorage


@data_source
def value(ctx, v=1):
    return v


@pipeline_step()
def add(data, ctx, amount=0):
    ctx.metrics.add("out", data + amount)
    return data + amount


# -- initial_ctx and setup/teardown --------------------------------------------------------


class Loads(PipelineStep):
    """Loads a shared 'model' in setup; every replicate reads what setup added."""

    def __init__(self):
        self.events = []

    def setup(self, ctx):
        self.events.append(("setup", ctx["base"]))
        ctx.add("model", ctx["base"] * 10)

    def teardown(self, ctx):
        self.events.append(("teardown", ctx["model"]))

    def __call__(self, data, ctx):
        ctx.metrics.add("out", ctx["model"] + ctx["replicate"])
        return data

    @property
    def params(self):
        return {}


@pytest.mark.parametrize("engine", [None, "process"])
def test_setup_adds_keys_every_replicate_sees_even_in_worker_processes(engine):
    step = Loads()
    plugins = [] if engine is None else [ParallelExecution(executor_type="process", max_workers=2)]
    exp = Experiment(datasource=value(), pipeline=[step], initial_ctx={"base": 4}, replicates=3, plugins=plugins)
    result = exp.run()
    assert result.errors == {}
    assert result.metrics.baseline.metrics["out"] == [40, 41, 42]
    assert step.events == [("setup", 4), ("teardown", 40)]


def test_initial_ctx_is_part_of_the_id_and_may_not_set_core_keys():
    a = Experiment(datasource=value(), pipeline=[add()], initial_ctx={"amount": 1})
    b = Experiment(datasource=value(), pipeline=[add()], initial_ctx={"amount": 2})
    c = Experiment(datasource=value(), pipeline=[add()])
    assert len({a.id, b.id, c.id}) == 3
    assert a.run().metrics.baseline.metrics["out"] == [2]
    with pytest.raises(ValueError, match="initial_ctx may not set 'replicate'"):
        Experiment(datasource=value(), pipeline=[add()], initial_ctx={"replicate": 3})


def test_a_failing_setup_fails_the_run_and_still_tears_every_step_down():
    class Broken(Loads):
        def setup(self, ctx):
            raise RuntimeError("no model")

    broken, other = Broken(), Loads()
    exp = Experiment(datasource=value(), pipeline=[other, broken], initial_ctx={"base": 1})
    with pytest.raises(RuntimeError, match="no model"):
        exp.run()
    assert other.events[-1][0] == "teardown"


def test_a_failing_teardown_is_raised_after_the_run_finished():
    class Sticky(Loads):
        def teardown(self, ctx):
            raise RuntimeError("cannot release")

    storage = MemoryStorage()
    exp = Experiment(datasource=value(), pipeline=[Sticky()], initial_ctx={"base": 1}, plugins=[storage])
    with pytest.raises(RuntimeError, match="cannot release"):
        exp.run()
    (run,) = storage.runs[exp.key].values()
    assert run.status == "failed" and "baseline" in run.completed  # the work itself is kept


def test_a_resource_factory_in_initial_ctx_is_built_once_per_thread_and_injected():
    built = []

    def connect(ctx):
        built.append(1)
        return {"connection": len(built)}

    @pipeline_step()
    def use(data, ctx, db=None):
        ctx.metrics.add("conn", db["connection"])
        return data

    exp = Experiment(datasource=value(), pipeline=[use()], initial_ctx={"db": resource_factory(connect)}, replicates=4)
    assert exp.run().metrics.baseline.metrics["conn"] == [1, 1, 1, 1]
    assert built == [1]


def test_a_plain_function_in_the_context_is_passed_as_it_is():
    def relu(x):
        return max(x, 0)

    @pipeline_step()
    def activate(data, ctx, activation=abs):
        return activation(data)

    exp = Experiment(
        datasource=value(v=-3), pipeline=[activate(), add()], treatments=[Treatment("relu", {"activation": relu})]
    )
    result = exp.run(treatments=[Treatment("relu", {"activation": relu})])
    assert result.metrics.treatments["relu"].metrics["out"] == [0]


# -- apply --------------------------------------------------------------------------------


class Recorder:
    plugin_name = "recorder"

    def __init__(self):
        self.calls = []

    @hookimpl
    def before_run(self, run):
        self.calls.append(("before_run", run.replicates))

    @hookimpl
    def before_replicate(self, ctx):
        self.calls.append(("before_replicate", ctx["condition"]))

    @hookimpl
    def after_step(self, step, data):
        self.calls.append(("after_step", step.step_name, data))

    @hookimpl
    def after_run(self, run, result):
        self.calls.append(("after_run", run.status))


def test_apply_runs_the_pipeline_once_with_hooks_and_returns_the_output():
    recorder = Recorder()
    storage = MemoryStorage()
    exp = Experiment(datasource=value(v=5), pipeline=[add(amount=1)], plugins=[recorder, storage])
    assert exp.apply() == 6
    assert exp.apply(data=10) == 11
    assert exp.apply(Treatment("big", {"amount": 100}), data=1) == 2  # the explicit amount wins
    assert recorder.calls[:4] == [
        ("before_run", 1),
        ("before_replicate", "baseline"),
        ("after_step", "add", 6),
        ("after_run", "completed"),
    ]
    assert recorder.calls[-3][1] == "big"
    assert storage.runs == {}  # nothing was stored


def test_apply_keeps_artifacts_in_memory_and_leaves_stored_runs_alone():
    out = Artifact("model.bin")

    @pipeline_step()
    def train(data, ctx, out=out):
        out.write(str(data).encode())
        return data

    storage = MemoryStorage()
    exp = Experiment(datasource=value(), pipeline=[train()], outputs=[out], plugins=[storage])
    exp.run()
    before = {k: dict(v.artifacts) for k, v in storage.runs[exp.key].items()}
    assert exp.apply(data=42) == 42
    assert {k: dict(v.artifacts) for k, v in storage.runs[exp.key].items()} == before


def test_apply_propagates_a_step_error_and_still_tears_down():
    class Fails(Loads):
        def __call__(self, data, ctx):
            raise KeyError("missing feature")

    step = Fails()
    exp = Experiment(datasource=value(), pipeline=[step], initial_ctx={"base": 1})
    with pytest.raises(KeyError, match="missing feature"):
        exp.apply()
    assert step.events[-1][0] == "teardown"


def test_apply_seed_replaces_the_seed_plugins_own():
    seen = []
    exp = Experiment(datasource=value(), pipeline=[add()], plugins=[SeedPlugin(seed=1, seed_fn=seen.append)])
    exp.apply(seed=5)
    assert seen == [5]
    exp.apply()
    assert len(seen) == 2 and seen[1] != 5  # the plugin's own derivation


def test_apply_checks_its_arguments():
    exp = Experiment(datasource=value(), pipeline=[add()])
    with pytest.raises(TypeError, match="takes a Treatment"):
        exp.apply("big")
    with pytest.raises(TypeError, match="seed=...\\) takes an int"):
        exp.apply(seed="5")


# -- debug ----------------------------------------------------------------------------------


def test_debug_runs_one_replicate_serially_and_restores_the_experiment():
    engine = ParallelExecution(max_workers=2)
    exp = Experiment(
        datasource=value(),
        pipeline=[add()],
        plugins=[engine],
        replicates=5,
        treatments=[Treatment("more", {"amount": 2})],
    )
    result = exp.debug("more", verbose=False)
    assert result.metrics.baseline.metrics["out"] == [1]
    assert result.metrics.treatments["more"].metrics["out"] == [3]
    assert exp.plugins == [engine] and exp.replicates == 5
    unknown = exp.debug("nothing")
    assert unknown.metrics.treatments["nothing"].metrics["out"] == [1]


# -- builder ----------------------------------------------------------------------------------


def test_the_builder_makes_the_same_experiment_as_the_constructor():
    built = (
        Experiment.builder("built")
        .datasource(value())
        .add_step(add(amount=1))
        .treatments([Treatment("t", {"x": 1})])
        .replicates(2)
        .description("from the builder")
        .initial_ctx({"k": 1})
        .build()
    )
    assert isinstance(Experiment.builder(), ExperimentBuilder)
    assert built.name == "built" and built.replicates == 2 and built.description == "from the builder"
    assert built.run().metrics.baseline.metrics["out"] == [2, 2]
    with pytest.raises(ValueError, match="a datasource must be provided"):
        ExperimentBuilder().add_step(add()).build()


# -- optimize ------------------------------------------------------------------------------------


class Grid(BaseOptimizer):
    def __init__(self, amounts, direction="minimize"):
        super().__init__(Objective(metric="out", direction=direction))
        self.amounts = list(amounts)
        self.told = []

    def ask(self):
        amount = self.amounts[len(self.told)]
        return [Treatment(f"amount_{amount}", {"amount": amount})]

    def tell(self, objective_values):
        self.told.append(objective_values["out"])

    def get_best_treatment(self):
        pick = min if self.objective.direction == "minimize" else max
        best = self.told.index(pick(self.told))
        return Treatment("best", {"amount": self.amounts[best]})


@data_source
def noisy(ctx):
    return random.random()


def test_optimize_tells_the_mean_objective_and_returns_the_best_treatment():
    grid = Grid([3, -2, 7])
    exp = Experiment(datasource=value(v=10), pipeline=[add()])
    best = exp.optimize(grid, num_trials=3, replicates_per_trial=2)
    assert grid.told == [13, 8, 17]
    assert best.values == {"amount": -2}


def test_optimize_names_the_problem_in_bad_input():
    exp = Experiment(datasource=value(), pipeline=[add()])
    with pytest.raises(ValueError, match="direction=...\\) must be 'minimize' or 'maximize'.*'down'"):
        Objective(metric="out", direction="down")
    with pytest.raises(ValueError, match="num_trials must be a positive int, got 0"):
        exp.optimize(Grid([1]), num_trials=0)

    class Two(Grid):
        def ask(self):
            return [Treatment("a", {}), Treatment("b", {})]

    with pytest.raises(TypeError, match="ask\\(\\) must return one Treatment"):
        exp.optimize(Two([1]), num_trials=1)

    class Elsewhere(Grid):
        def __init__(self):
            BaseOptimizer.__init__(self, Objective(metric="accuracy"))
            self.amounts, self.told = [1], []

    with pytest.raises(KeyError, match="metric 'accuracy' was not recorded.*recorded: 'out'"):
        exp.optimize(Elsewhere(), num_trials=1)


def test_async_optimize_gives_the_same_answer():
    import asyncio

    exp = Experiment(datasource=value(v=10), pipeline=[add()])
    best = asyncio.run(exp.aoptimize(Grid([3, -2]), num_trials=2))
    assert best.values == {"amount": -2}


# -- small API pieces ---------------------------------------------------------------------------------


def test_replicates_must_be_an_int_and_executor_types_are_listed():
    with pytest.raises(TypeError, match="replicates must be an int"):
        Experiment(datasource=value(), pipeline=[add()], replicates="3")
    assert {"thread", "process"} == Experiment.VALID_EXECUTOR_TYPES


def test_set_default_plugins_pins_the_active_plugins():
    exp = Experiment(datasource=value(), pipeline=Pipeline([add()]))
    exp.set_default_plugins()
    names = [type(p).__name__ for p in exp.plugins]
    assert "SerialExecution" in names
    exp.set_default_plugins()
    assert [type(p).__name__ for p in exp.plugins] == names  # idempotent
    assert exp.run().metrics.baseline.metrics["out"] == [1]


def test_artifact_datasource_checks_a_condition_passed_in_require_metadatas_place():
    exp = Experiment(datasource=value(), pipeline=[add()], plugins=[MemoryStorage()], name="producer")
    with pytest.raises(TypeError, match="condition='baseline'"):
        exp.artifact_datasource("add", "x.bin", "baseline")
    with pytest.raises(ConfigurationError, match="no active plugin provides storage"):
        Experiment(datasource=value(), pipeline=[add()]).artifact_datasource("add", condition="baseline")
