"""Object-store roots (``s3://``, ``memory://``) keep runs exactly as local roots do.

The S3 tests talk to a real S3 API server (moto's) on 127.0.0.1, started once
per session by the ``s3_endpoint`` fixture (the root ``conftest.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from artifact_helpers import experiment

from crystallize import Experiment, Pipeline, pipeline_step
from crystallize.testing import RunStoreContract
from crystallize_artifacts import ArtifactPlugin, RunLockedError, verify_path

pytest.importorskip("fsspec")


class TestS3RunStoreContract(RunStoreContract):
    digest_algorithm = "blake3"

    @pytest.fixture(autouse=True)
    def _bucket(self, s3_bucket):
        self.bucket = s3_bucket

    def make_storage(self, tmp_path):
        return ArtifactPlugin(root_dir=f"s3://{self.bucket}/{tmp_path.name}")


class TestVersionedS3RunStoreContract(TestS3RunStoreContract):
    def make_storage(self, tmp_path):
        return ArtifactPlugin(root_dir=f"s3://{self.bucket}/{tmp_path.name}", versioned=True)


class TestMemoryFsspecRunStoreContract(RunStoreContract):
    travels_to_processes = False  # memory:// lives in one process
    digest_algorithm = "blake3"

    def make_storage(self, tmp_path):
        return ArtifactPlugin(root_dir=f"memory://crystallize-tests/{uuid.uuid4().hex}", versioned=True)


def s3_keys(url: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    base = url.removeprefix("s3://")
    return sorted(k[len(base) + 1 :] for k in fs.find(base))


def test_an_s3_run_has_the_local_layout_and_resumes_finer_than_a_condition(s3_root):
    root = s3_root
    first = experiment(root, replicates=3, fail=("double", 1)).run()
    assert [(e.condition, e.replicate) for e in first.error_list()] == [("double", 1)]
    keys = s3_keys(f"{root}/producer/v0")
    assert {
        "metadata.json",
        "manifest.json",
        ".lock",
        "baseline/results.json",
        "baseline/.crystallize_complete",
    } <= set(keys)
    assert "replicate_2/double/ModelStep/data.json" in keys
    assert "double/.crystallize_complete" not in keys  # a failed replicate leaves its condition unmarked
    assert any(k.startswith("double/replicates.jsonl.d/") for k in keys)  # the journal, one object per write
    resumed = experiment(root, replicates=3).run(strategy="resume")
    assert resumed.run.version == 0 and not resumed.errors
    assert resumed.metrics.baseline.metrics == first.metrics.baseline.metrics
    assert (
        resumed.metrics.treatments["double"].metrics["value"][0]
        == first.metrics.treatments["double"].metrics["value"][0]
    )
    assert verify_path(root) == {f"{root}/producer/v0": []}


def test_verify_reports_a_changed_object_and_the_command_exits_1(s3_root):
    import s3fs

    root = s3_root
    experiment(root, replicates=2).run()
    ok = subprocess.run(
        [sys.executable, "-m", "crystallize", "verify", f"{root}/producer"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "v0: ok" in ok.stdout
    s3fs.S3FileSystem().pipe_file(
        f"{root.removeprefix('s3://')}/producer/v0/replicate_1/baseline/ModelStep/data.json", b'{"value": 0}'
    )
    bad = subprocess.run([sys.executable, "-m", "crystallize", "verify", root], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "replicate_1/baseline/ModelStep/data.json" in bad.stdout


def test_concurrent_versioned_runs_on_s3_get_distinct_versions(s3_root):
    import time

    script = (
        "import sys, time\n"
        "from crystallize_artifacts import LocalRunStore\n"
        "from crystallize_artifacts.objects import ObjectExperimentFolder\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "store = LocalRunStore.open_for_run(ObjectExperimentFolder(sys.argv[1]), versioned=True, resume=False,"
        " durable=False)\n"
        "print(store.version, flush=True)\n"
        "time.sleep(0.5)\n"
        "store.close('completed')\n"
    )
    start = str(time.time() + 3.0)
    url = f"{s3_root}/shared"
    procs = [
        subprocess.Popen([sys.executable, "-c", script, url, start], stdout=subprocess.PIPE, text=True)
        for _ in range(5)
    ]
    got = sorted(int(p.communicate(timeout=120)[0]) for p in procs)
    assert got == list(range(5))


def test_a_live_s3_run_cannot_be_taken_and_a_released_one_can(s3_root):
    from crystallize_artifacts import LocalRunStore
    from crystallize_artifacts.objects import ObjectExperimentFolder

    folder = ObjectExperimentFolder(f"{s3_root}/e")
    first = LocalRunStore.open_for_run(folder, versioned=False, resume=False, durable=False)
    with pytest.raises(RunLockedError, match="being written by another run"):
        LocalRunStore.open_for_run(folder, versioned=False, resume=True, durable=False)
    first.close("interrupted")
    second = LocalRunStore.open_for_run(folder, versioned=False, resume=True, durable=False)
    assert second.resumed and second.version == 0
    second.close("completed")


def test_an_unversioned_rerun_on_s3_leaves_nothing_of_the_old_run(s3_root):
    root = s3_root
    experiment(root, replicates=3).run()
    experiment(root, replicates=1, treatments=[]).run()
    keys = s3_keys(f"{root}/producer/v0")
    assert not [k for k in keys if k.startswith(("replicate_1/", "replicate_2/", "double/"))]
    assert verify_path(f"{root}/producer") == {f"{root}/producer/v0": []}


def test_retention_on_s3_drops_old_artifacts_and_keeps_metrics(s3_root):
    root = s3_root
    for _ in range(3):
        experiment(root, replicates=2, versioned=True, artifact_retention=1).run()
    old = s3_keys(f"{root}/producer/v0")
    assert not [k for k in old if k.startswith("replicate_")]
    assert "baseline/results.json" in old
    assert any(k.startswith("replicate_") for k in s3_keys(f"{root}/producer/v2"))
    assert verify_path(f"{root}/producer/v0") == {f"{root}/producer/v0": []}  # pruned files are announced


@pipeline_step()
def read_value(data, ctx):
    with data.open("rb") as f:  # a file object, streamed from the store
        value = json.load(f)["value"]
    with open(data, "rb") as f:  # or a local path, downloaded once
        assert json.loads(f.read())["value"] == value
    ctx.metrics.add("read", value)
    return value


def test_a_consumer_reads_an_s3_producer_and_a_graph_resumes_it(s3_root):
    from crystallize import ExperimentGraph

    root = s3_root
    producer = experiment(root, replicates=2)
    consumer = Experiment(
        producer.artifact_datasource(step="ModelStep", name="data.json", require_metadata=True),
        Pipeline([read_value()]),
        plugins=[ArtifactPlugin(root_dir=root)],
        name="consumer",
        treatments=producer.treatments,
    )
    graph = ExperimentGraph(producer, consumer)
    results = graph.run()
    assert results["consumer"].metrics.baseline.metrics["read"] == results["producer"].metrics.baseline.metrics["value"]
    again = ExperimentGraph(experiment(root, replicates=2), consumer).run(strategy="resume")
    assert again["consumer"].metrics.baseline.metrics["read"] == results["consumer"].metrics.baseline.metrics["read"]
    pins = s3_keys(f"{root}/producer/v0/.consumers")
    assert pins == ["consumer--v0.json"]


def test_a_large_streamed_artifact_goes_up_in_parts_and_a_failed_one_leaves_nothing(s3_root):
    import blake3

    from crystallize_artifacts import LocalRunStore
    from crystallize_artifacts.objects import PART_SIZE, ObjectExperimentFolder

    store = LocalRunStore.open_for_run(
        ObjectExperimentFolder(f"{s3_root}/e"), versioned=True, resume=False, durable=False
    )
    block = bytes(range(256)) * 4096
    with store.open_artifact("baseline", 0, "Train", "model.bin") as sink:
        for _ in range(PART_SIZE // len(block) * 2 + 3):  # two full parts and a bit
            sink.write(block)
    expected = block * (PART_SIZE // len(block) * 2 + 3)
    assert sink.record.size == len(expected) and sink.record.digest == f"blake3:{blake3.blake3(expected).hexdigest()}"
    with store.read_artifact(sink.record.path) as f:
        assert f"blake3:{blake3.blake3(f.read()).hexdigest()}" == sink.record.digest
    with pytest.raises(RuntimeError), store.open_artifact("baseline", 1, "Train", "model.bin") as failed:
        failed.write(block * 20)  # past the first part: a multipart upload is under way
        raise RuntimeError("the writer failed")
    store.close("completed")
    assert "replicate_1/baseline/Train/model.bin" not in s3_keys(f"{s3_root}/e/v0")
    import s3fs

    bucket, prefix = s3_root.removeprefix("s3://").split("/", 1)
    uploads = s3fs.S3FileSystem().call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix).get("Uploads", [])
    assert uploads == []  # the failed one was aborted, not left to cost storage


def test_credentials_given_as_storage_options_are_never_shown_or_stored(s3_root, caplog):
    import logging

    secret = "s3cr3t-never-to-be-seen"
    plugin = ArtifactPlugin(root_dir=s3_root, storage_options={"key": "testing", "secret": secret})
    assert secret not in repr(plugin)
    caplog.set_level(logging.DEBUG)
    exp = experiment(s3_root, replicates=1)
    exp.plugins = [p for p in exp.plugins if not isinstance(p, ArtifactPlugin)] + [plugin]
    result = exp.run()
    assert result.ok and secret not in repr(result.run.store)
    assert secret not in caplog.text
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    stored = b"".join(fs.cat_file(k) for k in fs.find(s3_root.removeprefix("s3://")))
    assert secret.encode() not in stored
