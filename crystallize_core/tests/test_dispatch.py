"""How the core calls hooks: direct calls match pluggy's; isolated calls; plugin blame.

These tests run in both dispatch modes too (see ``test_hooks.py``).
"""

from __future__ import annotations

import inspect

import pluggy
import pytest
from core_helpers import numbers, total

from crystallize import Experiment, Pipeline, PipelineStep, PluginError, hookimpl, hookspecs
from crystallize._dispatch import HOOK_NAMES, Hooks
from crystallize._registry import build_manager
from crystallize.plugin import CompletedWork, ReplicateError

pytestmark = pytest.mark.usefixtures("dispatch")


class Boom(RuntimeError):
    pass


class Answers:
    """Implements hooks with argument subsets and every result shape."""

    plugin_name = "answers"

    def __init__(self, work=None):
        self.work = work
        self.seen = []

    @hookimpl
    def on_resume(self, run):  # an ordinary hook: results are a list, None dropped
        self.seen.append(run)
        return self.work

    @hookimpl
    def locate_run(self, version):  # firstresult: the value itself
        return None if version is None else f"v{version}"

    @hookimpl
    def stale_reason(self):  # no arguments at all
        raise Boom("stale_reason exploded")


def _table(plugins, dispatch):
    pm, _ = build_manager(plugins)
    return Hooks(pm, direct=dispatch == "direct")


def test_the_table_calls_the_way_the_mode_says(dispatch):
    table = _table([Answers()], dispatch)
    assert isinstance(table.on_resume, pluggy.HookCaller) == (dispatch == "pluggy")


@pytest.mark.parametrize("work", [None, CompletedWork(conditions={"baseline": {"m": [1]}})])
def test_results_have_pluggys_shape_in_both_modes(dispatch, work):
    plugin = Answers(work)
    table = _table([plugin], dispatch)
    assert table.on_resume(experiment="exp", run="the run") == ([] if work is None else [work])
    assert plugin.seen == ["the run"]
    assert table.locate_run(experiment="exp", version=3) == "v3"
    assert table.locate_run(experiment="exp", version=None) is None
    with pytest.raises(Boom, match="stale_reason exploded"):
        table.stale_reason(experiment="exp")


def test_an_isolated_hook_runs_every_implementation_and_raises_the_first_error(dispatch):
    ran = []

    class Failing:
        def __init__(self, name):
            self.plugin_name = name

        @hookimpl
        def after_run(self, run):
            ran.append(self.plugin_name)
            raise Boom(f"{self.plugin_name} failed")

    class Fine:
        plugin_name = "fine"

        @hookimpl
        def after_run(self):
            ran.append("fine")

    table = _table([Failing("first"), Fine(), Failing("second")], dispatch)
    with pytest.raises(Boom) as caught:
        table.call_isolated("after_run", experiment=None, run=None, result=None)
    assert sorted(ran) == ["fine", "first", "second"]
    assert ran[0] == "second"  # pluggy's order: the last registered first
    assert str(caught.value) == "second failed"
    assert "(raised by plugin 'second' in hook 'after_run')" in caught.value.__notes__


def test_isolated_hooks_refuse_wrapper_implementations():
    class Wrapping:
        plugin_name = "wrapping"

        @hookimpl(wrapper=True)
        def after_run(self):
            return (yield)

    with pytest.raises(PluginError, match="'wrapping' implements 'after_run' as a wrapper"):
        Experiment(numbers(), Pipeline([total()]), plugins=[Wrapping()]).run()


def test_a_run_failing_in_a_hook_names_the_plugin_by_its_own_name(dispatch):
    class Broken:
        plugin_name = "broken-plugin"

        @hookimpl
        def before_run(self):
            raise Boom("before_run exploded")

    with pytest.raises(Boom) as caught:
        Experiment(numbers(), Pipeline([total()]), plugins=[Broken()]).run()
    assert caught.value.__notes__ == ["(raised by plugin 'broken-plugin' in hook 'before_run')"]


class Marker(PipelineStep):
    def __call__(self, data, ctx):
        ctx.metrics.add("ran", ctx["replicate"])
        return data


@pytest.mark.parametrize("hook", ["before_step", "after_step"])
def test_a_step_hook_that_raises_is_blamed_on_its_plugin_not_the_step(dispatch, hook):
    errors = []

    class Flaky:
        plugin_name = "flaky"

        @hookimpl(specname=hook)
        def step_hook(self, ctx):
            if ctx["replicate"] == 1:
                raise Boom(f"{hook} exploded")

        @hookimpl
        def on_replicate_error(self, step, error):
            errors.append((step, error))

    result = Experiment(numbers(), Pipeline([total(), Marker()]), plugins=[Flaky()], replicates=3).run()
    (error,) = result.error_list()
    assert isinstance(error, ReplicateError) and error.replicate == 1
    assert (error.step, error.plugin, error.hook) == (None, "flaky", hook)
    assert error.type_name.endswith("Boom") and f"{hook} exploded" in error.message
    assert f"in plugin 'flaky' (hook '{hook}')" in str(error) and "in step" not in str(error)
    assert errors[0][0] is None  # on_replicate_error: no step raised
    assert result.metrics.baseline.metrics["ran"] == [0, 2]


def test_a_failing_step_is_blamed_on_the_step_even_with_step_hooks(dispatch):
    class Quiet:
        @hookimpl
        def after_step(self, step):
            pass

    class Fails(PipelineStep):
        def __call__(self, data, ctx):
            raise Boom("the step failed")

    result = Experiment(numbers(), Pipeline([total(), Fails()]), plugins=[Quiet()]).run()
    (error,) = result.error_list()
    assert (error.step, error.plugin, error.hook) == ("Fails", None, None)


def test_the_table_has_a_typed_attribute_per_hook():
    annotated = {name for name in inspect.get_annotations(Hooks) if name in vars(hookspecs)}
    assert annotated == set(HOOK_NAMES)
