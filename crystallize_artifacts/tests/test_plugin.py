import hashlib
import json
import subprocess
import sys

import blake3
import pytest
from artifact_helpers import ModelStep, draws, experiment

from crystallize import (
    Artifact,
    ArtifactStoreError,
    ConfigurationError,
    Experiment,
    Pipeline,
    Treatment,
    pipeline_step,
)
from crystallize_artifacts import ArtifactPlugin


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_layout_results_markers_and_manifest(tmp_path):
    result = experiment(tmp_path, replicates=2).run()
    assert result.ok
    run_dir = tmp_path / "producer" / "v0"
    assert result.run.location == str(run_dir) and result.run.version == 0
    assert files_under(run_dir) == [
        ".index.json",
        ".lock",
        "baseline/.crystallize_complete",
        "baseline/results.json",  # no journal: a completed condition's results supersede it
        "double/.crystallize_complete",
        "double/results.json",
        "manifest.json",
        "metadata.json",
        "outcome.json",
        "replicate_0/baseline/ModelStep/data.json",
        "replicate_0/double/ModelStep/data.json",
        "replicate_1/baseline/ModelStep/data.json",
        "replicate_1/double/ModelStep/data.json",
    ]
    results = json.loads((run_dir / "double" / "results.json").read_bytes())
    assert results["metrics"] == result.metrics.treatments["double"].metrics
    assert results["replicates"] == 2 and set(results["replicate_metrics"]) == {"0", "1"}
    marker = json.loads((run_dir / "double" / ".crystallize_complete").read_bytes())
    assert marker == {
        "replicates": 2,
        "results_sha256": hashlib.sha256((run_dir / "double" / "results.json").read_bytes()).hexdigest(),
    }
    manifest = json.loads((run_dir / "manifest.json").read_bytes())
    assert manifest["status"] == "completed" and len(manifest["artifacts"]) == 4
    for record in manifest["artifacts"]:
        data = (run_dir / record["path"]).read_bytes()
        assert record["size"] == len(data) and record["digest"] == f"blake3:{blake3.blake3(data).hexdigest()}"
    assert sorted(r.path for r in result.artifacts) == sorted(r["path"] for r in manifest["artifacts"])


def test_versioned_runs_take_new_versions_and_unversioned_reuse_v0(tmp_path):
    assert [experiment(tmp_path, versioned=True).run().run.version for _ in range(3)] == [0, 1, 2]
    plain = tmp_path / "plain"
    for _ in range(2):
        assert experiment(plain, versioned=False).run().run.version == 0
    assert sorted(p.name for p in (plain / "producer").iterdir()) == ["v0"]


def test_a_condition_with_a_failed_replicate_gets_no_marker(tmp_path):
    result = experiment(tmp_path, replicates=3, fail=("double", 1)).run()
    run_dir = tmp_path / "producer" / "v0"
    assert (run_dir / "baseline" / ".crystallize_complete").exists()
    assert not (run_dir / "double" / ".crystallize_complete").exists()
    assert not (run_dir / "double" / "results.json").exists()
    lines = (run_dir / "double" / "replicates.jsonl").read_text().splitlines()
    assert sorted(entry["replicate"] for line in lines for entry in json.loads(line)) == [0, 2]
    meta = json.loads((run_dir / "metadata.json").read_bytes())
    assert meta["status"] == "failed" and meta["completed_conditions"] == ["baseline"]
    assert result.run.status == "failed"


def test_durable_mode_writes_the_same_files(tmp_path):
    fast = experiment(tmp_path / "fast").run()
    durable = experiment(tmp_path / "durable", durable=True).run()
    assert fast.metrics == durable.metrics
    assert files_under(tmp_path / "fast") == files_under(tmp_path / "durable")


def test_root_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plugin = ArtifactPlugin(root_dir="artifacts")
    assert plugin.root == tmp_path / "artifacts"
    assert "artifacts" in repr(plugin)


@pytest.mark.parametrize("name", ["replicate_0", "metadata.json", "manifest.json", ".hidden"])
def test_treatment_names_that_collide_with_the_layout_are_rejected(tmp_path, name):
    exp = experiment(tmp_path, treatments=[Treatment(name, {"scale": 1.0})])
    with pytest.raises(ConfigurationError, match=f"treatment name {name!r} collides"):
        exp.validate()


def test_installed_but_unconfigured_plugin_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = Artifact("data.json")
    exp = Experiment(draws(), Pipeline([ModelStep(out)]), outputs=[out])
    with pytest.raises(ArtifactStoreError, match="declares outputs"):
        exp.run()
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere (no ./data)


def test_invalid_plugin_arguments(tmp_path):
    with pytest.raises(ValueError, match="artifact_retention must be an int >= 1 or None, got 0"):
        ArtifactPlugin(tmp_path, artifact_retention=0)
    with pytest.raises(ValueError, match="big_file_threshold_mb must be a positive number"):
        ArtifactPlugin(tmp_path, big_file_threshold_mb=-1)


def test_verify_command_checks_checksums(tmp_path):
    experiment(tmp_path, replicates=2).run()
    command = [sys.executable, "-m", "crystallize", "verify", str(tmp_path / "producer")]
    ok = subprocess.run(command, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "v0: ok" in ok.stdout
    target = tmp_path / "producer" / "v0" / "replicate_1" / "double" / "ModelStep" / "data.json"
    target.write_bytes(b"tampered")
    (tmp_path / "producer" / "v0" / "replicate_0" / "baseline" / "ModelStep" / "data.json").unlink()
    bad = subprocess.run([*command, "--json"], capture_output=True, text=True)
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)[str(tmp_path / "producer" / "v0")]
    assert any("content differs" in p for p in problems) or any("size" in p for p in problems)
    assert any(p.endswith("missing") for p in problems)


@pipeline_step()
def read_size(data, ctx):
    ctx.metrics.add("size", data.stat().st_size)
    return data


def big_experiment(root, size):
    out = Artifact("blob.bin")

    class Blob(ModelStep):
        def __call__(self, data, ctx):
            self.out.write(b"x" * size)
            return data

    return Experiment(
        draws(),
        Pipeline([Blob(out)]),
        outputs=[out],
        name="blobs",
        replicates=1,
        plugins=[ArtifactPlugin(root, versioned=True, artifact_retention=2)],
    )


def test_retention_keeps_newest_versions_metrics_and_pinned_versions(tmp_path):
    root = tmp_path / "store"
    for _ in range(2):
        big_experiment(root, 10).run()
    # a consumer reads v1 (the latest so far): that pins v1
    consumer = Experiment(
        big_experiment(root, 10).artifact_datasource("Blob", "blob.bin"),
        Pipeline([read_size()]),
        name="consumer",
        plugins=[ArtifactPlugin(root)],
    )
    assert consumer.run().ok
    for _ in range(2):
        big_experiment(root, 10).run()  # v2, v3
    exp_dir = root / "blobs"
    assert (exp_dir / "v0" / "replicate_0").exists() is False  # pruned to metrics
    assert (exp_dir / "v0" / "baseline" / "results.json").exists()
    assert (exp_dir / "v1" / "replicate_0" / "baseline" / "Blob" / "blob.bin").exists()  # pinned by consumer
    assert (exp_dir / "v2" / "replicate_0" / "baseline" / "Blob" / "blob.bin").exists()  # kept (newest 2)
    manifest = json.loads((exp_dir / "v0" / "manifest.json").read_bytes())
    assert manifest["pruned"] == ["replicate_0/baseline/Blob/blob.bin"]
    verify = subprocess.run(
        [sys.executable, "-m", "crystallize", "verify", str(exp_dir / "v0")], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout


def test_big_files_are_dropped_from_older_kept_versions(tmp_path):
    root = tmp_path / "store"

    def run(size):
        exp = big_experiment(root, size)
        exp.validate()  # builds the plugin set, which the next line must replace
        exp.plugins = [ArtifactPlugin(root, versioned=True, big_file_threshold_mb=0.5)]
        return exp.run()

    run(2 * 1024 * 1024)
    run(10)
    run(10)
    exp_dir = root / "blobs"
    assert not (exp_dir / "v0" / "replicate_0" / "baseline" / "Blob" / "blob.bin").exists()
    assert (exp_dir / "v1" / "replicate_0" / "baseline" / "Blob" / "blob.bin").exists()
