"""Each distribution installs and works on top of crystallize-core alone."""

from __future__ import annotations

import json
import textwrap

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EXPERIMENT = textwrap.dedent(
    """
    import json, random, warnings
    from crystallize import Experiment, Hypothesis, Pipeline, SeedPlugin, Treatment, data_source, pipeline_step

    @data_source
    def source(ctx):
        return [random.random() for _ in range(10)]

    @pipeline_step()
    def score(data, ctx, boost=0.0):
        ctx.metrics.add("score", sum(data) + boost)
        return data

    exp = Experiment(
        source(), Pipeline([score()]), plugins=[SeedPlugin(seed=1)], replicates=6,
        treatments=[Treatment("boosted", {"boost": 5.0})], hypotheses=[Hypothesis(metrics="score")],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = exp.run(strategy=STRATEGY)
    print(json.dumps({
        "ok": result.ok,
        "best": result.metrics.hypotheses[0].ranking["best"],
        "p": result.metrics.hypotheses[0].results["boosted"]["p_value"],
        "n": len(result.metrics.baseline.metrics["score"]),
        "warnings": [str(w.message) for w in caught],
    }))
    """
)


def run_experiment(env, strategy="'rerun'"):
    return json.loads(env.run("-c", EXPERIMENT.replace("STRATEGY", strategy)).stdout)


def plugins(env):
    return {row["name"]: row for row in json.loads(env.run("-m", "crystallize", "plugins", "--json").stdout)}


def test_core_alone_then_each_plugin_alone(make_venv, tmp_path):
    env = make_venv("standalone")
    env.install("crystallize-core")

    summary = run_experiment(env)
    # with six replicates paired by their seeds, an exact sign-flip p-value is at least 2 / 2**6
    assert summary["ok"] and summary["best"] == "boosted" and summary["n"] == 6 and summary["p"] < 0.05
    assert list(plugins(env)) == ["serial-execution", "seed"]  # the built-ins
    missing = env.run("-c", "from crystallize.plugins.plugins import ArtifactPlugin", check=False)
    assert missing.returncode == 1 and "pip install crystallize-artifacts" in missing.stderr
    resume = env.run("-c", EXPERIMENT.replace("STRATEGY", "'resume'"), check=False)
    assert resume.returncode == 1 and "crystallize-resume does this" in resume.stderr

    env.install("crystallize-metadata")
    assert run_experiment(env)["ok"]
    assert set(plugins(env)) == {"serial-execution", "seed", "metadata"}
    env.uninstall("crystallize-metadata")

    env.install("crystallize-resume")
    summary = run_experiment(env, "'resume'")
    assert summary["ok"] and any("no plugin stores its runs" in w for w in summary["warnings"])
    assert set(plugins(env)) == {"serial-execution", "seed", "resume"}


def test_artifacts_pulls_in_metadata_and_resume(make_venv):
    env = make_venv("pulls")
    env.install("crystallize-artifacts")
    # Storage is a provider passed in plugins=[...]: installing it adds the verify command, no plugin.
    assert set(plugins(env)) == {"serial-execution", "seed", "metadata", "resume"}
    versions = {row["distribution"]: row["version"] for row in plugins(env).values()}
    assert versions == {"crystallize-core": "0.1.0", "crystallize-metadata": "0.1.0", "crystallize-resume": "0.1.0"}
    usage = env.run("-m", "crystallize", "--help").stdout
    assert "verify" in usage


def test_the_progress_extra_brings_bars_that_stay_out_of_pipes(make_venv):
    env = make_venv("progress-extra")
    env.install("crystallize-artifacts[progress]")
    assert set(plugins(env)) == {"serial-execution", "seed", "metadata", "resume", "progress"}
    assert plugins(env)["progress"]["distribution"] == "crystallize-progress"

    quiet = env.run("-c", EXPERIMENT.replace("STRATEGY", "'rerun'"))  # stderr is a pipe: no bars
    assert json.loads(quiet.stdout)["ok"] and quiet.stderr == ""
    force = "import os; os.environ['CRYSTALLIZE_PROGRESS'] = '1'\n"  # Venv.run drops CRYSTALLIZE_* variables
    forced = env.run("-c", force + EXPERIMENT.replace("STRATEGY", "'rerun'"))
    assert "12/12  12 done" in forced.stderr  # asked for: the run's summary row
