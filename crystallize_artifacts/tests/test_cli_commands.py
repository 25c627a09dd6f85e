"""The ``crystallize`` command as people use it: real processes on real run folders.

Runs are made by ``crystallize run`` on a user's ``experiments.py`` (see the
``cli_runs`` fixture), then listed, shown, compared, collected and reported
by further ``crystallize`` processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_project import EXPERIMENTS, cli, cli_json, crystallize_executable, environment

from crystallize_artifacts import load_result

pytestmark = pytest.mark.slow
LEGACY = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "crystallize_ml_0_27"


def test_run_runs_an_experiment_from_a_file_and_prints_its_table(cli_runs):
    _, root, (clean, failed, chained) = cli_runs
    assert clean.returncode == 0, clean.stderr
    lines = clean.stdout.splitlines()
    assert lines[0] == "train v0 (completed): 2 condition(s), 6 replicate(s)"
    assert any(line.split()[:3] == ["fast", "accuracy", "6"] for line in lines)
    assert "accuracy: fast vs baseline" in clean.stdout
    assert f"stored in {root / 'train' / 'v0'}" in clean.stdout
    assert failed.returncode == 1  # a replicate failed: scripts can tell
    assert "override train: train.fail_at = 2" in failed.stderr
    assert "fast replicate 2: RuntimeError: diverged at replicate 2 (in train)" in failed.stdout
    assert chained.returncode == 0, chained.stderr
    assert chained.stdout.startswith("evaluate v0 (completed): 1 condition(s), 6 replicate(s)")


def test_run_refuses_unknown_targets_and_overrides_naming_what_exists(cli_runs):
    project, root, _ = cli_runs
    missing = cli("run", "experiments.py:nope", root=root, cwd=project)
    assert missing.returncode == 2
    assert "experiments.py has no 'nope' (experiments and graphs there: evaluation, exp, graph)" in missing.stderr
    wrong = cli("run", "experiments.py:model", root=root, cwd=project)
    assert wrong.returncode == 2 and "is Artifact, not an Experiment or ExperimentGraph" in wrong.stderr
    override = cli("run", "experiments.py:exp", "-S", "momentum=0.9", root=root, cwd=project)
    assert override.returncode == 2
    assert "no step has a parameter 'momentum' (parameters: " in override.stderr and "train.lr" in override.stderr
    assert not (root / "train" / "v2").exists()  # nothing ran


def test_ls_lists_every_run_with_status_failures_and_lineage(cli_runs):
    project, root, _ = cli_runs
    done = cli("ls", root=root, cwd=project)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows[0][:3] == ["EXPERIMENT", "VERSION", "STATUS"]
    by_run = {(row[0], row[1]): row for row in rows[1:]}
    assert set(by_run) == {("evaluate", "v0"), ("train", "v0"), ("train", "v1")}
    assert by_run["train", "v0"][2] == "completed" and by_run["train", "v1"][2] == "failed"
    assert by_run["evaluate", "v0"][-1] == "train@v1"
    listed = cli_json("ls", str(root), root=project / "elsewhere", cwd=project)
    train_v1 = next(r for r in listed if r["experiment"] == "train" and r["version"] == 1)
    assert (train_v1["failures"], train_v1["replicates"], train_v1["conditions"]) == (1, 6, ["baseline", "fast"])
    assert train_v1["completed"] == ["baseline"]
    only = cli_json("ls", "--experiment", "evaluate", root=root, cwd=project)
    assert [r["upstream"] for r in only] == [["train@v1"]]


def test_ls_exit_codes_say_whether_anything_was_found(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    none = cli("ls", root=empty, cwd=tmp_path)
    assert none.returncode == 1 and f"no runs under {empty}" in none.stdout
    missing = cli("ls", str(tmp_path / "nowhere"), root=empty, cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    default = cli("ls", root=empty, cwd=tmp_path)  # $CRYSTALLIZE_ROOT is the default root
    assert default.returncode == 1


def test_show_prints_the_table_failures_artifacts_and_provenance(cli_runs):
    project, root, _ = cli_runs
    done = cli("show", "train", "--tracebacks", root=root, cwd=project)  # the latest version: v1
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("train v1 (failed): 2 condition(s), 6 replicate(s)")
    assert "fast replicate 2: RuntimeError: diverged at replicate 2 (in train)" in text
    assert 'raise RuntimeError(f"diverged at replicate {fail_at}")' in text  # the traceback
    assert "train  model.bin     11" in text  # 6 + 5 files: the failed replicate's is not vouched for
    assert '"fail_at": 2' in text and f"location: {root / 'train' / 'v1'}" in text
    by_path = cli("show", str(root / "train" / "v0"), root=project / "elsewhere", cwd=project)
    assert by_path.returncode == 0 and by_path.stdout.startswith("train v0 (completed)")


def test_show_json_is_the_stored_result(cli_runs):
    project, root, _ = cli_runs
    shown = cli_json("show", "train@v0", root=root, cwd=project)
    result = load_result(root, "train", version=0)
    assert shown["metrics"] == json.loads(json.dumps(result.to_dict()["metrics"]))
    assert shown["hypotheses"][0]["results"]["fast"]["alternative"] == "greater"
    assert shown["provenance"]["name"] == "train" and shown["status"] == "completed"


def test_show_exit_codes_name_what_exists(cli_runs):
    project, root, _ = cli_runs
    missing = cli("show", "trian", root=root, cwd=project)
    assert missing.returncode == 1
    assert "no runs of experiment 'trian' under" in missing.stderr and "evaluate, train" in missing.stderr
    version = cli("show", "train@v7", root=root, cwd=project)
    assert version.returncode == 1 and "train has no run v7 (versions: v0, v1)" in version.stderr


def test_show_of_a_corrupt_document_names_it_and_exits_3(cli_runs, tmp_path):
    _, root, _ = cli_runs
    copy = tmp_path / "data"
    shutil.copytree(root / "train", copy / "train")
    (copy / "train" / "v1" / "outcome.json").write_text('{"hypotheses": 3}')
    done = cli("show", "train@v1", root=copy, cwd=tmp_path)
    assert done.returncode == 3
    assert "outcome.json" in done.stderr and "hypotheses" in done.stderr


def test_diff_shows_changed_parameters_and_metrics_side_by_side(cli_runs):
    project, root, _ = cli_runs
    done = cli("diff", "train@v0", "@v1", root=root, cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("A = train@v0 (completed)   B = train@v1 (failed)")
    changed = [line.split() for line in done.stdout.splitlines() if line.strip().startswith("params.")]
    assert ["params.train.fail_at", "-1", "2"] in changed
    compared = cli_json("diff", "train@v0", "train@v1", root=root, cwd=project)
    rows = {(r["condition"], r["metric"]): r for r in compared["metrics"]}
    fast = rows["fast", "accuracy"]
    assert (fast["n_a"], fast["n_b"]) == (6, 5)
    assert fast["paired"] and fast["test"] == "sign_flip"  # same SeedPlugin seed: replicate r drew the same data
    assert fast["ci"] == [0.0, 0.0] and fast["p_value"] == 1.0  # same data, same lr: each pair is equal
    assert rows["baseline", "accuracy"]["difference"] == pytest.approx(0.0, abs=1e-12)
    # a parameter is part of the identity: the id changed with it
    assert [c["key"] for c in compared["provenance"]] == ["id", "params.train.fail_at"]
    assert fast["tested_n"] == 5  # the pairs: replicate 2 failed in B


def test_gc_dry_run_deletes_nothing_and_gc_keeps_what_a_consumer_read(cli_runs, tmp_path):
    project, root, _ = cli_runs
    copy = tmp_path / "data"
    shutil.copytree(root, copy)
    third = cli("run", "experiments.py:exp", root=copy, cwd=project)  # train v2: v1 is no longer the newest
    assert third.returncode == 0, third.stderr
    before = sorted(p for p in copy.rglob("*") if p.is_file())
    dry = cli("gc", "--keep", "1", "--dry-run", root=copy, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "train: would drop the artifacts of v0: 12 file(s)" in dry.stdout
    assert "train: kept v1: read by evaluate v0" in dry.stdout
    assert sorted(p for p in copy.rglob("*") if p.is_file()) == before
    done = cli_json("gc", "--keep", "1", root=copy, cwd=tmp_path)
    assert any("dropped the artifacts of v0" in a for a in done["experiments"]["train"])
    assert not list((copy / "train" / "v0").glob("replicate_*/*/*/*"))
    assert len(list((copy / "train" / "v1").glob("replicate_*/*/*/*"))) == 11  # pinned by evaluate v0
    assert load_result(copy, "train", version=0).summary().row("fast", "accuracy").n == 6  # metrics stay
    verify = cli("verify", str(copy / "train"), root=copy, cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout  # what retention removed is listed as pruned
    assert cli("gc", root=copy, cwd=tmp_path).returncode == 2  # says what to keep


def test_verify_on_a_path_holding_no_runs_says_so_and_exits_1(tmp_path):
    done = cli("verify", str(tmp_path), root=tmp_path, cwd=tmp_path)
    assert done.returncode == 1 and "no runs found in" in done.stdout


def test_every_listing_command_works_on_crystallize_ml_027_folders(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(LEGACY, root)
    listed = cli_json("ls", root=root, cwd=tmp_path)
    legacy = [r for r in listed if r["experiment"] == "legacy-train"]
    assert [(r["version"], r["status"], r["format"]) for r in legacy] == [
        (0, "completed", "crystallize-ml 0.27"),
        (1, "completed", "crystallize-ml 0.27"),
    ]
    assert legacy[0]["conditions"] == ["baseline", "deep", "wide"] and legacy[0]["replicates"] == 4
    shown = cli("show", "legacy-train@v1", root=root, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = {tuple(line.split()[:2]): line.split() for line in shown.stdout.splitlines()}
    assert rows["deep", "accuracy"][2] == "3/4"  # 0.27 stored the 3 replicates that succeeded
    assert rows["wide", "accuracy"][2] == "4"
    compared = cli_json("diff", "legacy-train@v0", "@v1", root=root, cwd=tmp_path)
    wide = next(r for r in compared["metrics"] if (r["condition"], r["metric"]) == ("wide", "accuracy"))
    assert wide["difference"] == pytest.approx(0.0, abs=1e-12)  # same seed, same code: the same values
    assert compared["provenance"][0]["key"] == "id"
    assert cli("gc", "--keep", "1", "--dry-run", root=root, cwd=tmp_path).returncode == 0
    report = cli("report", "legacy-train", "-o", str(tmp_path / "legacy.html"), root=root, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "<svg" in (tmp_path / "legacy.html").read_text()


def test_ls_and_show_tell_a_running_run_from_a_crashed_one(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "experiments.py").write_text(EXPERIMENTS)
    root = project / "data"
    started = project / "started"
    process = subprocess.Popen(
        [crystallize_executable(), "run", "experiments.py:exp", "-S", f"block={json.dumps(str(started))}"],
        cwd=project,
        env=environment(root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the run never reached its blocking step"
            time.sleep(0.05)
        [row] = cli_json("ls", root=root, cwd=project)
        assert (row["status"], row["completed"]) == ("running", ["baseline"])
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    [row] = cli_json("ls", root=root, cwd=project)
    assert row["status"] == "crashed"
    shown = cli("show", "train", root=root, cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("train v0 (crashed)")
    rows = {tuple(line.split()[:2]): line.split() for line in shown.stdout.splitlines()}
    assert rows["baseline", "accuracy"][2] == "6"  # completed before the crash: read back
    assert ("fast", "accuracy") not in rows  # never finished a replicate
