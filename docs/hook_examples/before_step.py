"""Log each step as it starts, with its condition and replicate."""

from crystallize import Experiment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class StepLog:
    plugin_name = "step-log"

    def __init__(self):
        self.lines = []

    @hookimpl
    def before_step(self, step, ctx):
        self.lines.append(f"{ctx['condition']}/{ctx['replicate']}: {step.step_name}")


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def double(data, ctx):
    return [2 * x for x in data]


@pipeline_step()
def total(data, ctx):
    ctx.metrics.add("total", sum(data))
    return data


log = StepLog()
Experiment(numbers(), [double(), total()], plugins=[log], replicates=2).run()
assert log.lines == ["baseline/0: double", "baseline/0: total", "baseline/1: double", "baseline/1: total"]
