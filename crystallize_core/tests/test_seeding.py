import random

import pytest

from crystallize import Experiment, ParallelExecution, Pipeline, SeedPlugin, Treatment, data_source, pipeline_step
from crystallize._seeding import derive_seed
from crystallize.plugin import SEED_FACT


@data_source
def draw(ctx):
    return random.random()


@pipeline_step()
def record(data, ctx):
    ctx.metrics.add("draw", data)
    ctx.metrics.add("seed", ctx["seed_used"])
    return data


def run(plugins, treatments=(), replicates=4):
    exp = Experiment(draw(), Pipeline([record()]), plugins=plugins, treatments=list(treatments), replicates=replicates)
    return exp.run()


def test_seed_depends_only_on_base_condition_and_replicate():
    assert derive_seed(1, "baseline", 0) == derive_seed(1, "baseline", 0)
    assert len({derive_seed(1, c, r) for c in ("baseline", "t") for r in range(50)}) == 100
    assert derive_seed(1, "baseline", 0) != derive_seed(2, "baseline", 0)
    assert 0 <= derive_seed(7, "x", 3) < 2**32


def test_runs_are_reproducible_and_order_independent():
    t = [Treatment("t", {})]
    serial = run([SeedPlugin(seed=11)], t)
    again = run([SeedPlugin(seed=11)], t)
    assert serial.metrics == again.metrics
    assert serial.metrics.baseline.metrics["seed"] == [derive_seed(11, "baseline", r) for r in range(4)]
    # replicate 2 draws the same whether or not replicates 0-1 ran before it
    alone = Experiment(draw(), Pipeline([record()]), plugins=[SeedPlugin(seed=11)], replicates=4)
    assert alone.run().metrics.baseline.metrics["draw"][2] == serial.metrics.baseline.metrics["draw"][2]
    assert run([SeedPlugin(seed=12)], t).metrics != serial.metrics


def test_numpy_global_generator_is_seeded():
    np = pytest.importorskip("numpy")

    @data_source
    def np_draw(ctx):
        return float(np.random.random())

    exp = Experiment(np_draw(), Pipeline([record()]), plugins=[SeedPlugin(seed=3)], replicates=3)
    assert exp.run().metrics == exp.run().metrics


def test_threads_get_the_same_seeds_as_a_serial_run():
    @data_source
    def own(ctx):
        return random.Random(ctx["seed_used"]).random()  # threads share the global generator

    def exp(*plugins):
        return Experiment(
            own(),
            Pipeline([record()]),
            plugins=[SeedPlugin(seed=11), *plugins],
            treatments=[Treatment("t", {})],
            replicates=8,
        )

    assert exp(ParallelExecution(max_workers=3)).run().metrics == exp().run().metrics


def test_seed_fn_replaces_the_default_seeding():
    seen = []
    result = run([SeedPlugin(seed=5, seed_fn=seen.append)], replicates=2)
    assert seen == [derive_seed(5, "baseline", 0), derive_seed(5, "baseline", 1)]
    assert result.metrics.baseline.metrics["seed"] == seen


def test_without_a_seed_a_random_base_is_chosen_and_recorded():
    plugin = SeedPlugin()
    result = run([plugin], replicates=1)
    assert result.run.facts[SEED_FACT]["base"] == plugin.seed
    with pytest.raises(TypeError, match="seed must be an int"):
        SeedPlugin(seed="1")  # type: ignore[arg-type]
