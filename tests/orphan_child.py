"""A child process for the parent-death tests: a run whose replicates sleep.

``python orphan_child.py ROOT ENGINE [START_METHOD]`` runs four replicates
on two workers, ``ENGINE`` being ``process`` (a ``ParallelExecution``
process pool started with ``START_METHOD``) or ``dask`` (a LocalCluster
started by ``DaskExecution``). Each replicate first drops a file named after
its worker's pid into ``ROOT/pids``, then sleeps ``NAP`` seconds, then
writes an artifact. The parent kills this process while the replicates
sleep and checks that the workers die with it and write nothing afterwards.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from crystallize import Artifact, Experiment, ParallelExecution, PipelineStep, data_source
from crystallize_artifacts import ArtifactPlugin

#: How long each replicate sleeps before it writes its artifact.
NAP = 4.0


@data_source
def numbers(ctx):
    return list(range(8))


class Nap(PipelineStep):
    """Announces its worker's pid, sleeps, then writes an artifact."""

    def __init__(self, out: Artifact, pids: str) -> None:
        self.out = out
        self.pids = pids

    @property
    def params(self):
        return {}

    def __call__(self, data, ctx):
        folder = Path(self.pids)
        name = f"{os.getpid()}-{ctx['condition']}-{ctx['replicate']}"
        (folder / f".{name}").write_text(str(os.getpid()))
        os.replace(folder / f".{name}", folder / name)
        time.sleep(NAP)
        self.out.write(b"written after the nap")
        return data


def engine(kind: str, start_method: str | None):
    if kind == "process":
        return ParallelExecution(max_workers=2, executor_type="process", mp_context=start_method)
    from crystallize_dask import DaskExecution

    return DaskExecution(n_workers=2)


if __name__ == "__main__":
    root = Path(sys.argv[1])
    kind = sys.argv[2]
    start_method = sys.argv[3] if len(sys.argv) > 3 else None
    (root / "pids").mkdir(parents=True)
    out = Artifact("nap.txt")
    experiment = Experiment(
        numbers(),
        [Nap(out, str(root / "pids"))],
        plugins=[ArtifactPlugin(root_dir=str(root / "store")), engine(kind, start_method)],
        outputs=[out],
        name="orphans",
        replicates=4,
    )
    print("STARTED", flush=True)
    experiment.run()
