"""The user guide's producer: a class step writes data.json per replicate.

Run it first: ``python experiment1.py``. It stores its artifacts under
``artifacts/<id>/v<N>/`` (the experiment is unnamed, so it is stored under
the stable id of its pipeline), then ``experiment2.py`` reads them.
"""

import json
import random

from crystallize import Artifact, Experiment, Pipeline, SeedPlugin, data_source
from crystallize.pipelines.pipeline_step import PipelineStep
from crystallize.plugins.plugins import ArtifactPlugin


@data_source
def my_source(ctx):
    return [random.gauss(0, 1) for _ in range(100)]


class ModelStep(PipelineStep):
    def __init__(self, out: Artifact):
        self.out = out

    def __call__(self, data, ctx):
        model = {"mean": sum(data) / len(data), "n": len(data), "replicate": ctx["replicate"]}
        self.out.write(json.dumps(model).encode())
        ctx.metrics.add("mean", model["mean"])
        return model

    @property
    def params(self):
        return {}


out = Artifact("data.json")
exp1 = Experiment(
    datasource=my_source(),
    pipeline=Pipeline([ModelStep(out)]),
    plugins=[ArtifactPlugin(root_dir="artifacts", versioned=True), SeedPlugin(seed=7)],
    outputs=[out],
)
exp1.validate()  # optional

if __name__ == "__main__":
    result = exp1.run(replicates=2)
    print(f"experiment 1 ({exp1.id}) wrote v{result.run.version}: means {result.metrics.baseline.metrics['mean']}")
