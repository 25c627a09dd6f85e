"""SIGKILL a run writing to S3 at commits and at arbitrary times, resume it, compare with an uninterrupted run.

The same child as the local crash tests (crash_child.py), with an ``s3://``
root on the session's moto server: after every crash no completion marker
vouches for a missing or different object, and after resuming every artifact
is byte-identical to an uninterrupted run's and the metrics are equal.
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


def run_child(root: str, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume", **env}
    full_env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        [sys.executable, str(CHILD), root, mode], capture_output=True, text=True, env=full_env, timeout=180
    )


def stored(url: str) -> dict[str, bytes]:
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    base = url.removeprefix("s3://")
    try:
        keys = fs.find(base)
    except FileNotFoundError:
        return {}
    return {k[len(base) + 1 :]: fs.cat_file(k) for k in keys}


def blake3_digest(data: bytes) -> str:
    """The digest the store records for ``data``."""
    return "blake3:" + blake3.blake3(data).hexdigest()


def artifacts(objects: dict[str, bytes]) -> dict[str, str]:
    return {k: blake3_digest(v) for k, v in objects.items() if k.startswith("replicate_")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    done = run_child(str(root), "rerun")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    files = {
        p.relative_to(root / "crashy" / "v0").as_posix(): blake3_digest(p.read_bytes())
        for p in (root / "crashy" / "v0").glob("replicate_*/**/*")
        if p.is_file()
    }
    return {"metrics": summary["metrics"], "files": files}


def assert_markers_vouch_for_complete_objects(objects: dict[str, bytes], reference_files: dict[str, str]) -> None:
    digests = artifacts(objects)
    for key in objects:
        if not key.endswith("/.crystallize_complete"):
            continue
        condition = key.split("/")[0]
        results = json.loads(objects[f"{condition}/results.json"])
        expected = {p: d for p, d in reference_files.items() if f"/{condition}/" in p}
        assert {r["path"] for r in results["artifacts"]} == set(expected)
        for path, digest in expected.items():
            assert digests.get(path) == digest, f"the marker of {condition} vouches for a missing or wrong {path}"


def resume_and_compare(root: str, reference: dict) -> None:
    run_dir = f"{root}/crashy/v0"
    assert_markers_vouch_for_complete_objects(stored(run_dir), reference["files"])
    resumed = run_child(root, "resume")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.splitlines()[-1])
    assert summary["errors"] == 0 and summary["version"] == 0
    assert summary["metrics"] == reference["metrics"]
    objects = stored(run_dir)
    assert artifacts(objects) == reference["files"]
    assert_markers_vouch_for_complete_objects(objects, reference["files"])
    assert sorted(k.split("/")[0] for k in objects if k.endswith(".crystallize_complete")) == ["baseline", "x2", "x3"]
    manifest = json.loads(objects["manifest.json"])
    assert {r["path"]: r["digest"] for r in manifest["artifacts"]} == reference["files"]
    assert json.loads(objects["metadata.json"])["status"] == "completed"


# 1 metadata, then 24 artifacts and 6 journal objects interleaved, 6 results/markers, metadata, manifest
@pytest.mark.parametrize(
    ("point", "phase"), [(1, "after"), (9, "before"), (14, "after"), (31, "after"), (34, "before")]
)
def test_sigkill_at_an_s3_commit_then_resume_equals_an_uninterrupted_run(s3_root, reference, point, phase):
    crashed = run_child(s3_root, "rerun", CRASH_AT=str(point), CRASH_PHASE=phase)
    assert crashed.returncode == -signal.SIGKILL, (crashed.returncode, crashed.stderr)
    resume_and_compare(s3_root, reference)


def test_sigkill_from_outside_while_writing_to_s3_then_resume(s3_root, reference):
    env = {**os.environ, "STEP_DELAY": "0.1", "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume"}
    env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)
    child = subprocess.Popen([sys.executable, str(CHILD), s3_root, "rerun"], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "STARTED"
    time.sleep(1.0)
    child.kill()
    assert child.wait(timeout=30) == -signal.SIGKILL  # killed mid-run (its steps take 2.4 s)
    resume_and_compare(s3_root, reference)
