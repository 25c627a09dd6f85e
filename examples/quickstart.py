"""Crystallize in one file: treatments, replicates, artifacts, hypotheses, resume, chaining.

    python examples/quickstart.py [--root DIR]

1. ``fit`` trains a tiny linear model by gradient descent under three
   learning rates (the baseline and two treatments), 8 replicates each, and
   stores every model as an artifact.
2. A hypothesis asks which learning rate beats the baseline's error.
3. Running again with ``strategy="resume"`` does no work: everything is complete.
4. ``evaluate`` reads the stored models back (one file per replicate and
   condition) and scores them on fresh data.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time

from crystallize import (
    Artifact,
    Experiment,
    ExperimentGraph,
    Pipeline,
    PipelineStep,
    SeedPlugin,
    Treatment,
    data_source,
    hypothesis,
    pipeline_step,
)
from crystallize_artifacts import ArtifactPlugin


@data_source
def points(ctx, n=200, slope=3.0, noise=0.5):
    """Noisy samples of y = slope * x."""
    xs = [random.uniform(-1, 1) for _ in range(n)]
    return [(x, slope * x + random.gauss(0, noise)) for x in xs]


class Fit(PipelineStep):
    """Gradient descent on y = w * x; stores the model, records the error."""

    def __init__(self, model: Artifact, epochs: int = 30):
        self.model = model
        self.epochs = epochs

    def __call__(self, data, ctx):
        lr = ctx.get("lr", 0.05)
        w = 0.0
        for _ in range(self.epochs):
            grad = sum(2 * (w * x - y) * x for x, y in data) / len(data)
            w -= lr * grad
        mse = sum((w * x - y) ** 2 for x, y in data) / len(data)
        ctx.metrics.add("train_mse", mse)
        self.model.write({"w": w, "lr": lr})
        return data


@pipeline_step()
def evaluate(path, ctx, n=200):
    """Score a stored model on fresh data."""
    model = json.loads(path.read_text())
    test = [(x, 3.0 * x) for x in (random.uniform(-1, 1) for _ in range(n))]
    ctx.metrics.add("test_mse", sum((model["w"] * x - y) ** 2 for x, y in test) / n)
    return model


@hypothesis(metrics="train_mse", alternative="less")
def lower_error(verdict):
    """Rank treatments by how surely they lower the error (one-sided; paired when seeds are shared)."""
    return verdict["p_value"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="artifact root (default: a temporary folder)")
    args = parser.parse_args()
    root = args.root or tempfile.mkdtemp(prefix="crystallize-quickstart-")

    model = Artifact("model.json", writer=lambda m: json.dumps(m).encode())
    train = Experiment(
        datasource=points(),
        pipeline=Pipeline([Fit(model)]),
        plugins=[ArtifactPlugin(root_dir=root, versioned=True), SeedPlugin(seed=1234)],
        outputs=[model],
        name="train",
        treatments=[Treatment("lr_0.2", {"lr": 0.2}), Treatment("lr_0.01", {"lr": 0.01})],
        hypotheses=[lower_error],
        replicates=8,
    )
    started = time.perf_counter()
    result = train.run()
    print(f"trained {len(result.artifacts)} models in {time.perf_counter() - started:.2f}s -> {result.run.location}")
    for name in ("baseline", *result.metrics.treatments):
        errors = result.metrics.condition(name).metrics["train_mse"]
        print(f"  {name:>8}: mean train MSE {sum(errors) / len(errors):.4f} over {len(errors)} replicates")
    verified = result.get_hypothesis("lower_error")
    for name, _ in verified.ranking["ranked"]:
        v = verified.verdict(name)
        high = v["ci"][1]
        print(
            f"  {name:>8}: {v['test']} test, MSE change {v['mean_difference']:+.4f} (95% CI up to {high:+.4f}), "
            f"p={v['p_value']:.4f}, Holm-adjusted {v['adjusted_p_value']:.4f}"
        )
    print(f"  best learning rate vs the baseline: {verified.ranking['best']}")

    started = time.perf_counter()
    again = train.run(strategy="resume")
    assert again.artifacts == [] and again.metrics == result.metrics
    print(f"resume found everything complete in {time.perf_counter() - started:.3f}s (nothing reran)")

    score = Experiment(
        datasource=train.artifact_datasource(step="Fit", name="model.json"),
        pipeline=Pipeline([evaluate()]),
        plugins=[ArtifactPlugin(root_dir=root, versioned=True), SeedPlugin(seed=99)],
        name="score",
    )
    results = ExperimentGraph(train, score).run(strategy="resume")
    scored = results["score"].metrics
    for name in ("baseline", *scored.treatments):
        values = scored.condition(name).metrics["test_mse"]
        print(f"  {name:>8}: mean test MSE {sum(values) / len(values):.4f} (read back from {len(values)} files)")
    print(f"artifacts are in {root}; check them with: crystallize verify {root}")


if __name__ == "__main__":
    main()
