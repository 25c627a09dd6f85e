import subprocess
import sys
import textwrap

import pytest

from crystallize_artifacts import LocalRunStore, RunLockedError
from crystallize_artifacts.layout import versions


def test_versions_are_allocated_in_order(tmp_path):
    opened = [LocalRunStore.open_for_run(tmp_path, versioned=True, resume=False, durable=False) for _ in range(3)]
    assert [s.version for s in opened] == [0, 1, 2]
    for store in opened:
        store.close("completed")
    assert versions(tmp_path) == [0, 1, 2]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_concurrent_processes_get_distinct_versions(tmp_path):
    script = textwrap.dedent(
        f"""
        import time, sys
        from pathlib import Path
        from crystallize_artifacts import LocalRunStore
        time.sleep(max(0.0, {__import__("time").time() + 1.5} - time.time()))  # start together
        store = LocalRunStore.open_for_run(Path({str(tmp_path)!r}), versioned=True, resume=False, durable=False)
        print(store.version)
        time.sleep(0.3)
        store.close("completed")
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(8)]
    got = sorted(int(p.communicate(timeout=60)[0]) for p in procs)
    assert got == list(range(8))


def test_a_run_folder_in_use_cannot_be_opened_twice(tmp_path):
    first = LocalRunStore.open_for_run(tmp_path, versioned=False, resume=False, durable=False)
    with pytest.raises(RunLockedError, match="being written by another run"):
        LocalRunStore.open_for_run(tmp_path, versioned=False, resume=True, durable=False)
    with pytest.raises(RunLockedError):
        LocalRunStore.open_for_run(tmp_path, versioned=False, resume=False, durable=False)
    first.close("completed")
    second = LocalRunStore.open_for_run(tmp_path, versioned=False, resume=True, durable=False)
    assert second.version == 0 and second.resumed
    second.close("completed")


def test_unversioned_rerun_replaces_v0_without_stale_files(tmp_path):
    store = LocalRunStore.open_for_run(tmp_path, versioned=False, resume=False, durable=False)
    store.write_artifact("baseline", 0, "Step", "old.bin", b"old")
    store.close("completed")
    store = LocalRunStore.open_for_run(tmp_path, versioned=False, resume=False, durable=False)
    store.write_artifact("baseline", 0, "Step", "new.bin", b"new")
    store.close("completed")
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["v0/.lock", "v0/manifest.json", "v0/replicate_0/baseline/Step/new.bin"]


def test_leftovers_of_dead_processes_are_cleaned_once_old(tmp_path):
    import os
    import time

    for name in (".staging-dead", ".trash-dead", ".staging-young"):
        (tmp_path / name).mkdir()
        (tmp_path / name / ".lock").write_text("12345\n")  # nobody holds these locks
    old = time.time() - 3600
    os.utime(tmp_path / ".staging-dead", (old, old))
    os.utime(tmp_path / ".trash-dead", (old, old))
    store = LocalRunStore.open_for_run(tmp_path, versioned=True, resume=False, durable=False)
    store.close("completed")
    # the young one may belong to a process that is just starting
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging-young", "v0"]


def test_read_json_names_a_corrupt_file(tmp_path):
    store = LocalRunStore.open_for_run(tmp_path, versioned=False, resume=False, durable=False)
    (store.dir / "metadata.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"metadata.json: not valid JSON.*corrupt"):
        store.read_json("metadata.json")
    assert store.read_json("absent.json") is None
    store.close("completed")


def test_journal_ignores_a_torn_last_line_and_replicates_whose_files_vanished(tmp_path):
    from crystallize.plugin import ReplicateOutcome

    store = LocalRunStore.open_for_run(tmp_path, versioned=False, resume=False, durable=False)
    for r in range(3):
        record = store.write_artifact("c", r, "S", "a.bin", b"x")
        store.record_replicate(ReplicateOutcome("c", r, {"m": [r]}, None, (record,)), "fp")
    store.close("failed")
    journal = store.dir / "c" / "replicates.jsonl"
    journal.write_bytes(journal.read_bytes() + b'{"replicate": 3, "metr')  # a crash mid-append
    (store.dir / "replicate_1" / "c" / "S" / "a.bin").unlink()
    reopened = LocalRunStore.open_existing(tmp_path)
    found = reopened.finished_replicates("c")
    assert sorted(found) == [0, 2]
    assert found[2].metrics == {"m": [2]} and found[2].fingerprint == "fp"
