"""An execution engine that runs the units last first, in this process: results do not depend on order."""

import random

from crystallize import Experiment, SeedPlugin, Treatment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class LastFirst:
    plugin_name = "last-first"

    @hookimpl
    def execute_replicates(self, batch):
        for condition, replicate in reversed(batch.units):
            batch.report(batch.run_here(condition, replicate))  # report each outcome as it arrives
        return True  # every unit was reported


@data_source
def noise(ctx):
    return [random.random() for _ in range(5)]  # seeded per replicate by SeedPlugin


@pipeline_step()
def mean(data, ctx, shift=0.0):
    ctx.metrics.add("mean", sum(data) / len(data) + shift)
    return data


def experiment(*engine):
    shifted = Treatment("shifted", {"shift": 1.0})
    return Experiment(noise(), [mean()], plugins=[SeedPlugin(seed=7), *engine], treatments=[shifted], replicates=4)


serial, last_first = experiment().run(), experiment(LastFirst()).run()
assert last_first.metrics.baseline.metrics == serial.metrics.baseline.metrics  # same numbers, replicate order
assert last_first.metrics.treatments["shifted"].metrics == serial.metrics.treatments["shifted"].metrics
