"""Every sample of the "Saving Artifacts" guide, as written, after `pip install crystallize-artifacts`."""

from __future__ import annotations

import importlib
import json
import textwrap

import pytest

import crystallize

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# The user defines my_source; everything after it is the guide's text.
MY_SOURCE = textwrap.dedent(
    """
    from crystallize import data_source

    @data_source
    def my_source(ctx):
        return {"replicate": ctx["replicate"]}
    """
)

SAMPLE_1 = textwrap.dedent(
    """
    from crystallize import Experiment, Pipeline, Artifact
    from crystallize.pipelines.pipeline_step import PipelineStep
    from crystallize.plugins.plugins import ArtifactPlugin
    class ModelStep(PipelineStep):
        def __init__(self, out: Artifact):
            self.out = out
        def __call__(self, data, ctx):
            self.out.write(b"binary data")
            return data
        @property
        def params(self):
            return {}
    out = Artifact("model.bin")
    exp = Experiment(
        datasource=my_source(),
        pipeline=Pipeline([ModelStep(out)]),
        plugins=[ArtifactPlugin(root_dir="artifacts", versioned=True)],
        outputs=[out],
    )
    exp.validate() # optional
    exp.run()
    """
)

# experiment1.py: the guide's producer, writing the data.json that experiment2 reads.
EXPERIMENT_1 = MY_SOURCE + textwrap.dedent(
    """
        import json
        from crystallize import Experiment, Pipeline, Artifact
        from crystallize.pipelines.pipeline_step import PipelineStep
        from crystallize.plugins.plugins import ArtifactPlugin
        class ModelStep(PipelineStep):
            def __init__(self, out: Artifact):
                self.out = out
            def __call__(self, data, ctx):
                self.out.write(json.dumps({"replicate": ctx["replicate"]}).encode())
                return data
            @property
            def params(self):
                return {}
        out = Artifact("data.json")
        exp1 = Experiment(
            datasource=my_source(),
            pipeline=Pipeline([ModelStep(out)]),
            plugins=[ArtifactPlugin(root_dir="artifacts", versioned=True)],
            outputs=[out],
        )
        exp1.run(replicates=2)
        """
)

EXPERIMENT_2 = textwrap.dedent(
    """
    from pathlib import Path
    # experiment2.py
    from experiment1 import exp1
    from crystallize import Experiment, pipeline_step
    from crystallize.pipelines.pipeline import Pipeline
    @pipeline_step()
    def load_json(data, ctx):
        import json
        return json.loads(data.read_text())
    exp2 = Experiment(
        datasource=exp1.artifact_datasource(step="ModelStep", name="data.json"),
        pipeline=Pipeline([load_json()]),
    )
    exp2.validate()
    exp2.run() # replicates set from metadata
    """
)

CSV_SAMPLE = textwrap.dedent(
    """
    @pipeline_step()
    def load_csv(data, ctx):
        import pandas as pd
        return pd.read_csv(data)
    exp_csv = Experiment(
        datasource=exp1.artifact_datasource(step="ModelStep", name="data.csv"),
        pipeline=Pipeline([load_csv()]),
    )
    """
)

# experiment1.py runs exp1 when imported, so check metadata with its definitions alone.
REQUIRE_METADATA = textwrap.dedent(
    """
    from producer import exp1
    try:
        exp1.artifact_datasource(step="ModelStep", name="data.json", require_metadata=True).resolve()
        print("metadata present")
    except FileNotFoundError as error:
        print("MISSING:", error)
    """
)

RESUME = textwrap.dedent(
    """
    import json
    from experiment1 import exp1
    from experiment2 import exp2
    from crystallize import ExperimentGraph
    exp1.name, exp2.name = "exp1", "exp2"
    first = exp1.run(strategy="resume")
    again = exp1.run(strategy="resume")
    results = ExperimentGraph.from_experiments([exp1, exp2]).run(strategy="resume")
    print(json.dumps({
        "again_artifacts": len(again.artifacts),
        "again_metrics": again.metrics.baseline.metrics == first.metrics.baseline.metrics,
        "graph": sorted(results),
        "exp2_replicates": results["exp2"].run.replicates,
    }))
    """
)


@pytest.fixture(scope="module")
def guide_env(make_venv):
    env = make_venv("guide")
    env.install("crystallize-artifacts")  # the guide's one command (local wheels stand in for PyPI)
    return env


def test_sample_1_class_step_writes_its_artifact(guide_env, tmp_path):
    guide_env.run("-c", MY_SOURCE + SAMPLE_1, cwd=tmp_path)
    (exp_dir,) = (tmp_path / "artifacts").iterdir()
    run_dir = exp_dir / "v0"
    assert (run_dir / "replicate_0" / "baseline" / "ModelStep" / "model.bin").read_bytes() == b"binary data"
    assert (run_dir / "baseline" / ".crystallize_complete").exists()
    meta = json.loads((run_dir / "metadata.json").read_bytes())
    assert meta["replicates"] == 1 and meta["id"] == exp_dir.name and meta["name"] is None
    guide_env.run("-c", MY_SOURCE + SAMPLE_1, cwd=tmp_path)
    assert sorted(p.name for p in exp_dir.iterdir()) == ["v0", "v1"]  # versioned=True


def test_experiment2_loads_experiment1_artifacts_from_another_file(guide_env, tmp_path):
    (tmp_path / "experiment1.py").write_text(EXPERIMENT_1)
    (tmp_path / "experiment2.py").write_text(EXPERIMENT_2 + CSV_SAMPLE + "print('EXP2', exp2.id)\n")
    guide_env.run("experiment1.py", cwd=tmp_path)
    done = guide_env.run("experiment2.py", cwd=tmp_path)
    assert "EXP2" in done.stdout
    # experiment1 ran as a script (classes in __main__) and was imported by experiment2:
    # both found the same folder, so there is exactly one experiment folder.
    (exp_dir,) = (tmp_path / "artifacts").iterdir()
    assert sorted(p.name for p in exp_dir.iterdir()) == ["v0", "v1"]  # the import ran exp1 again

    mismatch = guide_env.run(
        "-c",
        EXPERIMENT_2.replace("exp2.run() # replicates set from metadata", "exp2.run(replicates=5)"),
        cwd=tmp_path,
        check=False,
    )
    assert mismatch.returncode == 1
    assert "run(replicates=5) disagrees with the datasource, which has 2 replicates" in mismatch.stderr

    (tmp_path / "producer.py").write_text(EXPERIMENT_1.replace("exp1.run(replicates=2)", ""))
    assert "metadata present" in guide_env.run("-c", REQUIRE_METADATA, cwd=tmp_path).stdout
    for version in exp_dir.iterdir():
        (version / "metadata.json").unlink()
    assert "must run with ArtifactPlugin" in guide_env.run("-c", REQUIRE_METADATA, cwd=tmp_path).stdout


def test_resume_skips_completed_work_and_graph_resume(guide_env, tmp_path):
    (tmp_path / "experiment1.py").write_text(EXPERIMENT_1)
    (tmp_path / "experiment2.py").write_text(EXPERIMENT_2)
    summary = json.loads(guide_env.run("-c", RESUME, cwd=tmp_path).stdout.splitlines()[-1])
    assert summary == {"again_artifacts": 0, "again_metrics": True, "graph": ["exp1", "exp2"], "exp2_replicates": 2}


def test_the_seed_guides_artifact_plugin_path_resolves_to_the_installed_distribution():
    from crystallize.plugins.plugins import ArtifactPlugin as via_seed_path
    from crystallize_artifacts import ArtifactPlugin

    assert via_seed_path is ArtifactPlugin is crystallize.ArtifactPlugin
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        importlib.import_module("crystallize.plugins.plugins").Nope  # noqa: B018
