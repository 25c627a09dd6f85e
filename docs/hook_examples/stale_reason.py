"""Make a graph rerun an experiment whose input file changed since its last run."""

import hashlib
from pathlib import Path

from crystallize import Experiment, ExperimentGraph, data_source, pipeline_step
from crystallize.plugin import hookimpl
from crystallize.testing import MemoryStorage


class InputChanged:
    plugin_name = "input-changed"

    def __init__(self, path):
        self.path = path
        self.digests = {}  # {experiment key: digest of the file when last asked}

    @hookimpl
    def stale_reason(self, experiment):
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        before, self.digests[experiment.key] = self.digests.get(experiment.key), digest
        return f"{self.path.name} changed" if before not in (None, digest) else None


data = Path("data.csv")
data.write_text("1,2,3")


@data_source
def rows(ctx):
    return [int(x) for x in data.read_text().split(",")]


@pipeline_step()
def total(data, ctx):
    ctx.metrics.add("total", sum(data))
    return data


experiment = Experiment(rows(), [total()], plugins=[MemoryStorage(), InputChanged(data)], name="totals")
graph = ExperimentGraph(experiment)
graph.run(strategy="resume")
graph.run(strategy="resume")  # nothing changed: the stored run is reused
assert graph.reasons == {}
data.write_text("1,2,3,4")
results = graph.run(strategy="resume")
assert graph.reasons == {"totals": ["data.csv changed"]}
assert results["totals"].metrics.baseline.metrics == {"total": [10]}
