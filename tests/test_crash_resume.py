"""SIGKILL a real run at many points, resume it, and compare with an uninterrupted run.

The child (crash_child.py) kills itself just before or just after its k-th
commit — artifact writes, journal appends, results.json, completion
markers, metadata, manifest — or the parent kills it after a delay. After
every crash we check that no completion marker vouches for missing or
partial files; after resuming, that every artifact is byte-identical to an
uninterrupted run's and that the metrics are equal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest

CHILD = Path(__file__).with_name("crash_child.py")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def run_child(root: Path, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume", **env}
    full_env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        [sys.executable, str(CHILD), str(root), mode], capture_output=True, text=True, env=full_env, timeout=120
    )


def blake3_digest(data: bytes) -> str:
    """The digest the store records for ``data``."""
    return "blake3:" + blake3.blake3(data).hexdigest()


def artifacts(run_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(run_dir).as_posix(): blake3_digest(p.read_bytes())
        for p in run_dir.glob("replicate_*/**/*")
        if p.is_file() and not p.name.endswith(".crystallize-tmp")
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    done = run_child(root, "rerun")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["errors"] == 0
    return {"metrics": summary["metrics"], "files": artifacts(root / "crashy" / "v0")}


# The commits of one uninterrupted run of crash_child.py, in order:
CONDITIONS, REPLICATES, ARTIFACTS_PER_REPLICATE = 3, 4, 2
COMMITS = (
    1  # metadata.json (running)
    + CONDITIONS * REPLICATES * ARTIFACTS_PER_REPLICATE  # artifacts
    + CONDITIONS * REPLICATES // 2  # journal lines (the child writes one every 2 replicates)
    + CONDITIONS * 2  # results.json + completion marker
    + 1  # metadata.json (completed)
    + 1  # outcome.json (verdicts and failures; after_run, like the metadata above)
    + 1  # manifest.json
    + 1  # .index.json (the completion index, a cache)
)


def assert_markers_vouch_for_complete_files(run_dir: Path, reference_files: dict[str, str]) -> None:
    for marker in run_dir.glob("*/.crystallize_complete"):
        condition = marker.parent.name
        results = json.loads((marker.parent / "results.json").read_bytes())
        expected = {path: digest for path, digest in reference_files.items() if f"/{condition}/" in path}
        assert {r["path"] for r in results["artifacts"]} == set(expected)
        for path, digest in expected.items():
            file = run_dir / path
            assert file.is_file(), f"marker of {condition} vouches for missing {path}"
            assert blake3_digest(file.read_bytes()) == digest, f"partial or wrong {path}"


def crash_then_resume(root: Path, reference: dict, **crash_env: str) -> None:
    crashed = run_child(root, "rerun", **crash_env)
    assert crashed.returncode == -signal.SIGKILL, (crashed.returncode, crashed.stderr)
    run_dir = root / "crashy" / "v0"
    if run_dir.exists():
        assert_markers_vouch_for_complete_files(run_dir, reference["files"])
    resumed = run_child(root, "resume")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.splitlines()[-1])
    assert summary["errors"] == 0 and summary["version"] == 0
    assert summary["metrics"] == reference["metrics"]
    assert artifacts(run_dir) == reference["files"]
    assert_markers_vouch_for_complete_files(run_dir, reference["files"])
    assert sorted(m.parent.name for m in run_dir.glob("*/.crystallize_complete")) == ["baseline", "x2", "x3"]
    meta = json.loads((run_dir / "metadata.json").read_bytes())
    assert meta["status"] == "completed"
    manifest = json.loads((run_dir / "manifest.json").read_bytes())
    assert {r["path"]: r["digest"] for r in manifest["artifacts"]} == reference["files"]


def test_the_commit_count_is_what_the_crash_points_assume(tmp_path):
    assert run_child(tmp_path / "last", "rerun", CRASH_AT=str(COMMITS), CRASH_PHASE="after").returncode == -9
    assert run_child(tmp_path / "past", "rerun", CRASH_AT=str(COMMITS + 1)).returncode == 0


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("point", range(1, COMMITS + 1))
def test_sigkill_at_a_commit_then_resume_equals_an_uninterrupted_run(tmp_path, reference, point, phase):
    crash_then_resume(tmp_path, reference, CRASH_AT=str(point), CRASH_PHASE=phase)


@pytest.mark.parametrize("delay", [0.15, 0.45, 0.8])
def test_sigkill_from_outside_at_arbitrary_times(tmp_path, reference, delay):
    env = {**os.environ, "STEP_DELAY": "0.01", "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume"}
    env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(tmp_path), "rerun"], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout.readline().strip() == "STARTED"
    time.sleep(delay)
    child.kill()
    child.wait(timeout=30)
    run_dir = tmp_path / "crashy" / "v0"
    if run_dir.exists():
        assert_markers_vouch_for_complete_files(run_dir, reference["files"])
    resumed = run_child(tmp_path, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["metrics"] == reference["metrics"]
    assert artifacts(run_dir) == reference["files"]


def test_repeated_crashes_and_resumes_converge(tmp_path, reference):
    for point in (5, 3, 9, 4, 2):  # each resume is itself killed part-way
        assert run_child(tmp_path, "resume", CRASH_AT=str(point), CRASH_PHASE="after").returncode == -signal.SIGKILL
        assert_markers_vouch_for_complete_files(tmp_path / "crashy" / "v0", reference["files"])
    resumed = run_child(tmp_path, "resume")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.splitlines()[-1])
    assert summary["metrics"] == reference["metrics"] and summary["version"] == 0
    assert artifacts(tmp_path / "crashy" / "v0") == reference["files"]
    assert len(list((tmp_path / "crashy" / "v0").glob("*/.crystallize_complete"))) == 3
    assert sorted(p.name for p in (tmp_path / "crashy").iterdir()) == ["v0"]
