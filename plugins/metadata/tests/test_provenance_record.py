"""What metadata.json records about the code: fingerprints, parameters, git, libraries."""

import importlib.util
import json
import shutil
import subprocess
import time

import pytest

from crystallize import (
    Experiment,
    Pipeline,
    PipelineStep,
    Treatment,
    data_source,
    hookimpl,
    hypothesis,
    pipeline_step,
)
from crystallize.testing import installed_plugins_only
from crystallize_artifacts import ArtifactPlugin
from crystallize_metadata import provenance
from crystallize_metadata.provenance import git_state

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


@pytest.fixture(autouse=True)
def guide_plugins():
    with installed_plugins_only("metadata", "resume"):
        yield


@data_source
def numbers(ctx, n=3, label="x"):
    return list(range(n))


class Scale(PipelineStep):
    def __init__(self, factor):
        self.factor = factor

    def __call__(self, data, ctx):
        ctx.metrics.add("total", sum(data) * self.factor)
        return data


@pipeline_step()
def shift(data, ctx, by=1):
    return [x + by for x in data]


@hypothesis(metrics="total")
def better(verdict):
    return verdict["p_value"]


def test_metadata_records_each_component_with_its_fingerprint_and_parameters(tmp_path):
    exp = Experiment(
        numbers(n=4),
        Pipeline([shift(by=2), Scale(3)]),
        plugins=[ArtifactPlugin(tmp_path)],
        name="recorded",
        treatments=[Treatment("t", {"k": 1})],
        hypotheses=[better],
    )
    exp.run()
    meta = json.loads((tmp_path / "recorded" / "v0" / "metadata.json").read_text())
    identity = meta["identity"]
    assert identity["id"] == meta["id"] == exp.id
    assert identity["datasource"] == {
        "name": "numbers",
        "code": exp.signature()["datasource"]["code"],
        "params": {"n": 4, "label": "x"},
    }
    assert [s["name"] for s in identity["steps"]] == ["shift", "Scale"]
    assert [s["params"] for s in identity["steps"]] == [{"by": 2}, {"factor": 3}]
    assert all(len(s["code"]) == 16 for s in identity["steps"])
    assert identity["steps"][0]["code"] != identity["steps"][1]["code"]
    assert identity["treatments"] == {"t": exp.treatments[0].fingerprint()}
    assert set(identity["hypotheses"]) == {"better"}
    assert meta["signature"] == json.loads(json.dumps(exp.signature()))
    assert meta["python"] and meta["packages"]["crystallize-core"]


def test_libraries_the_experiment_imports_are_recorded(tmp_path):
    pytest.importorskip("numpy")
    exp = Experiment(numbers(), Pipeline([Scale(1)]), plugins=[ArtifactPlugin(tmp_path)], name="libs")
    import sys

    module = sys.modules[__name__]
    import numpy

    module.np = numpy  # as `import numpy as np` at the top of the user's module
    try:
        exp.run()
    finally:
        del module.np
    meta = json.loads((tmp_path / "libs" / "v0" / "metadata.json").read_text())
    assert meta["libraries"]["numpy"] == numpy.__version__
    assert "pytest" in meta["libraries"]  # this module imports it too


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.org")
    git(repo, "config", "user.name", "t")
    (repo / "code.py").write_text("x = 1\n")
    git(repo, "add", "code.py")
    git(repo, "commit", "-q", "-m", "first")
    return repo


@needs_git
def test_git_commit_branch_and_dirty_flag_are_read(repo):
    state = git_state([repo / "code.py"])
    assert state.commit == git(repo, "rev-parse", "HEAD") and state.branch == "main" and state.dirty is False
    assert state.root == str(repo)
    time.sleep(0.01)
    (repo / "code.py").write_text("x = 2\n")  # the experiment's own file changed: asked again
    assert git_state([repo / "code.py"]).dirty is True
    git(repo, "commit", "-q", "-am", "second")
    again = git_state([repo / "code.py"])
    assert again.dirty is False and again.commit == git(repo, "rev-parse", "HEAD") != state.commit
    git(repo, "checkout", "-q", "--detach")
    assert git_state([repo / "code.py"]).branch is None


@needs_git
def test_a_linked_worktree_and_packed_refs_are_understood(repo, tmp_path):
    git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "side"))
    git(repo, "pack-refs", "--all")
    state = git_state([tmp_path / "side" / "code.py"])
    assert state.branch == "side" and state.commit == git(repo, "rev-parse", "side") and state.dirty is False


@needs_git
def test_git_status_runs_once_while_nothing_changes(repo, monkeypatch):
    calls = []
    real = provenance._start_status
    monkeypatch.setattr(provenance, "_start_status", lambda root: calls.append(root) or real(root))
    provenance._dirty_cache.clear()
    for _ in range(5):
        git_state([repo / "code.py"])
    assert len(calls) == 1


@needs_git
def test_git_status_runs_beside_the_run_and_its_answer_is_recorded_when_the_run_ends(repo, monkeypatch):
    provenance._dirty_cache.clear()
    pending = provenance.start_git_state([repo / "code.py"])
    assert pending.known.dirty is None and pending.known.commit == git(repo, "rev-parse", "HEAD")  # not waited for
    assert pending.result().dirty is False
    # the experiment's code, in the repository and not committed: the run's record must say dirty
    (repo / "code.py").write_text(
        "from crystallize import data_source, pipeline_step\n\n"
        "@data_source\ndef one(ctx):\n    return 1\n\n"
        "@pipeline_step()\ndef add(data, ctx):\n    return data + 1\n"
    )
    spec = importlib.util.spec_from_file_location("probe_code", repo / "code.py")
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    seen = []

    class Watch:
        plugin_name = "watch"

        @hookimpl
        def before_replicate(self, ctx):  # metadata.json as the run left it at its start
            seen.append(json.loads((repo / "data" / "probe" / "v0" / "metadata.json").read_text())["git"])

    exp = Experiment(
        code.one(),
        Pipeline([code.add()]),
        plugins=[ArtifactPlugin(repo / "data"), Watch()],
        name="probe",
        replicates=1,
    )
    exp.run()
    final = json.loads((repo / "data" / "probe" / "v0" / "metadata.json").read_text())["git"]
    assert seen[0]["dirty"] is None and seen[0]["commit"] == final["commit"]
    assert final["dirty"] is True and final["root"] == str(repo)


def test_outside_a_repository_there_is_no_git_record(tmp_path):
    (tmp_path / "code.py").write_text("")
    assert git_state([tmp_path / "code.py"]) is None
