"""The user guide's consumer: reads experiment 1's data.json, one per replicate.

``python experiment2.py`` after ``python experiment1.py``. The replicate
count comes from experiment 1's metadata.json; asking for another count is
an error that names both.
"""

from experiment1 import exp1

from crystallize import Experiment, pipeline_step
from crystallize.pipelines.pipeline import Pipeline


@pipeline_step()
def load_json(data, ctx):
    import json

    model = json.loads(data.read_text())
    ctx.metrics.add("mean", model["mean"])
    return model


exp2 = Experiment(
    datasource=exp1.artifact_datasource(step="ModelStep", name="data.json"),
    pipeline=Pipeline([load_json()]),
)
exp2.validate()

if __name__ == "__main__":
    result = exp2.run()  # replicates set from metadata
    print(f"experiment 2 read {result.run.replicates} replicates: means {result.metrics.baseline.metrics['mean']}")
    try:
        exp2.run(replicates=5)
    except ValueError as error:
        print(f"as documented, a different count is refused: {error}")
