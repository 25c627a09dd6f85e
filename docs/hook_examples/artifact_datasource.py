"""Let one experiment read what another wrote, from a storage plugin that keeps runs in memory."""

from crystallize import Artifact, DataSource, Experiment, data_source, pipeline_step
from crystallize.plugin import hookimpl
from crystallize.testing import MemoryStorage


class MemoryArtifacts(DataSource):
    """Each replicate gets the bytes the producer's replicate of the same number wrote (baseline)."""

    def __init__(self, storage, producer, step, name):
        self.storage, self.producer, self.step, self.name = storage, producer, step, name

    def fetch(self, ctx):
        versions = self.storage.runs[self.producer.key]
        stored = versions[max(versions)]
        return stored.artifacts[f"replicate_{ctx['replicate']}/baseline/{self.step}/{self.name}"]

    @property
    def params(self):
        return {"producer": self.producer.key, "step": self.step, "name": self.name}


class ChainedMemoryStorage(MemoryStorage):
    @hookimpl
    def artifact_datasource(self, experiment, step, name):
        return MemoryArtifacts(self, experiment, step, name)


@data_source
def numbers(ctx):
    return list(range(ctx["replicate"] + 1))


table = Artifact("table.csv")


@pipeline_step()
def save(data, ctx, table=table):
    table.write(",".join(map(str, data)).encode())
    return data


@pipeline_step()
def count(data, ctx):
    ctx.metrics.add("values", len(data.split(b",")))
    return data


storage = ChainedMemoryStorage()
producer = Experiment(numbers(), [save()], plugins=[storage], outputs=[table], name="producer", replicates=3)
producer.run()
consumer = Experiment(producer.artifact_datasource(step="save", name="table.csv"), [count()], replicates=3)
assert consumer.run().metrics.baseline.metrics == {"values": [1, 2, 3]}
