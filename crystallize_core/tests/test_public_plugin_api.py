"""A plugin needs nothing but crystallize.plugin: storage, an execution engine and an observer."""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import public_api_plugins as plugins
from public_api_plugins import TALLY, FolderStorage, PoolEngine, Tally

from crystallize import Artifact, Experiment, Pipeline, PipelineStep, Treatment, data_source
from crystallize.plugin import EXECUTION_FACT


def test_the_plugins_import_only_the_standard_library_and_crystallize_plugin():
    tree = ast.parse(Path(plugins.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    outside = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names and m != "__future__"}
    assert outside == {"crystallize.plugin"}


@data_source
def numbers(ctx):
    return [ctx["replicate"], 2, 3]


class Model(PipelineStep):
    def __init__(self, out, fail_at=None):
        self.out = out
        self.fail_at = fail_at

    def __call__(self, data, ctx):
        value = sum(data) * ctx.get("scale", 1)
        self.out.write(json.dumps(value).encode())
        ctx.metrics.add("value", value)
        if (ctx["condition"], ctx["replicate"]) == self.fail_at:
            raise RuntimeError("planned failure")
        return data


def build(root, fail_at=None):
    out = Artifact("model.json")
    return Experiment(
        numbers(),
        Pipeline([Model(out, fail_at)]),
        plugins=[FolderStorage(root), PoolEngine(2), Tally()],
        outputs=[out],
        name="public",
        treatments=[Treatment("double", {"scale": 2})],
        replicates=4,
    )


def test_storage_engine_and_observer_run_an_experiment_together(tmp_path):
    result = build(tmp_path, fail_at=("double", 3)).run()
    assert [(e.condition, e.replicate, e.message) for e in result.error_list()] == [("double", 3, "planned failure")]
    baseline = result.metrics.baseline.metrics
    assert baseline["value"] == [5, 6, 7, 8]
    # the engine ran replicates in other processes, each started by on_worker_start first
    assert os.getpid() not in baseline["worker"] and all(baseline["started_here"])
    assert result.run.facts[EXECUTION_FACT] == {"engine": "pool", "workers": 2}
    assert result.run.facts[TALLY] == {"outcomes": 8, "failed": 1, "artifacts": 8}  # the failed one wrote first
    # the store holds every committed artifact, the journal, and the complete condition only
    run_dir = tmp_path / "public" / "v0"
    assert json.loads((run_dir / "replicate_2" / "double" / "Model" / "model.json").read_bytes()) == 14
    in_order = sorted((r for r in result.artifacts if r.condition == "baseline"), key=lambda r: r.replicate)
    assert baseline["written"] == [r.digest for r in in_order]  # metrics are in replicate order
    assert all(r.digest.startswith("sha512:") for r in in_order)  # a store picks its own algorithm
    assert (run_dir / "baseline" / "complete.json").is_file() and not (run_dir / "double" / "complete.json").exists()
    assert json.loads((run_dir / "status.json").read_bytes()) == {"status": "failed"}


def test_the_folder_store_keeps_what_the_run_vouched_for(tmp_path):
    build(tmp_path, fail_at=("double", 3)).run()
    located = build(tmp_path).locate_run()
    assert located is not None and located.completed_condition("baseline").metrics["value"] == [5, 6, 7, 8]
    assert sorted(located.finished_replicates("double")) == [0, 1, 2]
