"""Resumed replicates appear in Result exactly as fresh ones: values, series, gaps, seeds, verdicts."""

from __future__ import annotations

import json
import random

from crystallize import Experiment, Hypothesis, Pipeline, SeedPlugin, Treatment, data_source, pipeline_step
from crystallize.plugins.plugins import ArtifactPlugin

FAILING: set[tuple[str, int]] = set()  # (condition, replicate) pairs that raise in the next run


@data_source
def draw(ctx):
    return random.random()


@pipeline_step()
def train(data, ctx, shift=0.0):
    if (ctx["condition"], ctx["replicate"]) in FAILING:
        raise RuntimeError("planned failure")
    for epoch in range(3):
        ctx.metrics.add("loss", data + shift + epoch)
    ctx.metrics.add("accuracy", data + shift)
    return data


def experiment(root):
    return Experiment(
        draw(),
        Pipeline([train()]),
        name="stats",
        plugins=[ArtifactPlugin(root_dir=root), SeedPlugin(seed=11)],
        treatments=[Treatment("up", {"shift": 0.5}), Treatment("down", {"shift": -0.25})],
        hypotheses=[Hypothesis(metrics="accuracy"), Hypothesis(metrics="loss", reduce="last", name="loss")],
        replicates=5,
    )


def conditions(result):
    return {"baseline": result.metrics.baseline, **result.metrics.treatments}


def test_resumed_replicates_and_conditions_equal_an_uninterrupted_run(tmp_path):
    fresh = experiment(tmp_path / "fresh").run()
    assert fresh.ok

    FAILING.update({("up", 2), ("baseline", 0)})
    try:
        broken = experiment(tmp_path / "resumed").run()
    finally:
        FAILING.clear()
    assert set(broken.errors) == {"up", "baseline"}
    assert broken.metrics.treatments["up"].missing == (2,)
    assert broken.metrics.treatments["up"].by_replicate["accuracy"][2] is None
    run_dir = tmp_path / "resumed" / "stats" / "v0"
    assert (run_dir / "down" / ".crystallize_complete").exists()  # complete: resumed from results.json
    assert not (run_dir / "up" / ".crystallize_complete").exists()  # 4 replicates resumed from the journal

    resumed = experiment(tmp_path / "resumed").run(strategy="resume")
    assert resumed.ok
    assert conditions(resumed) == conditions(fresh)
    assert all(seed is not None for m in conditions(resumed).values() for seed in m.seeds)
    assert resumed.metrics.hypotheses == fresh.metrics.hypotheses
    verdict = resumed.get_hypothesis("accuracy").verdict("up")
    assert verdict["n_baseline"] == verdict["n_treatment"] == 5 and verdict["gaps"] == {"baseline": [], "treatment": []}

    again = experiment(tmp_path / "resumed").run(strategy="resume")  # every condition complete now
    assert conditions(again) == conditions(fresh)
    assert again.metrics.hypotheses == fresh.metrics.hypotheses


def test_results_json_keeps_each_replicates_seed(tmp_path):
    result = experiment(tmp_path).run()
    document = json.loads((tmp_path / "stats" / "v0" / "up" / "results.json").read_text())
    assert document["seeds"] == {str(r): seed for r, seed in enumerate(result.metrics.treatments["up"].seeds)}
    assert document["replicate_metrics"]["1"]["loss"] == result.metrics.treatments["up"].by_replicate["loss"][1]
