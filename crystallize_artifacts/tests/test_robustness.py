"""Failing plugins, odd states on disk and forks: nothing written is lost or misreported.

Each test here reproduces a problem found in review.
"""

from __future__ import annotations

import json
import multiprocessing
import warnings

import pytest
from artifact_helpers import experiment

from crystallize import (
    Artifact,
    Experiment,
    ParallelExecution,
    Pipeline,
    PipelineStep,
    Treatment,
    data_source,
    hookimpl,
    pipeline_step,
)
from crystallize_artifacts import ArtifactPlugin, FallbackWarning
from crystallize_artifacts.store import lock_held


@data_source
def ten(ctx):
    return 10.0


class Scaled(PipelineStep):
    """Writes data * scale + replicate, then optionally fails (after the write)."""

    def __init__(self, out, fail=()):
        self.out = out
        self.fail = fail

    def __call__(self, data, ctx):
        value = data * ctx.get("scale", 1.0) + ctx["replicate"]
        ctx.metrics.add("v", value)
        self.out.write(json.dumps(value).encode())
        if (ctx["condition"], ctx["replicate"]) in self.fail:
            raise RuntimeError("planned failure after the write")
        return value

    @property
    def params(self):
        return {}


def scaled(root, scale, fail=()):
    out = Artifact("data.json")
    return Experiment(
        ten(),
        Pipeline([Scaled(out, fail)]),
        plugins=[ArtifactPlugin(root)],
        outputs=[out],
        name="e",
        replicates=2,
        treatments=[Treatment("t", {"scale": scale})],
    )


def t_files(root):
    return {p.parent.parent.parent.name: p.read_text() for p in sorted((root / "e" / "v0").glob("replicate_*/t/*/*"))}


@pytest.mark.parametrize("stale", ["marker", "journal"])
def test_records_of_a_rerun_condition_are_withdrawn_before_it_reruns(tmp_path, stale):
    if stale == "marker":
        scaled(tmp_path, 2.0).run()  # t complete at scale 2
        scaled(tmp_path, 3.0, fail={("t", 1)}).run(strategy="resume")  # changed: t reruns, r1 fails
    else:
        scaled(tmp_path, 2.0, fail={("t", 1)}).run()  # journal vouches for t/0 at scale 2
        scaled(tmp_path, 3.0, fail={("t", 0), ("t", 1)}).run(strategy="resume")  # both rewritten, both fail
    assert t_files(tmp_path) == {"replicate_0": "30.0", "replicate_1": "31.0"}
    back = scaled(tmp_path, 2.0).run(strategy="resume")  # revert the treatment: nothing stale is trusted
    assert back.ok and back.metrics.treatments["t"].metrics == {"v": [20.0, 21.0]}
    assert t_files(tmp_path) == {"replicate_0": "20.0", "replicate_1": "21.0"}
    from crystallize_artifacts import verify_run

    assert verify_run(tmp_path / "e" / "v0") == []


def test_metrics_that_cannot_be_stored_fail_only_their_replicate(tmp_path):
    import datetime

    @pipeline_step()
    def odd(data, ctx):
        ctx.metrics.add("v", datetime.date(2020, 1, 1) if ctx["replicate"] == 1 else ctx["replicate"])
        return data

    exp = Experiment(
        ten(),
        Pipeline([odd()]),
        plugins=[ArtifactPlugin(tmp_path)],
        name="e",
        replicates=3,
        treatments=[Treatment("t", {})],
    )
    result = exp.run()
    assert {c: sorted(e) for c, e in result.errors.items()} == {"baseline": [1], "t": [1]}
    error = result.errors["baseline"][1]
    assert error.type_name.endswith("ReplicateRejected")
    assert "'baseline' replicate 1 cannot be stored as JSON" in error.message and "date" in error.message
    journal = (tmp_path / "e" / "v0" / "baseline" / "replicates.jsonl").read_text().splitlines()
    assert sorted(entry["replicate"] for line in journal for entry in json.loads(line)) == [0, 2]


class FailingAfterRun:
    plugin_name = "boom"

    @hookimpl(tryfirst=True)
    def after_run(self):
        raise OSError(28, "No space left on device")


class LateFailingAfterRun(FailingAfterRun):
    plugin_name = "late-boom"

    @hookimpl(trylast=True)
    def after_run(self):
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("plugin", [FailingAfterRun, LateFailingAfterRun])
def test_a_failing_after_run_does_not_stop_the_others(tmp_path, plugin):
    exp = experiment(tmp_path, replicates=2)
    exp.plugins.append(plugin())
    with pytest.raises(OSError, match="No space left") as info:
        exp.run()
    assert any(f"raised by plugin '{plugin.plugin_name}'" in n for n in info.value.__notes__)
    run_dir = tmp_path / "producer" / "v0"
    assert not lock_held(run_dir)
    assert (run_dir / "manifest.json").exists()
    assert json.loads((run_dir / "metadata.json").read_bytes())["status"] == "completed"
    assert experiment(tmp_path, replicates=2).run(strategy="resume").ok  # same process: not locked


def test_final_metadata_is_written_before_the_run_folder_is_unlocked(tmp_path):
    import crystallize_artifacts.store as store

    seen = []
    real = store.LocalRunStore.write_json

    def spy(self, path, document):
        seen.append((path, document.get("status"), store.lock_held(self.dir)))
        real(self, path, document)

    store.LocalRunStore.write_json = spy
    try:
        experiment(tmp_path).run()
    finally:
        store.LocalRunStore.write_json = real
    assert seen == [
        ("metadata.json", "running", True),
        ("outcome.json", "completed", True),
        ("metadata.json", "completed", True),
    ] or seen == [
        ("metadata.json", "running", True),
        ("metadata.json", "completed", True),
        ("outcome.json", "completed", True),
    ]


def test_resuming_a_subset_of_conditions_keeps_the_others(tmp_path):
    a, b = Treatment("A", {"scale": 2.0}), Treatment("B", {"scale": 3.0})
    exp = experiment(tmp_path, replicates=1, treatments=[a, b])
    exp.run()
    exp.run(treatments=[a], strategy="resume")
    run_dir = tmp_path / "producer" / "v0"
    meta = json.loads((run_dir / "metadata.json").read_bytes())
    assert meta["conditions"] == ["baseline", "A", "B"] and "B" in meta["completed_conditions"]
    manifest = {r["path"] for r in json.loads((run_dir / "manifest.json").read_bytes())["artifacts"]}
    assert "replicate_0/B/ModelStep/data.json" in manifest

    @pipeline_step()
    def which(path, ctx):
        ctx.metrics.add("condition", json.loads(path.read_text())["condition"])
        return path

    consumer = Experiment(exp.artifact_datasource("ModelStep", "data.json"), Pipeline([which()]), treatments=[b])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        assert consumer.run().metrics.treatments["B"].metrics == {"condition": ["B"]}


_POOL = None


class ForksAPool(PipelineStep):
    """A step that lazily starts a fork-based pool which outlives the run."""

    def __call__(self, data, ctx):
        global _POOL
        if _POOL is None:
            _POOL = multiprocessing.get_context("fork").Pool(1)
        return _POOL.apply(abs, (-data,))


def test_processes_forked_during_a_run_do_not_keep_it_locked(tmp_path):
    exp = Experiment(ten(), Pipeline([ForksAPool()]), plugins=[ArtifactPlugin(tmp_path)], name="e")
    try:
        exp.run()
        assert not lock_held(tmp_path / "e" / "v0")
        assert exp.run(strategy="resume").ok
    finally:
        if _POOL is not None:
            _POOL.terminate()


@pytest.mark.parametrize("executor_type", ["thread", "process"])
def test_baseline_fallback_is_warned_once_in_the_main_process(tmp_path, executor_type):
    producer = experiment(tmp_path, replicates=2, treatments=[])
    producer.run()
    consumer = Experiment(
        producer.artifact_datasource("ModelStep", "data.json"),
        Pipeline([pipeline_step()(lambda data, ctx: data)()]),
        treatments=[Treatment("other", {})],
        plugins=[ParallelExecution(2, executor_type)],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert consumer.run().ok
    assert [str(w.message) for w in caught if issubclass(w.category, FallbackWarning)] == [
        "experiment 'producer' v0 has no condition 'other'; condition 'other' reads the producer's baseline "
        "'data.json' instead"
    ]


def test_a_journal_torn_by_a_crash_does_not_swallow_the_next_entries(tmp_path):
    exp = experiment(tmp_path, replicates=4, fail=("baseline", 2), treatments=[])
    exp.run()
    journal = tmp_path / "producer" / "v0" / "baseline" / "replicates.jsonl"
    journal.write_bytes(journal.read_bytes() + b'[{"replicate": 9, "metr')  # a crash mid-append
    assert experiment(tmp_path, replicates=4, treatments=[]).run(strategy="resume").ok  # only replicate 2 reruns
    from crystallize_artifacts import LocalRunStore

    assert not journal.read_bytes().endswith(b'"metr')  # resume rewrote it without the torn line
    assert (tmp_path / "producer" / "v0" / "baseline" / ".crystallize_complete").exists()
    store = LocalRunStore.open_existing(tmp_path / "producer")
    assert store.completed_condition("baseline") is not None


@pytest.mark.parametrize(
    ("marker", "results"), [(b"[]", None), (None, b"[1]"), (b'{"replicates": 3}', b'{"metrics": 7}')]
)
def test_well_formed_json_of_the_wrong_shape_is_ignored_not_fatal(tmp_path, marker, results):
    experiment(tmp_path, replicates=3, treatments=[]).run()
    folder = tmp_path / "producer" / "v0" / "baseline"
    if marker is not None:
        (folder / ".crystallize_complete").write_bytes(marker)
    if results is not None:
        (folder / "results.json").write_bytes(results)
    resumed = experiment(tmp_path, replicates=3, treatments=[]).run(strategy="resume")
    assert resumed.ok and len(resumed.metrics.baseline.metrics["value"]) == 3
    from crystallize_artifacts import verify_run

    assert isinstance(verify_run(tmp_path / "producer" / "v0"), list)


def test_reading_pruned_artifacts_says_retention_removed_them(tmp_path):
    out = Artifact("x.bin")

    class Save(PipelineStep):
        def __call__(self, data, ctx):
            out.write(b"x")
            return data

    def run():
        return Experiment(
            ten(),
            Pipeline([Save()]),
            outputs=[out],
            name="p",
            plugins=[ArtifactPlugin(tmp_path, versioned=True, artifact_retention=1)],
        ).run()

    producer = Experiment(
        ten(),
        Pipeline([Save()]),
        outputs=[out],
        name="p",
        plugins=[ArtifactPlugin(tmp_path, versioned=True, artifact_retention=1)],
    )
    run()
    run()
    result = Experiment(producer.artifact_datasource("Save", "x.bin", version=0), Pipeline([Save()])).run()
    assert "was removed by artifact retention" in result.errors["baseline"][0].message


def test_a_crystallize_ml_marker_over_a_failed_replicate_is_not_trusted(tmp_path):
    exp = experiment(tmp_path, replicates=3, treatments=[])
    run_dir = tmp_path / "producer" / "v0" / "baseline"
    run_dir.mkdir(parents=True)
    (run_dir.parent / "metadata.json").write_text(json.dumps({"replicates": 3, "id": exp.id, "name": "producer"}))
    (run_dir / "results.json").write_text(json.dumps({"metrics": {"value": [0.1, 0.2]}}))  # one replicate failed
    (run_dir / ".crystallize_complete").touch()
    result = exp.run(strategy="resume")
    assert len(result.metrics.baseline.metrics["value"]) == 3 and len(result.artifacts) == 3
