"""load_result / load_results: a stored run read back as the Result its run returned."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crystallize import Experiment, Hypothesis, Pipeline, SeedPlugin, Treatment, data_source, pipeline_step
from crystallize_artifacts import ArtifactPlugin, RunNotFoundError, load_result, load_results

LEGACY = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "crystallize_ml_0_27"
FAIL = {"replicate": None}


@data_source
def start(ctx):
    return ctx["replicate"] + 1


@pipeline_step()
def fit(x, ctx, gain=1.0):
    if ctx["condition"] == "better" and ctx["replicate"] == FAIL["replicate"]:
        raise ValueError("bad batch")
    for epoch in range(2):
        ctx.metrics.add("loss", x / (gain + epoch))
    ctx.metrics.add("score", x * gain)
    return x


def experiment(root, replicates=4):
    return Experiment(
        start(),
        Pipeline([fit()]),
        plugins=[SeedPlugin(seed=1), ArtifactPlugin(root_dir=root, versioned=True)],
        treatments=[Treatment("better", {"gain": 2.0})],
        hypotheses=[Hypothesis(metrics="score")],
        replicates=replicates,
        name="fitting",
    )


def same(a, b):
    assert a.to_records() == b.to_records()
    assert [(e.condition, e.replicate, e.type_name, e.message) for e in a.error_list()] == [
        (e.condition, e.replicate, e.type_name, e.message) for e in b.error_list()
    ]
    assert json.dumps(a.to_dict()["hypotheses"], default=str) == json.dumps(b.to_dict()["hypotheses"], default=str)
    assert str(a.summary()) == str(b.summary())


def test_a_stored_run_loads_as_the_result_its_run_returned(tmp_path, monkeypatch):
    monkeypatch.setitem(FAIL, "replicate", 2)
    returned = experiment(tmp_path).run()
    loaded = load_result(tmp_path, "fitting")
    same(loaded, returned)
    assert loaded.metrics.treatments["better"].missing == (2,)
    assert loaded.errors["better"][2].traceback.rstrip().endswith("ValueError: bad batch")
    assert (loaded.run.key, loaded.run.version, loaded.run.status) == ("fitting", 0, "failed")
    assert loaded.run.location == str(tmp_path / "fitting" / "v0")


def test_a_resumed_run_loads_complete_and_without_the_failures_it_fixed(tmp_path, monkeypatch):
    monkeypatch.setitem(FAIL, "replicate", 2)
    experiment(tmp_path).run()
    monkeypatch.setitem(FAIL, "replicate", None)
    resumed = experiment(tmp_path).run(strategy="resume")
    loaded = load_result(tmp_path, "fitting@v0")
    same(loaded, resumed)
    assert loaded.ok and loaded.run.status == "completed"


def test_every_version_loads_and_records_concatenate(tmp_path):
    experiment(tmp_path, replicates=2).run()
    experiment(tmp_path, replicates=3).run()
    every = load_results(tmp_path, "fitting")
    assert list(every) == [0, 1]
    assert [r.metrics.baseline.replicates for r in every.values()] == [2, 3]
    records = [row for result in every.values() for row in result.to_records()]
    assert {(row["version"], row["replicate"]) for row in records if row["metric"] == "score"} == {
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
        (1, 2),
    }
    assert load_result(tmp_path / "fitting" / "v0").metrics.baseline.replicates == 2  # a run folder
    assert load_result(tmp_path / "fitting", version=1).run.version == 1  # an experiment folder


def test_missing_runs_are_refused_naming_what_exists(tmp_path):
    experiment(tmp_path, replicates=1).run()
    with pytest.raises(
        RunNotFoundError, match=r"no runs of experiment 'fiting' under .* \(experiments there: fitting\)"
    ):
        load_result(tmp_path, "fiting")
    with pytest.raises(RunNotFoundError, match=r"fitting has no run v4 \(versions: v0\)"):
        load_result(tmp_path, "fitting", version=4)
    with pytest.raises(ValueError, match="names v0 but version=1 was given"):
        load_result(tmp_path, "fitting@v0", version=1)
    with pytest.raises(RunNotFoundError, match="holds no runs"):
        load_result(tmp_path)


def test_loading_imports_none_of_the_experiment_code(tmp_path):
    experiment(tmp_path).run()
    code = (
        "import sys\n"
        "from crystallize_artifacts import load_result\n"
        f"r = load_result({str(tmp_path)!r}, 'fitting')\n"
        "assert __name__ == '__main__' and 'test_load_result' not in sys.modules\n"
        "print(r.summary().row('better', 'score').mean)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == pytest.approx(2.0 * (1 + 2 + 3 + 4) / 4)


def test_crystallize_ml_027_folders_load_with_their_metrics_split_by_replicate():
    result = load_result(LEGACY, "legacy-train", version=0)
    stored = json.loads((LEGACY / "legacy-train" / "v0" / "wide" / "results.json").read_text())["metrics"]
    assert result.metrics.treatments["wide"].metrics == stored
    assert len(result.metrics.treatments["wide"].by_replicate["loss"]) == 4  # 12 values: 3 per replicate
    assert result.metrics.treatments["wide"].by_replicate["loss"][1] == stored["loss"][3:6]
    assert result.metrics.hypotheses == [] and result.errors == {}
    failed = load_result(LEGACY, "legacy-train", version=1).metrics.treatments["deep"]
    assert len(failed.metrics["accuracy"]) == 3 and "accuracy" not in failed.by_replicate  # which one failed is unknown
    unnamed = next(p.name for p in LEGACY.iterdir() if p.name != "legacy-train" and p.is_dir())
    assert load_result(LEGACY, unnamed).metrics.baseline.replicates == 2
