"""Workers that fail at start-up: reported as such, with the fix, and no junk runs left behind.

A worker process can fail before it runs any replicate: a script without an
``if __name__ == "__main__":`` guard re-runs the experiment in every
``spawn`` worker, or something the run holds cannot be loaded there. The
run stops with :class:`~crystallize.plugin.WorkerStartError` saying so (not
"the worker died while running it"). What it leaves on disk: the run's own
version, marked failed with nothing finished, which ``strategy="resume"``
continues once the cause is fixed. Workers allocate nothing of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crystallize import Experiment, ParallelExecution, Pipeline, PipelineStep, data_source
from crystallize.plugin import WorkerStartError
from crystallize_artifacts import ArtifactPlugin

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SCRIPT = textwrap.dedent(
    """
    import sys
    from crystallize import Experiment, ParallelExecution, Pipeline, PipelineStep, data_source
    from crystallize_artifacts import ArtifactPlugin


    @data_source
    def start(ctx):
        return 0


    class Record(PipelineStep):
        def __call__(self, data, ctx):
            ctx.metrics.add("replicate", ctx["replicate"])
            return data


    experiment = Experiment(
        start(),
        Pipeline([Record()]),
        plugins=[
            ArtifactPlugin(root_dir=sys.argv[1], versioned=True),
            ParallelExecution(2, "process", mp_context="spawn"),
        ],
        replicates=3,
        name="unguarded",
    )
    """
)

UNGUARDED = SCRIPT + "result = experiment.run()\nprint('METRICS', result.metrics.baseline.metrics)\n"
GUARDED = SCRIPT + textwrap.dedent(
    """
    if __name__ == "__main__":
        result = experiment.run(strategy="resume")
        print("METRICS", result.metrics.baseline.metrics)
    """
)


def _versions(experiment_dir: Path) -> list[str]:
    return sorted(p.name for p in experiment_dir.iterdir() if p.is_dir() and p.name.startswith("v"))


def _status(run_dir: Path) -> str:
    return json.loads((run_dir / "metadata.json").read_text())["status"]


def _markers(run_dir: Path) -> list[Path]:
    return sorted(run_dir.rglob(".crystallize_complete"))


def _python(script: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), str(root)],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=script.parent,
    )


def test_a_script_without_a_main_guard_under_spawn_says_so_and_leaves_one_resumable_run(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)

    failed = _python(script, root)

    assert failed.returncode != 0
    assert "crystallize.errors.WorkerStartError" in failed.stderr
    assert 'if __name__ == "__main__":' in failed.stderr and str(script) in failed.stderr
    assert "died while running" not in failed.stderr
    # every worker refused to run the experiment again, before allocating anything
    assert "Experiment.run() was called while this process was starting as a worker" in failed.stderr
    assert _versions(root / "unguarded") == ["v0"]  # the run's own version, nothing from the workers
    assert _status(root / "unguarded" / "v0") == "failed"
    assert _markers(root / "unguarded" / "v0") == []

    script.write_text(GUARDED)  # the fix the message names
    resumed = _python(script, root)

    assert resumed.returncode == 0, resumed.stderr
    assert "METRICS {'replicate': [0, 1, 2]}" in resumed.stdout
    assert _versions(root / "unguarded") == ["v0"]  # resume continued the run it left
    assert _status(root / "unguarded" / "v0") == "completed"
    assert [p.parent.name for p in _markers(root / "unguarded" / "v0")] == ["baseline"]


# -- an object that cannot be loaded in the workers -----------------------------------------------

REFUSE = "CRYSTALLIZE_TEST_REFUSE_WORKERS"


def _load_record_step() -> Record:
    if os.environ.get(REFUSE):
        raise RuntimeError("this step cannot be loaded here: its licence server is unreachable")
    return Record()


class Record(PipelineStep):
    """Records the replicate; loading it in a worker fails while ``REFUSE`` is set (inherited by workers)."""

    def __call__(self, data, ctx):
        ctx.metrics.add("replicate", ctx["replicate"])
        return data

    def __reduce__(self):
        return (_load_record_step, ())


@data_source
def start(ctx):
    return 0


def _experiment(root: Path, start_method: str) -> Experiment:
    return Experiment(
        start(),
        Pipeline([Record()]),
        plugins=[
            ArtifactPlugin(root_dir=str(root), versioned=True),
            ParallelExecution(2, "process", mp_context=start_method),
        ],
        replicates=3,
        name="refused",
    )


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_worker_that_cannot_load_the_run_says_why_and_leaves_one_resumable_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_method: str
) -> None:
    monkeypatch.setenv(REFUSE, "1")
    with pytest.raises(WorkerStartError) as caught:
        _experiment(tmp_path, start_method).run()
    message = str(caught.value)
    assert "could not load the run" in message and "licence server is unreachable" in message
    assert "died while running" not in message
    assert _versions(tmp_path / "refused") == ["v0"]
    assert _status(tmp_path / "refused" / "v0") == "failed"
    assert _markers(tmp_path / "refused" / "v0") == []

    monkeypatch.delenv(REFUSE)
    result = _experiment(tmp_path, start_method).run(strategy="resume")

    assert result.ok, result.errors
    assert result.metrics.baseline.metrics["replicate"] == [0, 1, 2]
    assert _versions(tmp_path / "refused") == ["v0"]
    assert _status(tmp_path / "refused" / "v0") == "completed"
