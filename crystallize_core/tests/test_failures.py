"""A plugin that raises: clear error, after_run still sees the run."""

import pytest
from core_helpers import numbers, total

from crystallize import Experiment, Pipeline, hookimpl


class Boom:
    plugin_name = "boom"

    def __init__(self, hook):
        self.hook = hook
        self.after = []

    @hookimpl
    def before_run(self, run):
        if self.hook == "before_run":
            raise RuntimeError("before_run exploded")

    @hookimpl
    def on_replicate_outcome(self, outcome):
        if self.hook == "on_replicate_outcome":
            raise RuntimeError("on_replicate_outcome exploded")

    @hookimpl
    def after_run(self, run, result):
        self.after.append(run.status)


@pytest.mark.parametrize("hook", ["before_run", "on_replicate_outcome"])
def test_plugin_errors_propagate_naming_the_plugin_and_after_run_sees_failed(hook):
    boom = Boom(hook)
    exp = Experiment(numbers(), Pipeline([total()]), plugins=[boom], replicates=2)
    with pytest.raises(RuntimeError, match=f"{hook} exploded") as info:
        exp.run()
    assert any("raised by plugin 'boom'" in note for note in getattr(info.value, "__notes__", []))
    assert boom.after == ["failed"]


def test_keyboard_interrupt_marks_the_run_interrupted():
    from crystallize import PipelineStep

    class Interrupt(PipelineStep):
        def __call__(self, data, ctx):
            raise KeyboardInterrupt

    boom = Boom(None)
    exp = Experiment(numbers(), Pipeline([Interrupt()]), plugins=[boom])
    with pytest.raises(KeyboardInterrupt) as info:
        exp.run()
    assert boom.after == ["interrupted"]
    assert not getattr(info.value, "__notes__", None)  # not blamed on the executor plugin
