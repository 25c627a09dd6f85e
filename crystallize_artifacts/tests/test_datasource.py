import json
from pathlib import Path

import pytest
from artifact_helpers import experiment

from crystallize import ConfigurationError, Experiment, Pipeline, Treatment, pipeline_step
from crystallize_artifacts import ArtifactDataSource, ArtifactPlugin, FallbackWarning, MetadataMissingError


@pipeline_step()
def load(data, ctx):
    doc = json.loads(Path(data).read_text())
    ctx.metrics.add("value", doc["value"])
    ctx.metrics.add("from", doc["condition"])
    return doc


def consumer(producer, **kwargs):
    options = {k: kwargs.pop(k) for k in ("require_metadata", "version") if k in kwargs}
    return Experiment(producer.artifact_datasource("ModelStep", "data.json", **options), Pipeline([load()]), **kwargs)


def test_paths_per_replicate_and_condition_and_replicates_from_metadata(tmp_path):
    producer = experiment(tmp_path, replicates=3)
    made = producer.run()
    result = consumer(producer, treatments=[Treatment("double", {})]).run()
    assert result.ok and result.run.replicates == 3
    assert result.metrics.baseline.metrics["value"] == made.metrics.baseline.metrics["value"]
    assert result.metrics.treatments["double"].metrics["value"] == made.metrics.treatments["double"].metrics["value"]
    assert set(result.metrics.treatments["double"].metrics["from"]) == {"double"}
    (upstream,) = result.run.upstream
    assert (upstream.experiment, upstream.step, upstream.artifact, upstream.version) == (
        "producer",
        "ModelStep",
        "data.json",
        0,
    )


def test_source_yields_pathlib_paths(tmp_path):
    from crystallize import FrozenContext

    producer = experiment(tmp_path, replicates=2)
    producer.run()
    source = producer.artifact_datasource("ModelStep", "data.json").resolve()
    path = source.fetch(FrozenContext({"replicate": 1, "condition": "baseline"}))
    assert isinstance(path, Path)
    assert path == tmp_path / "producer" / "v0" / "replicate_1" / "baseline" / "ModelStep" / "data.json"


def test_replicate_mismatch_names_both_counts(tmp_path):
    producer = experiment(tmp_path, replicates=3)
    producer.run()
    with pytest.raises(ValueError, match=r"run\(replicates=5\) disagrees with the datasource, which has 3"):
        consumer(producer).run(replicates=5)
    assert consumer(producer).run(replicates=3).ok


def test_condition_missing_at_the_producer_falls_back_to_baseline_with_a_warning(tmp_path):
    producer = experiment(tmp_path, replicates=2)
    produced = producer.run()
    with pytest.warns(FallbackWarning, match="has no condition 'other'"):
        result = consumer(producer, treatments=[Treatment("other", {})]).run()
    assert result.metrics.treatments["other"].metrics["value"] == produced.metrics.baseline.metrics["value"]


def test_missing_file_of_an_existing_condition_is_an_error_not_a_fallback(tmp_path):
    producer = experiment(tmp_path, replicates=2)
    producer.run()
    (tmp_path / "producer" / "v0" / "replicate_1" / "double" / "ModelStep" / "data.json").unlink()
    result = consumer(producer, treatments=[Treatment("double", {})]).run()
    error = result.errors["double"][1]
    assert error.type_name == "FileNotFoundError"
    assert "has no artifact 'data.json' from step 'ModelStep' for condition 'double', replicate 1" in error.message
    assert 1 not in result.errors.get("baseline", {})


def test_wrong_step_name_lists_what_was_written(tmp_path):
    producer = experiment(tmp_path, replicates=1)
    producer.run()
    source = Experiment(producer.artifact_datasource("Model", "data.json"), Pipeline([load()]))
    error = source.run().errors["baseline"][0]
    assert "that replicate wrote: ModelStep/data.json" in error.message


def test_require_metadata(tmp_path):
    producer = experiment(tmp_path, replicates=2)
    producer.run()
    (tmp_path / "producer" / "v0" / "metadata.json").unlink()
    with pytest.raises(MetadataMissingError, match="must run with ArtifactPlugin"):
        consumer(producer, require_metadata=True).run()
    # without require_metadata, the count comes from the folders
    assert consumer(producer).run().run.replicates == 2


def test_corrupt_metadata_is_a_clear_error_and_nothing_is_overwritten(tmp_path):
    producer = experiment(tmp_path, replicates=2)
    producer.run()
    meta = tmp_path / "producer" / "v0" / "metadata.json"
    meta.write_text('{"replicates": ')
    snapshot = sorted(p for p in (tmp_path / "producer").rglob("*"))
    with pytest.raises(ValueError, match=r"metadata.json: not valid JSON.*corrupt"):
        consumer(producer).run()
    meta.write_text('{"replicates": "two"}')
    with pytest.raises(ValueError, match=r"'replicates' is a string \('two'\), expected an integer >= 1"):
        consumer(producer).run()
    assert sorted(p for p in (tmp_path / "producer").rglob("*")) == snapshot


def test_producer_that_never_ran_is_a_clear_error(tmp_path):
    producer = experiment(tmp_path)
    with pytest.raises(FileNotFoundError, match="experiment 'producer' has no runs"):
        consumer(producer).run()


def test_a_given_version_is_read_and_a_missing_one_is_named(tmp_path):
    producer = experiment(tmp_path, replicates=2, versioned=True)
    producer.run()
    producer.run(replicates=3)
    assert consumer(producer).run().run.replicates == 3
    assert consumer(producer, version=0).run().run.replicates == 2
    with pytest.raises(FileNotFoundError, match=r"has no run v7 \(it has v0, v1\)"):
        consumer(producer, version=7).run()


def test_producer_without_artifact_plugin_cannot_be_read(tmp_path):
    plain = experiment(tmp_path)
    plain.plugins = []
    with pytest.raises(ConfigurationError, match="no active plugin provides storage for experiment"):
        plain.artifact_datasource("ModelStep", "data.json")


def test_unnamed_producer_is_found_by_its_id_from_a_separate_object(tmp_path):
    first = experiment(tmp_path, name=None, replicates=2)
    first.run()
    rebuilt = experiment(tmp_path, name=None, replicates=2)  # same code, new objects
    assert rebuilt.id == first.id
    assert consumer(rebuilt).run().run.replicates == 2


def test_directories_written_by_crystallize_ml_can_be_read(tmp_path):
    """crystallize-ml 0.27 wrote metadata.json {replicates, id, name}, results.json {metrics}, empty markers."""
    run_dir = tmp_path / "legacy" / "v0"
    for r in range(2):
        for condition in ("baseline", "t1"):
            folder = run_dir / f"replicate_{r}" / condition / "TrainStep"
            folder.mkdir(parents=True)
            (folder / "data.json").write_text(json.dumps({"value": r, "condition": condition}))
    for condition in ("baseline", "t1"):
        (run_dir / condition).mkdir()
        (run_dir / condition / "results.json").write_text(json.dumps({"metrics": {"value": [0, 1]}}))
        (run_dir / condition / ".crystallize_complete").touch()
    (run_dir / "metadata.json").write_text(json.dumps({"replicates": 2, "id": "abc", "name": "legacy"}))
    (run_dir / "_manifest.json").write_text(json.dumps({"data.json": "TrainStep"}))

    source = ArtifactDataSource("legacy", "abc", tmp_path / "legacy", "TrainStep", "data.json")
    result = Experiment(source, Pipeline([load()]), treatments=[Treatment("t1", {})]).run()
    assert result.ok and result.run.replicates == 2
    assert result.metrics.treatments["t1"].metrics["from"] == ["t1", "t1"]

    # and the resume plugin accepts its markers
    legacy = experiment(tmp_path, name="legacy", replicates=2, treatments=[Treatment("t1", {})])
    legacy.plugins[1] = ArtifactPlugin(tmp_path)
    (run_dir / "metadata.json").write_text(json.dumps({"replicates": 2, "id": legacy.id, "name": "legacy"}))
    resumed = legacy.run(strategy="resume")
    assert resumed.metrics.baseline.metrics == {"value": [0, 1]}
    assert resumed.artifacts == []  # nothing ran again
