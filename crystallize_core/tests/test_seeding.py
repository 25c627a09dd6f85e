import random

import pytest

from crystallize import Experiment, ParallelExecution, Pipeline, SeedPlugin, Treatment, data_source, pipeline_step
from crystallize._seeding import derive_seed, paired_seed
from crystallize.plugin import SEED_FACT


@data_source
def draw(ctx):
    return random.random()


@pipeline_step()
def record(data, ctx):
    ctx.metrics.add("draw", data)
    ctx.metrics.add("seed", ctx["seed_used"])
    return data


@data_source
def own(ctx):
    return random.Random(ctx["seed_used"]).random()  # threads share the global generator


def run(plugins, treatments=(), replicates=4, source=draw):
    exp = Experiment(
        source(), Pipeline([record()]), plugins=plugins, treatments=list(treatments), replicates=replicates
    )
    return exp.run()


def test_seeds_are_crystallize_ml_s_and_the_same_in_every_condition():
    result = run([SeedPlugin(seed=11)], [Treatment("t", {})])
    expected = [(11 + r * 31337) % 2**32 for r in range(4)]  # crystallize-ml 0.27's derivation
    assert result.metrics.baseline.metrics["seed"] == expected == [paired_seed(11, r) for r in range(4)]
    assert result.metrics.treatments["t"].metrics["seed"] == expected
    # common random numbers: both conditions of a replicate draw the same
    assert result.metrics.baseline.metrics["draw"] == result.metrics.treatments["t"].metrics["draw"]
    assert result.run.facts[SEED_FACT] == {
        "base": 11,
        "derivation": "base + 31337 * replicate (mod 2**32), the same in every condition",
        "chosen": True,
    }


def test_per_condition_gives_independent_streams():
    result = run([SeedPlugin(seed=11, per_condition=True)], [Treatment("t", {})])
    assert result.metrics.baseline.metrics["seed"] == [derive_seed(11, "baseline", r) for r in range(4)]
    assert result.metrics.treatments["t"].metrics["seed"] == [derive_seed(11, "t", r) for r in range(4)]
    assert result.metrics.baseline.metrics["draw"] != result.metrics.treatments["t"].metrics["draw"]
    assert len({derive_seed(1, c, r) for c in ("baseline", "t") for r in range(50)}) == 100


def test_an_experiment_without_a_seed_plugin_gets_one():
    exp = Experiment(draw(), Pipeline([record()]), treatments=[Treatment("t", {})], replicates=3)
    result = exp.run()
    base = result.run.facts[SEED_FACT]["base"]
    assert result.metrics.baseline.metrics["seed"] == [paired_seed(base, r) for r in range(3)]
    assert result.metrics.treatments["t"].metrics["seed"] == result.metrics.baseline.metrics["seed"]
    # another experiment gets another random base, as in crystallize-ml
    other = Experiment(draw(), Pipeline([record()]), replicates=3).run()
    assert other.run.facts[SEED_FACT]["base"] != base


def test_auto_seed_false_without_a_seed_turns_seeding_off():
    @pipeline_step()
    def peek(data, ctx):
        ctx.metrics.add("has_seed", "seed_used" in ctx)
        return data

    random.seed(5)
    expected = random.random()
    random.seed(5)
    exp = Experiment(draw(), Pipeline([peek()]), plugins=[SeedPlugin(auto_seed=False)], replicates=2)
    result = exp.run()
    assert result.metrics.baseline.metrics["has_seed"] == [False, False]
    assert SEED_FACT not in result.run.facts
    assert result.metrics.baseline.seeds == [None, None]
    assert random.random() != expected  # the generator was left alone: replicate 0 drew `expected`


def test_auto_seed_false_with_a_seed_seeds_every_replicate_with_it():
    result = run([SeedPlugin(seed=42, auto_seed=False)], [Treatment("t", {})], replicates=3)
    assert result.metrics.baseline.metrics["seed"] == [42, 42, 42] == result.metrics.treatments["t"].metrics["seed"]
    assert len(set(result.metrics.baseline.metrics["draw"])) == 1


def test_the_environment_can_leave_the_built_in_seeding_out(monkeypatch):
    monkeypatch.setenv("CRYSTALLIZE_DISABLE_PLUGINS", "seed")
    exp = Experiment(draw(), Pipeline([record()]), replicates=1)
    assert exp.get_plugin(SeedPlugin) is None
    error = exp.run().errors["baseline"][0]
    assert error.type_name == "KeyError" and "'seed_used' is not in the context" in error.message


def test_seed_fn_replaces_the_default_seeding():
    seen = []
    result = run([SeedPlugin(seed=5, seed_fn=seen.append)], replicates=2)
    assert seen == [5, 5 + 31337]
    assert result.metrics.baseline.metrics["seed"] == seen


def test_numpy_global_generator_is_seeded():
    np = pytest.importorskip("numpy")

    @data_source
    def np_draw(ctx):
        return float(np.random.random())

    exp = Experiment(np_draw(), Pipeline([record()]), plugins=[SeedPlugin(seed=3)], replicates=3)
    assert exp.run().metrics == exp.run().metrics


@pytest.mark.parametrize("per_condition", [False, True])
@pytest.mark.parametrize("engine", ["thread", "process"])
def test_every_engine_gives_the_seeds_and_draws_of_a_serial_run(engine, per_condition):
    def exp(*plugins):
        return Experiment(
            own(),
            Pipeline([record()]),
            plugins=[SeedPlugin(seed=11, per_condition=per_condition), *plugins],
            treatments=[Treatment("t", {})],
            replicates=6,
        )

    serial = exp().run()
    parallel = exp(ParallelExecution(max_workers=2, executor_type=engine)).run()
    assert parallel.ok and parallel.metrics == serial.metrics
    assert parallel.metrics.baseline.seeds == serial.metrics.baseline.seeds
    paired = parallel.metrics.baseline.seeds == parallel.metrics.treatments["t"].seeds
    assert paired is not per_condition


def test_the_default_plugin_s_random_base_reaches_worker_processes():
    exp = Experiment(draw(), Pipeline([record()]), treatments=[Treatment("t", {})], replicates=4)
    exp.plugins.append(ParallelExecution(max_workers=2, executor_type="process"))
    result = exp.run()
    base = result.run.facts[SEED_FACT]["base"]
    assert result.metrics.baseline.metrics["seed"] == [paired_seed(base, r) for r in range(4)]
    assert result.metrics.baseline.metrics["draw"] == result.metrics.treatments["t"].metrics["draw"]
    random.seed(paired_seed(base, 2))
    assert result.metrics.baseline.metrics["draw"][2] == random.random()


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="seed must be an int"):
        SeedPlugin(seed="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="auto_seed and per_condition must be True or False"):
        SeedPlugin(auto_seed=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="auto_seed=False"):
        SeedPlugin(seed=1, auto_seed=False, per_condition=True)
    plugin = SeedPlugin()
    assert run([plugin], replicates=1).run.facts[SEED_FACT]["base"] == plugin.seed


SHARED = "executor_type='thread'"


@pytest.mark.parametrize(
    ("plugins", "warned"),
    [
        ([SeedPlugin(seed=5), ParallelExecution(max_workers=2)], True),
        ([SeedPlugin(), ParallelExecution(max_workers=2)], False),  # a random base: nobody expects the same draws
        ([SeedPlugin(seed=5), ParallelExecution(max_workers=1)], False),  # one thread at a time
        ([SeedPlugin(seed=5), ParallelExecution(max_workers=2, executor_type="process")], False),
        ([SeedPlugin(seed=5)], False),
    ],
    ids=["chosen-seed-threads", "random-seed", "one-thread", "processes", "serial"],
)
def test_a_chosen_seed_under_threads_warns_that_the_global_generators_are_shared(plugins, warned, caplog):
    with caplog.at_level("WARNING", logger="crystallize"):
        run(plugins, replicates=3)
    said = [r.getMessage() for r in caplog.records if SHARED in r.getMessage()]
    assert len(said) == (1 if warned else 0)
    if warned:
        assert "seed 5 " in said[0] and "random.Random(ctx['seed_used'])" in said[0]


def test_the_seed_fact_says_whether_the_code_chose_the_base():
    assert run([SeedPlugin()]).run.facts[SEED_FACT]["chosen"] is False
    assert run([SeedPlugin(seed=3)]).run.facts[SEED_FACT]["chosen"] is True


def test_direct_seeding_draws_what_random_seed_draws(monkeypatch):
    import random

    from crystallize._seeding import _seed_random

    random.seed(2024)
    expected = [random.random(), random.gauss(0, 1), random.randint(0, 10**9)]
    random.gauss(0, 1)  # leaves a cached gauss value that seeding must clear
    _seed_random(2024)
    assert [random.random(), random.gauss(0, 1), random.randint(0, 10**9)] == expected

    calls = []
    monkeypatch.setattr(random, "seed", calls.append)  # a library replaced random.seed: it is respected
    _seed_random(7)
    assert calls == [7]
