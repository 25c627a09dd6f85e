"""A resumed run draws what one uninterrupted run would have, even with a random base seed."""

from __future__ import annotations

import random

import pytest

from crystallize import Experiment, Pipeline, SeedPlugin, Treatment, data_source, pipeline_step
from crystallize_artifacts import ArtifactPlugin

#: where the next run is interrupted, as Ctrl-C would (a module global: not part of the identity)
STOP = {"at": None}


@data_source
def draw(ctx):
    return random.random()


@pipeline_step()
def record(data, ctx):
    if (ctx["condition"], ctx["replicate"]) == STOP["at"]:
        raise KeyboardInterrupt
    ctx.metrics.add("draw", data)
    return data


def build(root, *plugins):
    return Experiment(
        draw(),
        Pipeline([record()]),
        plugins=[ArtifactPlugin(root_dir=root), *plugins],
        name="seeded",
        treatments=[Treatment("t", {})],
        replicates=5,
    )


@pytest.mark.parametrize("passed", [False, True], ids=["built-in", "passed"])
def test_a_resumed_run_adopts_the_random_base_of_the_run_it_continues(tmp_path, passed):
    interrupted = build(tmp_path, *([SeedPlugin()] if passed else []))
    STOP["at"] = ("t", 2)
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupted.run()
    finally:
        STOP["at"] = None
    first_base = interrupted.get_plugin(SeedPlugin).seed

    resumed = build(tmp_path, *([SeedPlugin()] if passed else []))
    assert resumed.get_plugin(SeedPlugin).seed != first_base  # a new random base...
    result = resumed.run(strategy="resume")
    seeds = [(first_base + r * 31337) % 2**32 for r in range(5)]  # ...gives way to the recorded one
    assert result.metrics.baseline.seeds == result.metrics.treatments["t"].seeds == seeds
    assert result.metrics.baseline.metrics["draw"] == result.metrics.treatments["t"].metrics["draw"]


def test_a_chosen_seed_is_kept_when_resuming(tmp_path):
    build(tmp_path, SeedPlugin(seed=1)).run()
    STOP["at"] = None
    result = build(tmp_path, SeedPlugin(seed=1)).run(strategy="resume")
    assert result.metrics.baseline.seeds == [(1 + r * 31337) % 2**32 for r in range(5)]
