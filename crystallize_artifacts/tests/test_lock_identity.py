"""The run lock means what it says: one live owner per folder, and workers check it.

Real processes throughout: the findings (issue 13, High 1 and High 5) are
races between processes that no single-process test can show.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from artifact_helpers import experiment

from crystallize_artifacts import LocalRunStore, verify_path
from crystallize_artifacts.runlock import RunEndedError

RERUN = textwrap.dedent(
    """
    import json, random, sys, time
    from crystallize import Artifact, Experiment, Pipeline, PipelineStep, SeedPlugin, data_source, hookimpl
    from crystallize_artifacts import ArtifactPlugin, RunLockedError

    @data_source
    def src(ctx):
        return random.random()

    class Save(PipelineStep):
        def __init__(self, out):
            self.out = out
        def __call__(self, data, ctx):
            time.sleep(0.005)
            self.out.write(repr(data).encode())
            ctx.metrics.add("x", data)
            return data
        @property
        def params(self):
            return {}

    HELD = {}

    class Clock:
        plugin_name = "clock"
        @hookimpl
        def before_run(self):  # the run holds its folder's lock from here...
            HELD["from"] = time.monotonic()
        @hookimpl(tryfirst=True)
        def after_run(self):  # ...to after here (the store closes last)
            HELD["to"] = time.monotonic()

    out = Artifact("x.txt")
    exp = Experiment(src(), Pipeline([Save(out)]), outputs=[out], name="shared", replicates=4,
                     plugins=[ArtifactPlugin(sys.argv[1]), SeedPlugin(seed=1), Clock()])
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    try:
        result = exp.run()
    except RunLockedError:
        print(json.dumps({"locked": True}))
    else:
        print(json.dumps({"ok": result.ok, "held": [HELD["from"], HELD["to"]], "run_id": result.run.run_id}))
    """
)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_forty_simultaneous_unversioned_reruns_never_share_v0(tmp_path):
    env = {**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume"}
    env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)
    experiment(tmp_path, name="shared", replicates=1).run()  # an existing v0 to replace
    held = []
    for _ in range(2):
        start = time.time() + 4.0
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RERUN, str(tmp_path), str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(40)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-2000:]
            report = json.loads(out.splitlines()[-1])
            if "locked" not in report:
                assert report["ok"], report
                held.append(report["held"])
    assert held, "no run completed"
    held.sort()
    overlapping = [(a, b) for a, b in itertools.pairwise(held) if b[0] < a[1]]
    assert overlapping == [], "two runs owned v0 at the same time"
    assert verify_path(tmp_path / "shared") == {str(tmp_path / "shared" / "v0"): []}
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["v0"]


def test_a_store_sent_to_a_worker_refuses_to_commit_once_its_run_released_the_lock(tmp_path):
    store = LocalRunStore.open_for_run(tmp_path / "e", versioned=False, resume=False, durable=False)
    worker_copy = pickle.loads(pickle.dumps(store))
    worker_copy.write_artifact("baseline", 0, "Step", "ok.bin", b"while the run holds its lock")
    store.close("completed")
    with pytest.raises(RunEndedError, match="has ended"):
        worker_copy.write_artifact("baseline", 0, "Step", "late.bin", b"after")
    assert not (store.dir / "replicate_0" / "baseline" / "Step" / "late.bin").exists()


def test_a_store_sent_to_a_worker_refuses_a_folder_now_owned_by_another_run(tmp_path):
    first = LocalRunStore.open_for_run(tmp_path / "e", versioned=False, resume=False, durable=False)
    worker_copy = pickle.loads(pickle.dumps(first))
    first.close("interrupted")
    second = LocalRunStore.open_for_run(tmp_path / "e", versioned=False, resume=True, durable=False)
    try:
        with pytest.raises(RunEndedError, match="now written by another run"):
            worker_copy.write_artifact("baseline", 0, "Step", "late.bin", b"from the old run")
    finally:
        second.close("completed")


ORPHAN = textwrap.dedent(
    """
    import pickle, sys, time
    from crystallize_artifacts.runlock import RunEndedError

    store = pickle.loads(open(sys.argv[1], "rb").read())
    print("READY", flush=True)
    sys.stdin.readline()  # the parent is killed meanwhile
    try:
        store.write_artifact("baseline", 0, "Step", "late.bin", b"from an orphaned worker")
        print("COMMITTED")
    except RunEndedError as exc:
        print("REFUSED", exc)
    """
)

PARENT = textwrap.dedent(
    """
    import pickle, subprocess, sys, time
    from crystallize_artifacts import LocalRunStore

    store = LocalRunStore.open_for_run(__import__("pathlib").Path(sys.argv[1]), versioned=False, resume=False,
                                       durable=False)
    open(sys.argv[2], "wb").write(pickle.dumps(store))
    print("LOCKED", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.slow
def test_a_worker_whose_parent_was_killed_cannot_commit_into_the_run(tmp_path):
    env = {**os.environ, "CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD": "1"}
    blob = tmp_path / "store.pickle"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "e"), str(blob)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert parent.stdout.readline().strip() == "LOCKED"
    worker = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(blob)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert worker.stdout.readline().strip() == "READY"
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    out, _ = worker.communicate("go\n", timeout=60)
    assert out.startswith("REFUSED") and "has ended" in out
    assert not (tmp_path / "e" / "v0" / "replicate_0" / "baseline" / "Step" / "late.bin").exists()
