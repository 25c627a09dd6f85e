"""The experiment the Dask tests run, in a module of its own.

The test module loads this file and registers it with
``cloudpickle.register_pickle_by_value``, so its steps and datasource travel
to Dask workers by value and workers never need to import it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

from crystallize import Artifact, Experiment, PipelineStep, SeedPlugin, Treatment, data_source, pipeline_step
from crystallize_artifacts import ArtifactPlugin

SEED = 20240611
REPLICATES = 4


@data_source
def draws(ctx: Any, n: int = 6) -> list[float]:
    return [random.random() for _ in range(n)]


@pipeline_step()
def jitter(data: list[float], ctx: Any, scale: float = 1.0) -> list[float]:
    # ``scale`` is not passed to the factory, so the treatment's key reaches it.
    values = [x * scale + random.gauss(0.0, 0.1) for x in data]
    ctx.metrics.add("mean", sum(values) / len(values))
    return values


class Report(PipelineStep):
    """Writes the replicate's numbers as an artifact and records one more draw."""

    def __init__(self, out: Artifact) -> None:
        self.out = out

    @property
    def params(self) -> dict[str, Any]:
        return {"out": self.out.name}

    def __call__(self, data: list[float], ctx: Any) -> list[float]:
        lines = [f"{ctx['condition']} replicate={ctx['replicate']} seed={ctx['seed_used']}"]
        lines += [repr(x) for x in data]
        self.out.write("\n".join(lines).encode())
        ctx.metrics.add("draw", random.random())
        return data


class KillOnce(PipelineStep):
    """SIGKILLs its own (worker) process at one unit, unless ``marker`` exists.

    The marker is created just before the kill, so the replicate succeeds
    whenever it runs again (a Dask retry or a resumed run).
    """

    def __init__(self, marker: str, condition: str = "baseline", replicate: int = 1) -> None:
        self.marker = marker
        self.condition = condition
        self.replicate = replicate

    def __call__(self, data: Any, ctx: Any) -> Any:
        if (ctx["condition"], ctx["replicate"]) == (self.condition, self.replicate):
            marker = Path(self.marker)
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        return data


class Gate(PipelineStep):
    """At one unit, publishes its Dask worker's addresses and waits until ``folder/open`` exists.

    The test attacks the cluster while the run is held here, then opens the
    gate; the step draws nothing, so the run still equals the serial one.
    """

    def __init__(self, folder: str, condition: str = "baseline", replicate: int = 0) -> None:
        self.folder = folder
        self.condition = condition
        self.replicate = replicate

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def __call__(self, data: Any, ctx: Any) -> Any:
        if (ctx["condition"], ctx["replicate"]) != (self.condition, self.replicate):
            return data
        from distributed import get_worker

        worker = get_worker()
        folder = Path(self.folder)
        addresses = {"scheduler": worker.scheduler.address, "worker": worker.address, "nanny": worker.nanny}
        (folder / "addresses.tmp").write_text(json.dumps(addresses))
        os.replace(folder / "addresses.tmp", folder / "addresses.json")
        deadline = time.monotonic() + 120
        while not (folder / "open").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the test never opened the gate")
            time.sleep(0.05)
        return data


class HoldsLock(PipelineStep):
    """A step holding an object that does not pickle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def __call__(self, data: Any, ctx: Any) -> Any:
        return data


def build(
    root: Path,
    executor: Any = None,
    *,
    name: str = "dask-equivalence",
    kill_marker: Path | None = None,
    unpicklable: bool = False,
    gate: Path | None = None,
) -> Experiment:
    """The test experiment: seeded draws, a treatment, metrics and an artifact per replicate."""
    out = Artifact("numbers.txt")
    steps: list[Any] = [jitter()]
    if kill_marker is not None:
        steps.append(KillOnce(str(kill_marker)))
    if gate is not None:
        steps.append(Gate(str(gate)))
    if unpicklable:
        steps.append(HoldsLock())
    steps.append(Report(out))
    plugins: list[Any] = [SeedPlugin(seed=SEED), ArtifactPlugin(root_dir=root)]
    if executor is not None:
        plugins.append(executor)
    return Experiment(
        datasource=draws(),
        pipeline=steps,
        plugins=plugins,
        outputs=[out],
        name=name,
        treatments=[Treatment("scaled", {"scale": 3.0})],
        replicates=REPLICATES,
    )


@pipeline_step()
def busy(data: list[float], ctx: Any, seconds: float = 0.05) -> list[float]:
    """Keeps the worker's task thread busy between the seeding and a draw."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sum(range(1000))
    ctx.metrics.add("late_draw", random.random())
    return data


def build_busy(executor: Any = None) -> Experiment:
    """Replicates long enough for a Dask worker's own threads to be active while they draw."""
    plugins: list[Any] = [SeedPlugin(seed=SEED)]
    if executor is not None:
        plugins.append(executor)
    return Experiment(
        datasource=draws(),
        pipeline=[busy()],
        plugins=plugins,
        name="dask-busy",
        treatments=[Treatment("scaled", {"scale": 3.0})],
        replicates=12,
    )


def artifact_files(root: Path, name: str = "dask-equivalence") -> dict[str, bytes]:
    """``{path relative to the run folder: bytes}`` of every artifact of the latest run."""
    run_dir = max((root / name).glob("v*"), key=lambda p: int(p.name[1:]))
    return {
        str(path.relative_to(run_dir)): path.read_bytes()
        for path in sorted(run_dir.glob("replicate_*/**/*"))
        if path.is_file()
    }
