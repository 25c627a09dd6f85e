"""Fail a replicate as soon as a step returns NaN; the error names this plugin, not the step."""

import math

from crystallize import Experiment, Treatment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class NoNaN:
    plugin_name = "no-nan"

    @hookimpl
    def after_step(self, step, data):
        if isinstance(data, float) and math.isnan(data):
            raise ValueError(f"step {step.step_name!r} returned NaN")


@data_source
def numbers(ctx):
    return [1.0, 2.0, 3.0]


@pipeline_step()
def mean(data, ctx, drop=0):
    kept = data[drop:]
    return sum(kept) / len(kept) if kept else math.nan


@pipeline_step()
def record(data, ctx):
    ctx.metrics.add("mean", data)
    return data


experiment = Experiment(
    numbers(), [mean(), record()], plugins=[NoNaN()], treatments=[Treatment("drop_all", {"drop": 3})], replicates=2
)
result = experiment.run()
assert result.metrics.baseline.metrics == {"mean": [2.0, 2.0]}
error = result.errors["drop_all"][0]
assert (error.plugin, error.hook, error.message) == ("no-nan", "after_step", "step 'mean' returned NaN")
