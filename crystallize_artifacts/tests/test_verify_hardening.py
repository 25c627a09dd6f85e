"""``verify`` never crashes and never says "ok" for a run it could not check.

Each test reproduces a finding of the adversarial review (issue 13).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from artifact_helpers import experiment

from crystallize_artifacts import verify_path, verify_run


@pytest.fixture
def run_dir(tmp_path):
    experiment(tmp_path, replicates=2).run()
    return tmp_path / "producer" / "v0"


@pytest.mark.parametrize(
    "content",
    [b"null", b"{}", b"[]", b"7", b'{"artifacts": 5}', b'{"artifacts": [1, "x", null]}', b'{"pruned": 3}'],
)
def test_a_manifest_of_the_wrong_shape_is_a_problem_not_a_crash(run_dir, content):
    (run_dir / "manifest.json").write_bytes(content)
    problems = verify_run(run_dir)
    assert problems and all("manifest.json" in p for p in problems)


@pytest.mark.parametrize("content", [b"[]", b"5", b'{"replicates": "3"}', b'{"results_sha256": 1}'])
def test_a_marker_of_the_wrong_shape_is_a_problem_not_a_crash(run_dir, content):
    (run_dir / "baseline" / ".crystallize_complete").write_bytes(content)
    problems = verify_run(run_dir)
    assert any(".crystallize_complete" in p for p in problems)


@pytest.mark.parametrize("which", ["manifest.json", "baseline/results.json", "baseline/.crystallize_complete", "art"])
def test_a_folder_where_a_file_should_be_is_a_problem(run_dir, which):
    if which == "art":
        which = "replicate_0/baseline/ModelStep/data.json"
    path = run_dir / which
    path.unlink()
    path.mkdir()
    problems = verify_run(run_dir)
    assert any("a folder, not a file" in p for p in problems)


def test_an_unreadable_file_is_a_problem(run_dir, monkeypatch):
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if path == "data.json":
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    assert any("cannot be read (Permission denied)" in p for p in verify_run(run_dir))


def test_an_artifact_replaced_by_a_link_is_a_problem(run_dir, tmp_path):
    artifact = run_dir / "replicate_0" / "baseline" / "ModelStep" / "data.json"
    copy = tmp_path / "same-bytes.json"
    copy.write_bytes(artifact.read_bytes())
    artifact.unlink()
    artifact.symlink_to(copy)  # the same bytes: only refusing the link catches it
    assert any("symbolic link" in p for p in verify_run(run_dir))


def test_verify_path_of_a_file_is_a_clear_error(run_dir):
    from crystallize_artifacts.verify import NoRunsError

    with pytest.raises(NoRunsError, match="not a folder"):
        verify_path(run_dir / "manifest.json")


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "crystallize", "verify", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume"},
    )


@pytest.mark.slow
def test_the_command_on_a_path_without_runs_says_so_and_fails(tmp_path):
    (tmp_path / "empty").mkdir()
    done = cli(tmp_path / "empty")
    assert done.returncode == 1 and "no runs found" in done.stdout
    (tmp_path / "file.txt").write_text("x")
    done = cli(tmp_path / "file.txt")
    assert done.returncode == 2 and "not a folder" in done.stdout and "Traceback" not in done.stderr
