"""A user's experiment file and helpers to run ``crystallize`` as a real process on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: ``experiments.py`` as a user would write it: a producer with a treatment, a hypothesis and
#: an artifact; a consumer chained to it; the graph of both. The root comes from CRYSTALLIZE_ROOT.
EXPERIMENTS = """
import os
import random
import time
from pathlib import Path

from crystallize import (
    Artifact, Experiment, ExperimentGraph, Hypothesis, Pipeline, SeedPlugin, Treatment, data_source, pipeline_step,
)
from crystallize_artifacts import ArtifactPlugin

ROOT = os.environ["CRYSTALLIZE_ROOT"]


@data_source
def noise(ctx):
    return random.gauss(0.0, 1.0)


model = Artifact("model.bin")


@pipeline_step()
def train(x, ctx, out, lr=0.1, fail_at=-1, block=""):
    if ctx["condition"] == "fast" and ctx["replicate"] == fail_at:
        raise RuntimeError(f"diverged at replicate {fail_at}")
    if block and ctx["condition"] == "fast":
        Path(block).write_text("started")
        time.sleep(600)
    for epoch in range(3):
        ctx.metrics.add("loss", round(abs(x) / (1 + lr * epoch), 4))
    ctx.metrics.add("accuracy", round(0.8 + lr / 10 + x / 100, 5))
    out.write(f"model lr={lr} x={x:.4f}".encode())
    return x


def make_train(name="train"):
    return Experiment(
        noise(),
        Pipeline([train(out=model)]),
        plugins=[SeedPlugin(seed=7), ArtifactPlugin(root_dir=ROOT, versioned=True)],
        outputs=[model],
        treatments=[Treatment("fast", {"lr": 0.5})],
        hypotheses=[Hypothesis(metrics="accuracy", alternative="greater")],
        replicates=6,
        name=name,
    )


exp = make_train()


@pipeline_step()
def evaluate(path, ctx):
    ctx.metrics.add("size", len(Path(path).read_bytes()))
    return path


evaluation = Experiment(
    exp.artifact_datasource(step="train", name="model.bin"),
    Pipeline([evaluate()]),
    plugins=[ArtifactPlugin(root_dir=ROOT, versioned=True)],
    name="evaluate",
)
graph = ExperimentGraph(exp, evaluation)
"""

ENV_DROP = ("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD",)


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    env["CRYSTALLIZE_ROOT"] = str(root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def crystallize_executable() -> str:
    found = Path(sys.executable).with_name("crystallize")
    return str(found) if found.exists() else shutil.which("crystallize") or "crystallize"


def cli(*args: str, root: Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``crystallize ARGS`` in a fresh process with ``$CRYSTALLIZE_ROOT=root``."""
    return subprocess.run(
        [crystallize_executable(), *args],
        cwd=cwd,
        env=environment(root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_json(*args: str, root: Path, cwd: Path) -> object:
    done = cli(*args, "--json", root=root, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
