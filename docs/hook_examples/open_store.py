"""Keep scratch experiments in memory, and leave every other experiment to the next storage plugin."""

from crystallize import Artifact, Experiment, data_source, pipeline_step
from crystallize.plugin import hookimpl
from crystallize.testing import MemoryStorage


class ScratchStorage:
    plugin_name = "scratch-storage"

    def __init__(self):
        self.memory = MemoryStorage()  # a complete storage plugin, whose stores we hand out

    @hookimpl
    def open_store(self, experiment, run):
        if not (experiment.name or "").startswith("scratch-"):
            return None  # not ours
        return self.memory.open_store(experiment, run)


@data_source
def numbers(ctx):
    return [1, 2, 3]


table = Artifact("table.csv")


@pipeline_step()
def save(data, ctx, table=table):
    table.write(",".join(map(str, data)).encode())
    return data


storage = ScratchStorage()
result = Experiment(numbers(), [save()], plugins=[storage], outputs=[table], name="scratch-table").run()
assert result.run.store.location == "memory://scratch-table/v0"
assert list(storage.memory.runs["scratch-table"][0].artifacts) == ["replicate_0/baseline/save/table.csv"]
