"""Helpers shared by the workload scripts.

Every workload script runs under either framework's interpreter: ours (the
workspace venv, where ``import crystallize`` is crystallize-core) or the
crystallize-ml 0.27 venv (where ``import crystallize`` is crystallize-ml).
Both expose the same core names, so a script writes its experiment once and
asks :func:`framework` for the handful of names it needs.

A script prints exactly one JSON line on stdout (see :func:`emit`); anything
else it or the framework prints goes to stderr.

This module imports nothing from either framework at import time, so the
import workload can use it without disturbing its own measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

FRAMEWORKS = ("ours", "cml")

now = time.perf_counter


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every workload accepts."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--framework", choices=FRAMEWORKS, required=True, help="which framework this venv holds")
    p.add_argument("--tmp-dir", default=None, help="where scratch folders are made (default: the system's)")
    return p


def framework(name: str) -> SimpleNamespace:
    """The API names both frameworks share, taken from the installed ``crystallize``.

    Fails loudly when the interpreter holds the other framework, so a mixed-up
    venv can never produce numbers under the wrong label.
    """
    import crystallize as cz

    is_cml = not hasattr(cz, "hookimpl")  # crystallize-ml has no hooks
    if is_cml != (name == "cml"):
        found = "crystallize-ml" if is_cml else "crystallize-core"
        raise SystemExit(f"--framework {name} but this interpreter ({sys.executable}) has {found}")
    if name == "ours":
        from crystallize.plugins.plugins import ArtifactPlugin
    else:
        ArtifactPlugin = cz.ArtifactPlugin
    return SimpleNamespace(
        name=name,
        module=cz,
        Experiment=cz.Experiment,
        Pipeline=cz.Pipeline,
        Treatment=cz.Treatment,
        Artifact=cz.Artifact,
        ArtifactPlugin=ArtifactPlugin,
        ParallelExecution=cz.ParallelExecution,
        pipeline_step=cz.pipeline_step,
        data_source=cz.data_source,
        version=version_of(name),
    )


def version_of(name: str) -> str | None:
    """The installed version of the framework's distribution."""
    from importlib import metadata

    dist = "crystallize-core" if name == "ours" else "crystallize-ml"
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def treatments(fw: SimpleNamespace, conditions: int) -> list[Any]:
    """``conditions - 1`` treatments, so that with the baseline there are ``conditions``."""
    return [fw.Treatment(f"t{i}", {"level": i}) for i in range(1, conditions)]


def warm_up(fw: SimpleNamespace, scratch: Path) -> None:
    """Run a one-replicate experiment so that lazy imports and plugin discovery are paid.

    Everything a framework does once per process (lazily imported modules,
    our entry-point discovery) is excluded from the timed region this way;
    the ``import`` workload reports those costs instead.
    """

    def first(data: Any, ctx: Any) -> Any:
        ctx.metrics.add("warm", data)
        return data

    step = fw.pipeline_step()(first)
    exp = fw.Experiment(
        datasource=constant_source(fw),
        pipeline=fw.Pipeline([step()]),
        plugins=[fw.ArtifactPlugin(root_dir=str(scratch / "warm-up"))],
        treatments=treatments(fw, 2),
        replicates=1,
        name="warm_up",
    )
    exp.run()
    exp.run(strategy="resume")


def constant_source(fw: SimpleNamespace, value: Any = 0) -> Any:
    """A datasource returning ``value`` for every replicate, as each framework spells it."""

    def constant(ctx: Any) -> Any:
        return value

    return fw.data_source(constant)()


@contextmanager
def scratch_dir(tmp_dir: str | None, label: str):
    """A fresh folder, removed afterwards (removal is never timed)."""
    path = Path(tempfile.mkdtemp(prefix=f"crystallize-bench-{label}-", dir=tmp_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def check(condition: bool, message: str) -> None:
    """A sanity check: a wrong result makes the measurement fail, never pass quietly."""
    if not condition:
        raise SystemExit(f"sanity check failed: {message}")


def emit(workload: str, fw_name: str, values: dict[str, float], info: dict[str, Any] | None = None) -> None:
    """Print the measurement as one JSON line (the driver reads the last such line)."""
    record = {
        "workload": workload,
        "framework": fw_name,
        "version": version_of(fw_name),
        "python": sys.version.split()[0],
        "pid": os.getpid(),
        "values": values,
        "info": info or {},
    }
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
