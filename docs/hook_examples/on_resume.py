"""Reuse metrics computed elsewhere: conditions a results cache already holds are not run again."""

from crystallize import Experiment, Treatment, data_source, pipeline_step
from crystallize.plugin import CompletedWork, hookimpl
from crystallize.testing import MemoryStorage


class ResultsCache:
    plugin_name = "results-cache"

    def __init__(self, known):
        self.known = known  # {condition: {metric: [one value per replicate]}}

    @hookimpl
    def on_resume(self, run):
        complete = {
            condition: metrics
            for condition, metrics in self.known.items()
            if condition in run.conditions and all(len(values) == run.replicates for values in metrics.values())
        }
        return CompletedWork(conditions=complete)


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def total(data, ctx, scale=1):
    print("computing", ctx["condition"], ctx["replicate"])
    ctx.metrics.add("total", sum(data) * scale)
    return data


cache = ResultsCache({"baseline": {"total": [6, 6]}})
experiment = Experiment(
    numbers(),
    [total()],
    plugins=[MemoryStorage(), cache],
    treatments=[Treatment("double", {"scale": 2})],
    replicates=2,
)
result = experiment.run(strategy="resume")  # computes only the "double" condition
assert result.metrics.baseline.metrics == {"total": [6, 6]}
assert result.metrics.treatments["double"].metrics == {"total": [12, 12]}
assert list(result.run.completed.conditions) == ["baseline"]
