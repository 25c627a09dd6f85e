from __future__ import annotations

import json
import random

from crystallize import Artifact, Experiment, Pipeline, PipelineStep, SeedPlugin, Treatment, data_source
from crystallize_artifacts import ArtifactPlugin


@data_source
def draws(ctx):
    return random.random()


class ModelStep(PipelineStep):
    """Writes a JSON artifact and records a metric, like the guide's step."""

    def __init__(self, out: Artifact, fail: tuple[str, int] | None = None):
        self.out = out
        self.fail = fail

    def __call__(self, data, ctx):
        if self.fail == (ctx["condition"], ctx["replicate"]):
            raise RuntimeError("planned failure")
        value = data * ctx.get("scale", 1.0)
        ctx.metrics.add("value", value)
        self.out.write(json.dumps({"value": value, "condition": ctx["condition"]}).encode())
        return value

    @property
    def params(self):
        return {}


def experiment(root, *, name="producer", replicates=3, versioned=False, fail=None, treatments=None, **plugin_kwargs):
    out = Artifact("data.json")
    return Experiment(
        draws(),
        Pipeline([ModelStep(out, fail)]),
        plugins=[SeedPlugin(seed=9), ArtifactPlugin(root_dir=root, versioned=versioned, **plugin_kwargs)],
        outputs=[out],
        name=name,
        treatments=[Treatment("double", {"scale": 2.0})] if treatments is None else treatments,
        replicates=replicates,
    )
