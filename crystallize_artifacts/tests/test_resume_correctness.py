"""Resume and verify stay correct after crashes, odd steps and changed replicate counts.

Each test reproduces a finding of the adversarial review (issue 13).
"""

from __future__ import annotations

import contextvars
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import ClassVar

import pytest
from artifact_helpers import experiment

from crystallize import Artifact, Experiment, Pipeline, PipelineStep, Treatment, data_source, hookimpl
from crystallize_artifacts import ArtifactPlugin, verify_run


class Ran:
    """Records which (condition, replicate) units ran."""

    plugin_name = "ran"

    def __init__(self):
        self.units = []

    @hookimpl
    def on_replicate_outcome(self, outcome):
        self.units.append((outcome.condition, outcome.replicate))


CRASH_BEFORE_CLOSE = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from artifact_helpers import experiment
    from crystallize import hookimpl

    class DieBeforeClose:
        plugin_name = "die"

        @hookimpl(tryfirst=True)
        def after_run(self):
            os.kill(os.getpid(), signal.SIGKILL)  # every marker is written; the store never closes

    exp = experiment(sys.argv[1], replicates=3, treatments=[])
    exp.plugins.append(DieBeforeClose())
    exp.run(strategy="resume")
    """
)


def test_a_noop_resume_after_a_crash_before_close_rewrites_the_stale_manifest(tmp_path):
    experiment(tmp_path, replicates=3, treatments=[], fail=("baseline", 1)).run()  # manifest without replicate 1
    env = {**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume"}
    child = subprocess.run(
        [sys.executable, "-c", CRASH_BEFORE_CLOSE, str(tmp_path), os.path.dirname(__file__)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr
    run_dir = tmp_path / "producer" / "v0"
    assert (run_dir / "baseline" / ".crystallize_complete").exists()
    spy = Ran()
    exp = experiment(tmp_path, replicates=3, treatments=[])
    exp.plugins.append(spy)
    assert exp.run(strategy="resume").ok and spy.units == []  # nothing to run
    manifest = json.loads((run_dir / "manifest.json").read_bytes())
    assert sorted(r["replicate"] for r in manifest["artifacts"]) == [0, 1, 2]
    (run_dir / "replicate_1" / "baseline" / "ModelStep" / "data.json").write_text("corrupted")
    assert any("replicate_1" in p for p in verify_run(run_dir))


def test_resuming_with_fewer_replicates_warns_and_growing_back_reuses_the_rest(tmp_path):
    experiment(tmp_path, replicates=4).run()
    with pytest.warns(UserWarning, match=r"finished replicate\(s\) beyond that \(replicates 2-3\)"):
        fewer = experiment(tmp_path, replicates=2).run(strategy="resume")
    assert fewer.ok and len(fewer.metrics.baseline.metrics["value"]) == 2
    spy = Ran()
    exp = experiment(tmp_path, replicates=4)
    exp.plugins.append(spy)
    again = exp.run(strategy="resume")
    assert again.ok and spy.units == []  # replicates 2 and 3 were kept, not rerun
    assert len(again.metrics.baseline.metrics["value"]) == 4
    assert verify_run(tmp_path / "producer" / "v0") == []


@data_source
def ten(ctx):
    return 10.0


class WritesTwice(PipelineStep):
    def __init__(self, out):
        self.out = out

    def __call__(self, data, ctx):
        self.out.write(b"first draft")
        self.out.write(b"final")
        return data

    @property
    def params(self):
        return {}


def test_a_step_writing_the_same_artifact_twice_verifies_clean(tmp_path):
    out = Artifact("a.txt")
    exp = Experiment(
        ten(), Pipeline([WritesTwice(out)]), plugins=[ArtifactPlugin(tmp_path)], outputs=[out], name="e", replicates=2
    )
    assert exp.run().ok
    run_dir = tmp_path / "e" / "v0"
    assert verify_run(run_dir) == []
    manifest = json.loads((run_dir / "manifest.json").read_bytes())
    assert len(manifest["artifacts"]) == 2  # one record per path: the last write


class LeavesAThread(PipelineStep):
    """Starts a thread that writes after the run has ended."""

    threads: ClassVar[list[threading.Thread]] = []
    errors: ClassVar[list[BaseException]] = []

    def __init__(self, out):
        self.out = out

    def __call__(self, data, ctx):
        self.out.write(b"committed")
        scope = contextvars.copy_context()

        def late():
            time.sleep(0.5)
            try:
                scope.run(self.out.write, b"written after the run ended")
            except BaseException as exc:  # noqa: BLE001 - recorded for the test
                LeavesAThread.errors.append(exc)

        thread = threading.Thread(target=late)
        thread.start()
        LeavesAThread.threads.append(thread)
        return data

    @property
    def params(self):
        return {}


def test_a_write_from_a_thread_after_the_run_ended_is_refused(tmp_path):
    out = Artifact("a.txt")
    exp = Experiment(ten(), Pipeline([LeavesAThread(out)]), plugins=[ArtifactPlugin(tmp_path)], outputs=[out], name="e")
    assert exp.run().ok
    for thread in LeavesAThread.threads:
        thread.join()
    assert [type(e).__name__ for e in LeavesAThread.errors] == ["RunEndedError"]
    assert "has ended" in str(LeavesAThread.errors[0])
    assert (tmp_path / "e" / "v0" / "replicate_0" / "baseline" / "LeavesAThread" / "a.txt").read_bytes() == b"committed"
    assert verify_run(tmp_path / "e" / "v0") == []


class OddMetrics(PipelineStep):
    def __call__(self, data, ctx):
        ctx.metrics.add("pair", (1, 2))
        ctx.metrics.add("tags", {"b", "a", "c"})
        ctx.metrics.add("by_id", {1: "one", 2: "two"})
        ctx.metrics.add(7, 0.5)
        ctx.metrics.add("nested", [(1, {3: (4,)})])
        return data

    @property
    def params(self):
        return {}


def test_metric_values_have_the_same_types_in_a_fresh_and_a_resumed_result(tmp_path):
    def build():
        return Experiment(
            ten(),
            Pipeline([OddMetrics()]),
            plugins=[ArtifactPlugin(tmp_path)],
            name="e",
            replicates=2,
            treatments=[Treatment("t", {})],
        )

    fresh = build().run()
    resumed = build().run(strategy="resume")
    assert fresh.metrics.baseline.metrics == resumed.metrics.baseline.metrics
    assert fresh.metrics.treatments["t"].metrics == resumed.metrics.treatments["t"].metrics
    assert fresh.metrics.baseline.metrics == {
        "pair": [[1, 2], [1, 2]],
        "tags": [["a", "b", "c"], ["a", "b", "c"]],
        "by_id": [{"1": "one", "2": "two"}] * 2,
        "7": [0.5, 0.5],
        "nested": [[[1, {"3": [4]}]]] * 2,
    }


def test_an_empty_marker_beside_our_results_does_not_disable_the_checksum(tmp_path):
    experiment(tmp_path, replicates=2, treatments=[]).run()
    folder = tmp_path / "producer" / "v0" / "baseline"
    (folder / ".crystallize_complete").write_bytes(b"")
    doc = json.loads((folder / "results.json").read_bytes())
    doc["metrics"]["value"] = [99.0, 98.0]
    doc["replicate_metrics"] = {"0": {"value": [99.0]}, "1": {"value": [98.0]}}
    (folder / "results.json").write_text(json.dumps(doc))  # tampered, and the marker emptied
    assert any("empty" in p for p in verify_run(tmp_path / "producer" / "v0"))
    resumed = experiment(tmp_path, replicates=2, treatments=[]).run(strategy="resume")
    assert 99.0 not in resumed.metrics.baseline.metrics["value"]


def test_metric_lists_of_the_wrong_length_are_not_trusted(tmp_path):
    experiment(tmp_path, replicates=3, treatments=[]).run()
    folder = tmp_path / "producer" / "v0" / "baseline"
    doc = json.loads((folder / "results.json").read_bytes())
    doc["metrics"]["value"] = doc["metrics"]["value"][:2]  # a replicate's value lost
    raw = json.dumps(doc).encode()
    (folder / "results.json").write_bytes(raw)
    import hashlib

    (folder / ".crystallize_complete").write_text(
        json.dumps({"replicates": 3, "results_sha256": hashlib.sha256(raw).hexdigest()})
    )
    assert any("wrong length" in p for p in verify_run(tmp_path / "producer" / "v0"))
    resumed = experiment(tmp_path, replicates=3, treatments=[]).run(strategy="resume")
    assert len(resumed.metrics.baseline.metrics["value"]) == 3
