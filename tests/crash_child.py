"""A child process for the crash tests: runs (or resumes) one experiment.

``python crash_child.py ROOT MODE`` runs the experiment with ``strategy=MODE``
and prints its metrics as JSON. With ``CRASH_AT=<k>`` and
``CRASH_PHASE=before|after``, the process SIGKILLs itself just before or just
after the k-th commit (every atomic file write, and every journal append) —
the instants where a crash is most likely to expose a bug. ROOT may be an
``s3://`` URL: then the commits counted are the object store's writes. With
``STEP_DELAY`` each step sleeps, so a parent can kill it at arbitrary times.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time

from crystallize import Artifact, Experiment, Pipeline, PipelineStep, SeedPlugin, Treatment, data_source
from crystallize_artifacts import ArtifactPlugin

DELAY = float(os.environ.get("STEP_DELAY", "0"))


@data_source
def noise(ctx):
    return [random.random() for _ in range(64)]


class Train(PipelineStep):
    def __init__(self, model: Artifact):
        self.model = model

    def __call__(self, data, ctx):
        if DELAY:
            time.sleep(DELAY)
        weights = [x * ctx.get("scale", 1.0) for x in data]
        self.model.write(weights)
        ctx.metrics.add("loss", sum(weights) / len(weights))
        return weights

    @property
    def params(self):
        return {}


class Report(PipelineStep):
    def __init__(self, report: Artifact):
        self.report = report

    def __call__(self, data, ctx):
        self.report.write(json.dumps({"max": max(data), "rep": ctx["replicate"]}).encode())
        ctx.metrics.add("max", max(data))
        return data

    @property
    def params(self):
        return {}


def build(root: str) -> Experiment:
    model = Artifact("model.bin", writer=lambda w: b"".join(int(x * 1e6).to_bytes(8, "little") for x in w))
    report = Artifact("report.json")
    return Experiment(
        noise(),
        Pipeline([Train(model), Report(report)]),
        plugins=[SeedPlugin(seed=2024, seed_fn=random.seed), ArtifactPlugin(root_dir=root, versioned=True)],
        outputs=[model, report],
        name="crashy",
        treatments=[Treatment("x2", {"scale": 2.0}), Treatment("x3", {"scale": 3.0})],
        replicates=4,
    )


def arm_crash(at: int, phase: str) -> None:
    import crystallize_artifacts.local as local
    import crystallize_artifacts.objects as objects

    count = 0

    def maybe_die(when: str) -> None:
        if when == phase and count == at:
            os.kill(os.getpid(), signal.SIGKILL)

    real_commit = local.write_atomic_at

    def commit(folder, name, data, *, durable=False):
        nonlocal count
        count += 1
        maybe_die("before")
        real_commit(folder, name, data, durable=durable)
        maybe_die("after")

    real_append = local.LocalRunFolder.append_journal

    def append(self, condition, line):
        nonlocal count
        count += 1
        maybe_die("before")
        real_append(self, condition, line)
        maybe_die("after")

    local.write_atomic_at = commit
    local.LocalRunFolder.append_journal = append

    def counted(real):
        def method(self, *args, **kwargs):
            nonlocal count
            count += 1
            maybe_die("before")
            real(self, *args, **kwargs)
            maybe_die("after")

        return method

    # an object store's commits: every whole-object write and every journal object
    for name in ("write", "write_artifact", "append_journal"):
        setattr(objects.ObjectRunFolder, name, counted(getattr(objects.ObjectRunFolder, name)))


if __name__ == "__main__":
    import crystallize_artifacts.journal

    # Write the journal every 2 replicates, never on a timer: the commit
    # sequence is then the same in every run, and journal writes in the middle
    # of a condition are among the crash points.
    crystallize_artifacts.journal.JOURNAL_BATCH = 2
    crystallize_artifacts.journal.JOURNAL_SECONDS = float("inf")
    root, mode = sys.argv[1], sys.argv[2]
    if "CRASH_AT" in os.environ:
        arm_crash(int(os.environ["CRASH_AT"]), os.environ.get("CRASH_PHASE", "before"))
    print("STARTED", flush=True)
    result = build(root).run(strategy=mode)
    metrics = {"baseline": result.metrics.baseline.metrics}
    metrics.update({name: m.metrics for name, m in result.metrics.treatments.items()})
    print(json.dumps({"metrics": metrics, "errors": len(result.errors), "version": result.run.version}))
