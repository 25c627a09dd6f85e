"""Bookkeeping files of the wrong shape: a clear error naming the file, or a rebuild.

Each test reproduces a finding of the adversarial review (issue 13): resume or
a consumer crashing with ``AttributeError``/``TypeError`` on well-formed JSON
of the wrong shape, or trusting what such a file says.
"""

from __future__ import annotations

import json

import pytest
from artifact_helpers import experiment

from crystallize import Experiment, Pipeline, pipeline_step
from crystallize.plugin import DocumentError
from crystallize_artifacts import ArtifactPlugin


@pytest.mark.parametrize(
    "content",
    [b'{"conditions": []}', b'{"conditions": {"baseline": 5}}'],
)
def test_a_wrong_shaped_index_is_rebuilt_not_trusted(tmp_path, content):
    experiment(tmp_path, replicates=2, treatments=[]).run()
    index = tmp_path / "producer" / "v0" / ".index.json"
    index.write_bytes(content)
    resumed = experiment(tmp_path, replicates=2, treatments=[]).run(strategy="resume")
    assert resumed.ok and len(resumed.metrics.baseline.metrics["value"]) == 2
    assert "baseline" in json.loads(index.read_bytes())["conditions"]  # rebuilt from the files


@pytest.mark.parametrize(
    "line",
    [b'[{"replicate": "0"}]', b'[{"replicate": 0, "metrics": [1, 2]}]', b'[{"replicate": 0, "metrics": {"value": 3}}]'],
)
def test_wrong_shaped_journal_lines_are_refused_not_fatal(tmp_path, line):
    experiment(tmp_path, replicates=2, treatments=[], fail=("baseline", 1)).run()
    journal = tmp_path / "producer" / "v0" / "baseline" / "replicates.jsonl"
    journal.write_bytes(line + b"\n")
    resumed = experiment(tmp_path, replicates=2, treatments=[]).run(strategy="resume")
    assert resumed.ok and len(resumed.metrics.baseline.metrics["value"]) == 2


def test_a_journal_entry_pointing_outside_the_run_is_refused(tmp_path):
    experiment(tmp_path, replicates=2, treatments=[], fail=("baseline", 1)).run()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"s" * 10)
    journal = tmp_path / "producer" / "v0" / "baseline" / "replicates.jsonl"
    entry = json.loads(journal.read_bytes().splitlines()[0])[0]
    entry["replicate"] = 1
    entry["artifacts"] = [{**entry["artifacts"][0], "replicate": 1, "path": "../../secret.bin", "size": 10}]
    journal.write_bytes(journal.read_bytes() + json.dumps([entry]).encode() + b"\n")
    resumed = experiment(tmp_path, replicates=2, treatments=[]).run(strategy="resume")
    assert resumed.ok
    manifest = json.loads((tmp_path / "producer" / "v0" / "manifest.json").read_bytes())
    assert all(not r["path"].startswith("..") for r in manifest["artifacts"])
    assert sorted(r["replicate"] for r in manifest["artifacts"]) == [0, 1]  # replicate 1 ran again


OUTSIDE = {
    "name": "data.json",
    "step": "ModelStep",
    "condition": "baseline",
    "replicate": 0,
    "path": "../../../etc/shadow",
    "size": 1,
    "digest": "blake3:" + "0" * 64,
}


@pytest.mark.parametrize(
    ("results", "marker_replicates"),
    [
        ({"metrics": {"value": [1, 2]}, "replicates": "2"}, 2),
        ({"metrics": {"value": 5}, "replicates": 2}, 2),
        ({"metrics": {"value": [1, 2]}, "replicates": 2, "artifacts": [OUTSIDE]}, 2),
    ],
)
def test_wrong_shaped_results_under_a_valid_marker_rerun_the_condition(tmp_path, results, marker_replicates):
    import hashlib

    experiment(tmp_path, replicates=2, treatments=[]).run()
    folder = tmp_path / "producer" / "v0" / "baseline"
    raw = json.dumps(results).encode()
    (folder / "results.json").write_bytes(raw)
    marker = {"replicates": marker_replicates, "results_sha256": hashlib.sha256(raw).hexdigest()}
    (folder / ".crystallize_complete").write_text(json.dumps(marker))
    (tmp_path / "producer" / "v0" / ".index.json").unlink()
    resumed = experiment(tmp_path, replicates=2, treatments=[]).run(strategy="resume")
    assert resumed.ok and len(resumed.metrics.baseline.metrics["value"]) == 2
    assert all(isinstance(v, float) for v in resumed.metrics.baseline.metrics["value"])


@pipeline_step()
def read(path, ctx):
    return path


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [(5, r"'conditions' is an integer \(5\), expected a list"), ("baseline", r"'conditions' is a string")],
)
def test_producer_metadata_with_wrong_shaped_conditions_is_a_clear_error(tmp_path, conditions, expected):
    producer = experiment(tmp_path, replicates=1, treatments=[])
    producer.run()
    meta_path = tmp_path / "producer" / "v0" / "metadata.json"
    meta = json.loads(meta_path.read_bytes())
    meta["conditions"] = conditions
    meta_path.write_text(json.dumps(meta))
    consumer = Experiment(producer.artifact_datasource("ModelStep", "data.json"), Pipeline([read()]))
    with pytest.raises(DocumentError, match=expected) as info:
        consumer.run()
    assert "metadata.json" in str(info.value)


@pytest.mark.parametrize(
    "field",
    [
        {"conditions": 5},
        {"fingerprints": [1]},
        {"completed_conditions": "baseline"},
        {"resumed_at": 3},
        {"run_id": 7},
    ],
)
def test_metadata_fields_of_the_wrong_shape_name_the_file_and_field_on_resume(tmp_path, field):
    experiment(tmp_path, replicates=1).run()
    meta_path = tmp_path / "producer" / "v0" / "metadata.json"
    meta = json.loads(meta_path.read_bytes())
    meta.update(field)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DocumentError, match=rf"metadata.json: '{next(iter(field))}' is"):
        experiment(tmp_path, replicates=1).run(strategy="resume")


@pytest.mark.parametrize(
    ("document", "content"),
    [
        ("producer/v0/manifest.json", {"artifacts": 5}),
        ("producer/v0/manifest.json", {"artifacts": [{"path": "/etc/passwd"}]}),
        ("consumer/v0/metadata.json", "upstream"),
    ],
)
def test_a_graph_resume_over_wrong_shaped_run_documents_reruns_and_says_why(tmp_path, document, content, caplog):
    from crystallize import ExperimentGraph

    producer = experiment(tmp_path, replicates=1, treatments=[])
    consumer = Experiment(
        producer.artifact_datasource("ModelStep", "data.json"),
        Pipeline([read()]),
        name="consumer",
        plugins=[ArtifactPlugin(tmp_path)],
    )
    ExperimentGraph(producer, consumer).run()
    path = tmp_path / document
    if content == "upstream":
        meta = json.loads(path.read_bytes())
        meta["upstream"] = [{"experiment": 5}]
        content = meta
    path.write_text(json.dumps(content))
    caplog.set_level("INFO")
    results = ExperimentGraph(producer, consumer).run(strategy="resume")
    assert all(r.ok for r in results.values())
    assert "unreadable" in caplog.text
