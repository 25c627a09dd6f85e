"""crystallize-ml 0.27 plugin classes run on the hooks: BasePlugin, LoggingPlugin."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from crystallize import (
    AsyncExecution,
    BasePlugin,
    Experiment,
    LoggingPlugin,
    ParallelExecution,
    PipelineStep,
    SerialExecution,
    Treatment,
    data_source,
)
from crystallize.errors import ConfigurationError, PluginError
from crystallize.plugin import active_plugins


@data_source
def two(ctx):
    return 2


class Record(PipelineStep):
    def __call__(self, data, ctx):
        ctx.metrics.add("value", data + ctx.get("plus", 0))
        return data


class Recording(BasePlugin):
    """A 0.27 plugin: methods with 0.27's arguments, no hook markers."""

    def __init__(self):
        self.calls = []

    def init_hook(self, experiment):
        self.calls.append("init_hook")

    def before_run(self, experiment):
        self.calls.append(("before_run", experiment.name))

    def before_replicate(self, experiment, ctx):
        self.calls.append(("before_replicate", ctx["condition"], ctx["replicate"]))
        ctx.add("plus", 10)

    def before_step(self, experiment, step):
        self.calls.append(("before_step", type(step).__name__))

    def after_step(self, experiment, step, data, ctx):
        self.calls.append(("after_step", type(step).__name__, data))

    def after_run(self, experiment, result):
        self.calls.append(("after_run", result.metrics.baseline.metrics["value"]))


def test_a_0_27_plugin_sees_its_methods_called_with_0_27_arguments():
    plugin = Recording()
    exp = Experiment(datasource=two(), pipeline=[Record()], plugins=[plugin], name="legacy", replicates=2)
    result = exp.run()
    assert result.metrics.baseline.metrics["value"] == [12, 12]  # before_replicate's key reached the step
    assert plugin.calls == [
        "init_hook",
        ("before_run", "legacy"),
        ("before_replicate", "baseline", 0),
        ("before_step", "Record"),
        ("after_step", "Record", 2),
        ("before_replicate", "baseline", 1),
        ("before_step", "Record"),
        ("after_step", "Record", 2),
        ("after_run", [12, 12]),
    ]
    exp.run()
    assert plugin.calls.count("init_hook") == 1  # once per experiment


def test_only_overridden_methods_become_hooks():
    class OnlyAfterRun(BasePlugin):
        def after_run(self, experiment, result):
            pass

    exp = Experiment(datasource=two(), pipeline=[Record()], plugins=[OnlyAfterRun()])
    (info,) = [i for i in active_plugins(exp) if i.name.endswith("OnlyAfterRun")]
    assert exp._plugins().hooks_of(info.plugin) == ["after_run"]


def test_an_error_in_a_legacy_hook_fails_the_run_and_names_the_plugin():
    class Broken(BasePlugin):
        def before_run(self, experiment):
            raise RuntimeError("plugin fail")

    with pytest.raises(RuntimeError, match="plugin fail") as raised:
        Experiment(datasource=two(), pipeline=[Record()], plugins=[Broken()]).run()
    notes = "".join(getattr(raised.value, "__notes__", []))
    assert "Broken' in hook 'before_run'" in notes


def test_legacy_step_hooks_run_in_worker_processes_too():
    class Adds(BasePlugin):
        def before_replicate(self, experiment, ctx):
            ctx.add("plus", 1)

    exp = Experiment(
        datasource=two(),
        pipeline=[Record()],
        plugins=[Adds(), ParallelExecution(executor_type="process", max_workers=2)],
        replicates=3,
    )
    assert exp.run().metrics.baseline.metrics["value"] == [3, 3, 3]


class ThreadLoop(BasePlugin):
    """A 0.27 execution plugin running replicate_fn in its own pool."""

    def __init__(self):
        self.replicates_seen = None

    def run_experiment_loop(self, experiment, replicate_fn):
        self.replicates_seen = experiment.replicates
        with ThreadPoolExecutor(max_workers=3) as pool:
            return list(pool.map(replicate_fn, range(experiment.replicates)))


def test_a_0_27_execution_loop_runs_every_condition_of_every_replicate():
    loop = ThreadLoop()
    exp = Experiment(datasource=two(), pipeline=[Record()], plugins=[loop], treatments=[Treatment("t", {"plus": 1})])
    result = exp.run(replicates=4)
    assert loop.replicates_seen == 4  # the run's count, not the experiment's default
    assert result.errors == {}
    assert result.metrics.baseline.metrics["value"] == [2] * 4
    assert result.metrics.treatments["t"].metrics["value"] == [3] * 4


def test_an_async_0_27_execution_loop_is_awaited():
    class Gather(BasePlugin):
        async def run_experiment_loop(self, experiment, replicate_fn):
            return await asyncio.gather(*(replicate_fn(r) for r in range(experiment.replicates)))

    result = Experiment(datasource=two(), pipeline=[Record()], plugins=[Gather()], replicates=3).run()
    assert result.metrics.baseline.metrics["value"] == [2, 2, 2]


def test_a_loop_returning_notimplemented_leaves_execution_to_the_default():
    class Declines(BasePlugin):
        def run_experiment_loop(self, experiment, replicate_fn):
            return NotImplemented

    result = Experiment(datasource=two(), pipeline=[Record()], plugins=[Declines()], replicates=2).run()
    assert result.metrics.baseline.metrics["value"] == [2, 2]


def test_a_loop_that_skips_replicates_is_an_error_naming_them():
    class Lazy(BasePlugin):
        def run_experiment_loop(self, experiment, replicate_fn):
            return [replicate_fn(0)]

    with pytest.raises(PluginError, match="without reporting 1 unit"):
        Experiment(datasource=two(), pipeline=[Record()], plugins=[Lazy()], replicates=2).run()


def test_a_legacy_loop_cannot_ship_replicate_fn_to_another_process():
    import pickle

    class Ships(BasePlugin):
        def run_experiment_loop(self, experiment, replicate_fn):
            pickle.dumps(replicate_fn)

    with pytest.raises(TypeError, match="implement the execute_replicates hook"):
        Experiment(datasource=two(), pipeline=[Record()], plugins=[Ships()]).run()


@pytest.mark.parametrize(
    "engine",
    [SerialExecution(), AsyncExecution(max_concurrency=2), ParallelExecution(2)],
    ids=["serial", "async", "threads"],
)
def test_a_0_27_loop_may_hand_its_replicates_to_a_built_in_engine(engine):
    class Delegates(BasePlugin):
        def run_experiment_loop(self, experiment, replicate_fn):
            return engine.run_experiment_loop(experiment, replicate_fn)

    exp = Experiment(datasource=two(), pipeline=[Record()], plugins=[Delegates()], treatments=[Treatment("t", {})])
    result = exp.run(replicates=3)
    assert result.errors == {} and result.metrics.treatments["t"].metrics["value"] == [2, 2, 2]


class Replicates:
    replicates = 4


async def slow_square(rep):
    await asyncio.sleep(0)
    return rep * rep


def test_the_built_in_engines_run_a_replicate_function_for_each_replicate_in_order():
    assert asyncio.run(SerialExecution().run_experiment_loop(Replicates(), slow_square)) == [0, 1, 4, 9]
    assert asyncio.run(AsyncExecution().run_experiment_loop(Replicates(), slow_square)) == [0, 1, 4, 9]
    assert ParallelExecution(3).run_experiment_loop(Replicates(), abs) == [0, 1, 2, 3]
    assert ParallelExecution(2, "process").run_experiment_loop(Replicates(), lambda rep: rep + 1) == [1, 2, 3, 4]


def test_a_pool_refuses_an_async_replicate_function_and_names_the_engine_that_awaits_it():
    with pytest.raises(TypeError, match=r"use AsyncExecution\(\)\.run_experiment_loop"):
        ParallelExecution().run_experiment_loop(Replicates(), slow_square)


def test_a_process_pool_cannot_be_sent_the_run_s_replicate_function():
    class Delegates(BasePlugin):
        def run_experiment_loop(self, experiment, replicate_fn):
            return ParallelExecution(2, "process").run_experiment_loop(experiment, replicate_fn)

    with pytest.raises(ConfigurationError, match="implement the execute_replicates hook"):
        Experiment(datasource=two(), pipeline=[Record()], plugins=[Delegates()], replicates=2).run()


def test_a_loop_needs_a_positive_replicate_count():
    class NoCount:
        replicates = 0

    with pytest.raises(ValueError, match="experiment.replicates to be a positive int, got 0"):
        ParallelExecution().run_experiment_loop(NoCount(), abs)


def test_two_legacy_engines_are_refused_like_two_engines():
    with pytest.raises(ConfigurationError, match="several execution engines"):
        Experiment(datasource=two(), pipeline=[Record()], plugins=[ThreadLoop(), ParallelExecution()]).validate()


def test_logging_plugin_summarises_a_run(caplog):
    plugin = LoggingPlugin(verbose=True, log_level="INFO")
    exp = Experiment(datasource=two(), pipeline=[Record()], plugins=[plugin], replicates=2)
    logger = logging.getLogger("crystallize")
    handlers, level = list(logger.handlers), logger.level
    try:
        with caplog.at_level(logging.INFO, logger="crystallize"):
            exp.run()
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
    messages = [r.getMessage() for r in caplog.records if r.name == "crystallize"]
    assert messages[0].startswith("Experiment: 2 replicates, 0 treatments, 0 hypotheses")
    assert "Rep 1/2 baseline finished step Record" in messages
    assert messages[-1].startswith("Completed in") and messages[-1].endswith("0 errors")


def test_logging_plugin_keeps_its_0_27_methods_for_direct_calls():
    plugin = LoggingPlugin(log_level="NOT-A-LEVEL")
    exp = Experiment(datasource=two(), pipeline=[Record()], plugins=[plugin])
    logger = logging.getLogger("crystallize")
    handlers, level = list(logger.handlers), logger.level
    try:
        plugin.before_run(exp)
        assert logger.level == logging.INFO
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
