"""Summarise each condition as soon as its last replicate is in."""

from statistics import mean

from crystallize import Experiment, Treatment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class ConditionSummary:
    plugin_name = "condition-summary"

    def __init__(self):
        self.lines = []

    @hookimpl
    def on_condition_complete(self, condition, metrics, errors):
        self.lines.append(f"{condition}: mean total {mean(metrics['total']):g}, {len(errors)} failed")


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def total(data, ctx, scale=1):
    ctx.metrics.add("total", sum(data) * scale * (ctx["replicate"] + 1))
    return data


summary = ConditionSummary()
experiment = Experiment(
    numbers(), [total()], plugins=[summary], treatments=[Treatment("double", {"scale": 2})], replicates=3
)
experiment.run()
assert summary.lines == ["baseline: mean total 12, 0 failed", "double: mean total 24, 0 failed"]
