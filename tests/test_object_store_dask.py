"""A Dask cluster whose workers share no folder writes straight to S3; another process reads the run.

The producer runs in its own process with ``DaskExecution`` (a private
LocalCluster of worker processes) and ``ArtifactPlugin(root_dir="s3://...")``
on the session's moto server: every artifact is streamed by a worker
(``artifact.open("wb")``) into the bucket, nothing lands on a local disk.
A consumer experiment in a further process then chains from the bucket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("distributed")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PRODUCER = textwrap.dedent(
    """
    import json, os, sys
    from crystallize import Artifact, Experiment, Pipeline, PipelineStep, SeedPlugin, Treatment, data_source
    from crystallize_artifacts import ArtifactPlugin
    from crystallize_dask import DaskExecution

    @data_source
    def rows(ctx):
        return list(range(1000 * (ctx["replicate"] + 1)))

    class Save(PipelineStep):
        def __init__(self, out):
            self.out = out
        def __call__(self, data, ctx):
            with self.out.open("wb") as f:  # streamed by the worker into the bucket
                for x in data:
                    f.write(b"%d\\n" % (x * ctx.get("scale", 1)))
            ctx.metrics.add("pid", os.getpid())
            ctx.metrics.add("rows", len(data))
            return data
        @property
        def params(self):
            return {}

    out = Artifact("rows.txt")
    exp = Experiment(rows(), Pipeline([Save(out)]), outputs=[out], name="producer", replicates=4,
                     treatments=[Treatment("triple", {"scale": 3})],
                     plugins=[SeedPlugin(seed=3), ArtifactPlugin(root_dir=sys.argv[1]), DaskExecution(n_workers=2)])
    result = exp.run()
    pids = {p for m in (result.metrics.baseline, result.metrics.treatments["triple"]) for p in m.metrics["pid"]}
    print(json.dumps({"ok": result.ok, "errors": [str(e) for e in result.error_list()], "main": os.getpid(),
                      "pids": sorted(pids), "version": result.run.version}))
    """
)

CONSUMER = textwrap.dedent(
    """
    import json, sys
    from crystallize import Experiment, Pipeline, pipeline_step, Treatment
    from crystallize_artifacts import ArtifactPlugin

    producer = Experiment(None, Pipeline([]), name="producer", plugins=[ArtifactPlugin(root_dir=sys.argv[1])],
                          treatments=[Treatment("triple", {"scale": 3})])

    @pipeline_step()
    def total(data, ctx):
        with data.open("rb") as f:
            ctx.metrics.add("total", sum(int(line) for line in f))
        return data

    consumer = Experiment(producer.artifact_datasource(step="Save", name="rows.txt", require_metadata=True),
                          Pipeline([total()]), name="consumer", treatments=producer.treatments,
                          plugins=[ArtifactPlugin(root_dir=sys.argv[1])])
    result = consumer.run()
    print(json.dumps({"ok": result.ok, "errors": [str(e) for e in result.error_list()],
                      "baseline": result.metrics.baseline.metrics["total"],
                      "triple": result.metrics.treatments["triple"].metrics["total"]}))
    """
)


def run(script: str, root: str, cwd) -> dict:
    env = {**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "metadata,resume"}
    env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)
    done = subprocess.run(
        [sys.executable, "-c", script, root], capture_output=True, text=True, env=env, cwd=cwd, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_dask_workers_write_to_s3_and_another_process_chains_from_it(s3_root, tmp_path):
    producer_cwd, consumer_cwd = tmp_path / "producer", tmp_path / "consumer"
    producer_cwd.mkdir()
    consumer_cwd.mkdir()
    produced = run(PRODUCER, s3_root, producer_cwd)
    assert produced["ok"], produced["errors"]
    assert produced["main"] not in produced["pids"]  # every artifact was written by a worker process
    assert sorted(p.name for p in producer_cwd.iterdir() if not p.name.startswith("dask-")) == []
    consumed = run(CONSUMER, s3_root, consumer_cwd)
    assert consumed["ok"], consumed["errors"]
    expected = [sum(range(1000 * (r + 1))) for r in range(4)]
    assert consumed["baseline"] == expected
    assert consumed["triple"] == [3 * t for t in expected]
    assert list(consumer_cwd.iterdir()) == []  # read from the bucket, nothing written here
