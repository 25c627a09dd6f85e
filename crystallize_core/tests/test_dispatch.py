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


# -- several plain implementations: the direct caller keeps pluggy's semantics ---------------


def _ordered(calls):
    """Plugins whose hooks record their calls in ``calls``: (name, registration options, result)."""

    def plugin(name, result=None, raises=False, **options):
        class Impl:
            plugin_name = name

            @hookimpl(**options)
            def on_replicate_outcome(self, outcome):
                calls.append(name)
                if raises:
                    raise Boom(f"{name} raised")
                return result

            @hookimpl(specname="locate_run", **options)
            def locate(self, version):
                calls.append(name)
                if raises:
                    raise Boom(f"{name} raised")
                return result

        return Impl()

    return plugin


def _both(plugins, dispatch):
    """The core's table and pluggy's own hook relay for the same plugins."""
    pm, _ = build_manager(plugins)
    return Hooks(pm, direct=dispatch == "direct"), pm.hook


CASES = {
    "registration order": [("a", 1, {}), ("b", None, {}), ("c", 3, {})],
    "tryfirst and trylast": [("last", 1, {"trylast": True}), ("a", None, {}), ("first", 2, {"tryfirst": True})],
    "all None": [("a", None, {}), ("b", None, {})],
    "trylast registered last": [("a", 1, {}), ("b", 2, {"tryfirst": True}), ("z", 3, {"trylast": True})],
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_several_plain_implementations_are_called_in_pluggys_order_with_its_results(dispatch, case):
    calls = []
    make = _ordered(calls)
    table, relay = _both([make(name, result, **options) for name, result, options in CASES[case]], dispatch)
    assert isinstance(table.on_replicate_outcome, pluggy.HookCaller) == (dispatch == "pluggy")
    arguments = {"experiment": None, "run": None, "outcome": "o"}

    ours = table.on_replicate_outcome(**arguments)
    our_order, calls[:] = list(calls), []
    theirs = relay.on_replicate_outcome(**arguments)
    assert (ours, our_order) == (theirs, calls)  # pluggy itself is the reference
    assert our_order == [impl.plugin_name for impl in table.implementations("on_replicate_outcome")]

    calls[:] = []
    first = table.locate_run(experiment=None, version=1)
    our_order, calls[:] = list(calls), []
    assert (first, our_order) == (relay.locate_run(experiment=None, version=1), calls)


def test_a_firstresult_hook_stops_at_the_first_result_that_is_not_none(dispatch):
    calls = []
    make = _ordered(calls)
    table, _ = _both([make("late", "late"), make("answer", "answer"), make("empty", None)], dispatch)
    assert table.locate_run(experiment=None, version=None) == "answer"
    assert calls == ["empty", "answer"]  # "late" never ran


def test_an_exception_propagates_at_once_and_later_implementations_do_not_run(dispatch):
    calls = []
    make = _ordered(calls)
    table, relay = _both([make("after", 1), make("raiser", raises=True), make("before", 2)], dispatch)
    with pytest.raises(Boom, match="raiser raised"):
        table.on_replicate_outcome(experiment=None, run=None, outcome=None)
    ours, calls[:] = list(calls), []
    with pytest.raises(Boom, match="raiser raised"):
        relay.on_replicate_outcome(experiment=None, run=None, outcome=None)
    assert ours == calls == ["before", "raiser"]


def test_each_implementation_gets_the_arguments_it_asks_for(dispatch):
    seen = []

    class Nothing:
        @hookimpl
        def on_condition_complete(self):
            seen.append(())

    class One:
        @hookimpl
        def on_condition_complete(self, condition):
            seen.append((condition,))

    class Many:
        @hookimpl
        def on_condition_complete(self, metrics, run, condition):
            seen.append((metrics, run, condition))

    table, _ = _both([Nothing(), One(), Many()], dispatch)
    result = table.on_condition_complete(experiment="e", run="r", condition="c", metrics="m", errors={})
    assert result == []
    assert seen == [("m", "r", "c"), ("c",), ()]


def test_a_hook_with_a_wrapper_goes_through_pluggy_in_both_modes(dispatch):
    order = []

    class Plain:
        def __init__(self, name):
            self.plugin_name = name

        @hookimpl
        def on_replicate_outcome(self):
            order.append(self.plugin_name)

    class Wrapping:
        @hookimpl(wrapper=True)
        def on_replicate_outcome(self):
            order.append("before")
            result = yield
            order.append("after")
            return result

    table, _ = _both([Plain("one"), Wrapping(), Plain("two")], dispatch)
    assert isinstance(table.on_replicate_outcome, pluggy.HookCaller)
    assert table.on_replicate_outcome(experiment=None, run=None, outcome=None) == []
    assert order == ["before", "two", "one", "after"]


def test_several_implementations_of_a_per_replicate_hook_all_see_every_outcome(dispatch):
    class Count:
        def __init__(self, name):
            self.plugin_name = name
            self.outcomes = []

        @hookimpl
        def on_replicate_outcome(self, outcome):
            self.outcomes.append((outcome.condition, outcome.replicate))

    counters = [Count("one"), Count("two")]
    result = Experiment(numbers(), Pipeline([total()]), plugins=counters, replicates=3).run()
    assert result.ok
    assert counters[0].outcomes == counters[1].outcomes == [("baseline", 0), ("baseline", 1), ("baseline", 2)]
