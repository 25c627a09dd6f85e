"""Five runs of one experiment started at once get five distinct, complete versions."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCRIPT = textwrap.dedent(
    """
    import sys, time, random
    from crystallize import Artifact, Experiment, Pipeline, PipelineStep, SeedPlugin, Treatment, data_source
    from crystallize_artifacts import ArtifactPlugin

    @data_source
    def src(ctx):
        return random.random()

    class Save(PipelineStep):
        def __init__(self, out):
            self.out = out
        def __call__(self, data, ctx):
            time.sleep(0.01)
            self.out.write(repr(data).encode())
            ctx.metrics.add("x", data)
            return data

    out = Artifact("x.txt")
    exp = Experiment(src(), Pipeline([Save(out)]), outputs=[out], name="shared", replicates=5,
                     treatments=[Treatment("t", {})],
                     plugins=[ArtifactPlugin(sys.argv[1], versioned=True), SeedPlugin(seed=1)])
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    print(exp.run().run.version)
    """
)


def test_five_concurrent_versioned_runs(tmp_path):
    start = time.time() + 2.0
    env = {**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume"}
    env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path), str(start)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(5)
    ]
    versions = sorted(int(p.communicate(timeout=120)[0]) for p in procs)
    assert versions == [0, 1, 2, 3, 4]
    exp_dir = tmp_path / "shared"
    assert sorted(p.name for p in exp_dir.iterdir()) == [f"v{v}" for v in range(5)]
    for v in range(5):
        run_dir = exp_dir / f"v{v}"
        meta = json.loads((run_dir / "metadata.json").read_bytes())
        assert meta["status"] == "completed" and meta["version"] == v
        for condition in ("baseline", "t"):
            assert (run_dir / condition / ".crystallize_complete").exists()
            assert len(list(run_dir.glob(f"replicate_*/{condition}/Save/x.txt"))) == 5
        assert len(json.loads((run_dir / "manifest.json").read_bytes())["artifacts"]) == 10
