"""wrap_replicate and on_worker_start: where the replicate runs, whichever engine runs it."""

from __future__ import annotations

import os

import pytest
from core_helpers import numbers, total

from crystallize import Experiment, ParallelExecution, Pipeline, PipelineStep, PluginError, Treatment, hookimpl
from crystallize._dispatch import Hooks
from crystallize._registry import build_manager

ENGINES = {
    "serial": [],
    "threads": [ParallelExecution(2, "thread")],
    "processes": [ParallelExecution(2, "process")],
}


class Wrapper:
    """Records, inside each replicate, that the wrapper ran around it and in which process."""

    plugin_name = "wrapper"

    @hookimpl(wrapper=True)
    def wrap_replicate(self, ctx):
        ctx.metrics.add("wrapped_in", os.getpid())
        result = yield
        ctx.metrics.add("after_yield", ctx["replicate"])
        return result


class Starter:
    """Counts on_worker_start per process (each worker has its own copy of the plugin)."""

    plugin_name = "starter"

    def __init__(self):
        self.starts = 0
        self.started_in = None

    @hookimpl
    def on_worker_start(self, run):
        self.starts += 1
        self.started_in = os.getpid()

    @hookimpl
    def before_replicate(self, ctx):
        ctx.metrics.add("starts_here", self.starts)
        ctx.metrics.add("started_here", self.started_in == os.getpid())


@pytest.mark.parametrize("engine", list(ENGINES))
def test_wrap_replicate_runs_around_each_replicate_where_it_runs(engine):
    exp = Experiment(
        numbers(),
        Pipeline([total()]),
        plugins=[Wrapper(), *ENGINES[engine]],
        treatments=[Treatment("t", {})],
        replicates=3,
    )
    result = exp.run()
    assert result.ok
    for metrics in (result.metrics.baseline.metrics, result.metrics.treatments["t"].metrics):
        assert metrics["after_yield"] == [0, 1, 2] and len(metrics["total"]) == 3
        pids = set(metrics["wrapped_in"])
        assert (pids == {os.getpid()}) == (engine != "processes")


@pytest.mark.parametrize("engine", list(ENGINES))
def test_on_worker_start_runs_once_per_process_before_its_first_replicate(engine):
    exp = Experiment(numbers(), Pipeline([total()]), plugins=[Starter(), *ENGINES[engine]], replicates=6)
    metrics = exp.run().metrics.baseline.metrics
    assert metrics["starts_here"] == [1] * 6 and metrics["started_here"] == [True] * 6


def test_a_failing_on_worker_start_fails_that_processes_units_against_the_plugin():
    class Broken:
        plugin_name = "broken-start"

        @hookimpl
        def on_worker_start(self):
            raise RuntimeError("no GPU here")

    result = Experiment(numbers(), Pipeline([total()]), plugins=[Broken()], replicates=2).run()
    errors = result.error_list()
    assert [e.replicate for e in errors] == [0, 1]
    assert all((e.plugin, e.hook, e.step) == ("broken-start", "on_worker_start", None) for e in errors)
    assert "on_worker_start failed in this process" in errors[0].message and "no GPU here" in errors[0].message


class Fails(PipelineStep):
    def __call__(self, data, ctx):
        raise ValueError("the step failed")


def test_a_wrapper_that_swallows_the_failure_does_not_hide_it():
    class Swallower:
        @hookimpl(wrapper=True)
        def wrap_replicate(self):
            try:
                return (yield)
            except ValueError:
                return None  # a plugin bug: the core records the failure anyway

    result = Experiment(numbers(), Pipeline([Fails()]), plugins=[Swallower()]).run()
    (error,) = result.error_list()
    assert (error.step, error.plugin, error.message) == ("Fails", None, "the step failed")


def test_a_wrapper_that_raises_is_blamed_for_it():
    class Raiser:
        plugin_name = "raiser"

        @hookimpl(wrapper=True)
        def wrap_replicate(self, ctx):
            result = yield
            if ctx["replicate"] == 1:
                raise RuntimeError("span exporter down")
            return result

    result = Experiment(numbers(), Pipeline([total()]), plugins=[Raiser()], replicates=2).run()
    (error,) = result.error_list()
    assert (error.replicate, error.step, error.plugin, error.hook) == (1, None, "raiser", "wrap_replicate")


def test_wrap_replicate_takes_wrappers_only():
    class Plain:
        plugin_name = "plain"

        @hookimpl
        def wrap_replicate(self, ctx):
            pass

    with pytest.raises(PluginError, match="'plain' implements 'wrap_replicate' without wrapper=True"):
        Experiment(numbers(), Pipeline([total()]), plugins=[Plain()]).run()


def test_unimplemented_replicate_hooks_cost_nothing():
    pm, _ = build_manager([])
    hooks = Hooks(pm)
    assert hooks.wrap_replicate is None and hooks.on_worker_start is None
    assert not pm.has_plugin("crystallize-replicate")  # the replicate is called directly
    pm, _ = build_manager([Wrapper()])
    assert pm.has_plugin("crystallize-replicate")
