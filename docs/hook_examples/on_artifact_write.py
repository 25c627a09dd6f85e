"""Keep an index of every artifact the run's store committed: where it went and its checksum."""

from crystallize import Artifact, Experiment, data_source, pipeline_step
from crystallize.plugin import hookimpl
from crystallize.testing import MemoryStorage


class ArtifactIndex:
    plugin_name = "artifact-index"

    def __init__(self):
        self.entries = []

    @hookimpl
    def on_artifact_write(self, record):
        self.entries.append((record.path, record.size, record.digest[:19]))  # "<algorithm>:" and 12 hex digits


@data_source
def numbers(ctx):
    return [1, 2, 3]


table = Artifact("table.csv")


@pipeline_step()
def save(data, ctx, table=table):
    table.write(",".join(map(str, data)).encode())
    return data


index = ArtifactIndex()
Experiment(numbers(), [save()], plugins=[MemoryStorage(), index], outputs=[table], replicates=2).run()
assert index.entries == [
    ("replicate_0/baseline/save/table.csv", 5, "sha256:8a6ae1512200"),  # MemoryStorage uses SHA-256
    ("replicate_1/baseline/save/table.csv", 5, "sha256:8a6ae1512200"),
]
