"""Give each replicate a random generator of its own, the same in every condition (paired draws)."""

import random

from crystallize import Experiment, Treatment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class ReplicateRandom:
    plugin_name = "replicate-random"

    @hookimpl
    def before_replicate(self, ctx):
        ctx["rng"] = random.Random(ctx["replicate"])  # safe under threads, unlike the global generator


@data_source
def noisy(ctx):
    return [ctx["rng"].gauss(0, 1) for _ in range(3)]


@pipeline_step()
def first(data, ctx, offset=0):
    ctx.metrics.add("first", data[0] + offset)
    return data


result = Experiment(
    noisy(), [first()], plugins=[ReplicateRandom()], treatments=[Treatment("plus_one", {"offset": 1})], replicates=3
).run()
baseline, treated = result.metrics.baseline.metrics["first"], result.metrics.treatments["plus_one"].metrics["first"]
assert [round(t - b, 9) for b, t in zip(baseline, treated)] == [1.0, 1.0, 1.0]
