"""Open earlier runs for reading: ``Experiment.locate_run`` asks the storage plugins."""

from crystallize import Experiment, data_source, pipeline_step
from crystallize.plugin import hookimpl
from crystallize.testing import MemoryStorage


class ScratchStorage:
    plugin_name = "scratch-storage"

    def __init__(self):
        self.memory = MemoryStorage()

    @hookimpl
    def open_store(self, experiment, run):
        return self.memory.open_store(experiment, run)

    @hookimpl
    def locate_run(self, experiment, version):
        return self.memory.locate_run(experiment, version)  # None when there is no such run


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def total(data, ctx):
    ctx.metrics.add("total", sum(data))
    return data


experiment = Experiment(numbers(), [total()], plugins=[ScratchStorage()], name="sums", replicates=2)
assert experiment.locate_run() is None  # nothing ran yet
experiment.run()
experiment.run()
latest = experiment.locate_run()
assert latest.location == "memory://sums/v1"
assert latest.completed_condition("baseline").metrics == {"total": [6, 6]}
assert experiment.locate_run(version=0).location == "memory://sums/v0"
