"""Identity and provenance end to end: code edits between processes, collisions, graphs, crashes.

Each scenario writes a small project module into a temporary folder and runs
it in fresh Python processes, editing the module's source between them — as
a user edits a script and runs it again.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crystallize import Experiment
from crystallize.testing import installed_plugins_only

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)

PROJECT = """
import json
import os
import sys
from pathlib import Path

from crystallize import Artifact, Experiment, ExperimentGraph, Pipeline, PipelineStep, data_source, pipeline_step
from crystallize_artifacts import ArtifactPlugin

ROOT = Path(os.environ["PROJECT_ROOT"])
CALLS = ROOT / "calls.log"
VERSIONED = os.environ.get("VERSIONED") == "1"


def note(*what):
    with CALLS.open("a") as log:
        log.write(" ".join(map(str, what)) + "\\n")


@data_source
def numbers(ctx, n=3):
    return list(range(n))


class Train(PipelineStep):
    def __init__(self, out):
        self.out = out

    def __call__(self, data, ctx):
        note("train", ctx["condition"], ctx["replicate"])
        weight = sum(data) * 2  # EDIT-TRAIN
        self.out.write(json.dumps({"weight": weight}).encode())
        ctx.metrics.add("weight", weight)
        return weight

    @property
    def params(self):
        return {}


@pipeline_step()
def evaluate(path, ctx, bonus=0):
    note("evaluate", ctx["condition"], ctx["replicate"])
    weight = json.loads(Path(path).read_text())["weight"]
    ctx.metrics.add("score", weight + bonus)
    return weight


@pipeline_step()
def other(data, ctx):
    note("other", ctx["condition"], ctx["replicate"])
    ctx.metrics.add("other", len(data))
    return data


def plugins():
    return [ArtifactPlugin(root_dir=ROOT / "artifacts", versioned=VERSIONED)]


out = Artifact("model.json")
train = Experiment(numbers(), Pipeline([Train(out)]), plugins=plugins(), outputs=[out], name="train", replicates=2)
score = Experiment(
    train.artifact_datasource("Train", "model.json"), Pipeline([evaluate(bonus=1)]), plugins=plugins(), name="score"
)
side = Experiment(numbers(), Pipeline([other()]), plugins=plugins(), name="side", replicates=2)
graph = ExperimentGraph(train, score, side)


def main(what):
    if what == "graph":
        results = graph.run(strategy="resume")
        summary = {name: {"version": r.run.version, "ok": r.ok} for name, r in results.items()}
        print(json.dumps({"results": summary, "reasons": graph.reasons}))
    else:
        result = train.run(strategy=what)
        print(json.dumps({"version": result.run.version, "weight": result.metrics.baseline.metrics["weight"]}))


if __name__ == "__main__":
    main(sys.argv[1])
"""


class Project:
    """The project module in a folder, run in fresh processes."""

    def __init__(self, folder: Path, *, versioned: bool = False) -> None:
        self.folder = folder
        self.module = folder / "project.py"
        self.module.write_text(PROJECT)
        self.env = {
            **os.environ,
            "PROJECT_ROOT": str(folder),
            "VERSIONED": "1" if versioned else "0",
            "CRYSTALLIZE_LOAD_PLUGINS": "metadata,resume",
        }
        self.env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)

    def edit(self, old: str, new: str) -> None:
        text = self.module.read_text()
        assert old in text
        self.module.write_text(text.replace(old, new))

    def run(self, what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, str(self.module), what],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def output(self, what: str) -> dict:
        return json.loads(self.run(what).stdout.strip().splitlines()[-1])

    def calls(self) -> list[str]:
        log = self.folder / "calls.log"
        lines = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return lines

    def snapshot(self) -> dict[str, bytes]:
        root = self.folder / "artifacts"
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_resume_after_a_code_edit_in_another_process_refuses_naming_the_step(tmp_path):
    project = Project(tmp_path)
    assert project.output("rerun")["weight"] == [6, 6]
    project.calls()
    # whitespace and comments are not changes: resume reuses everything
    project.edit("        weight = sum(data) * 2  # EDIT-TRAIN", "        weight = (sum(data)\n                  * 2)")
    assert project.output("resume")["weight"] == [6, 6] and project.calls() == []

    before = project.snapshot()
    project.edit("* 2)", "* 3)")
    done = project.run("resume", check=False)
    assert done.returncode != 0
    message = done.stderr
    assert "ResumeError" in message and "cannot resume experiment 'train'" in message
    assert "step 1 'Train': code changed (fingerprint " in message and "strategy='rerun'" in message
    old, new = message.split("code changed (fingerprint ")[1].split(")")[0].split(" -> ")
    recorded = json.loads((tmp_path / "artifacts" / "train" / "v0" / "metadata.json").read_text())
    assert recorded["identity"]["steps"][0] == {"name": "Train", "code": old, "params": {}} and new != old
    assert project.calls() == []
    # nothing on disk changed (the lock file's token comes and goes with the attempt)
    assert {k: v for k, v in project.snapshot().items() if not k.endswith(".lock")} == {
        k: v for k, v in before.items() if not k.endswith(".lock")
    }
    # and the way out it names works
    assert project.output("rerun")["weight"] == [9, 9]


def test_an_edited_datasource_parameter_is_named_with_its_values(tmp_path):
    project = Project(tmp_path)
    project.run("rerun")
    project.edit("Experiment(numbers(), Pipeline([Train(out)])", "Experiment(numbers(n=4), Pipeline([Train(out)])")
    message = project.run("resume", check=False).stderr
    assert "datasource 'numbers': parameters changed (fingerprint " in message and "n: 3 -> 4" in message


def test_a_graph_reruns_a_changed_experiment_and_its_dependants_only(tmp_path):
    project = Project(tmp_path, versioned=True)
    first = project.output("graph")
    assert first["reasons"] == {} and {r["version"] for r in first["results"].values()} == {0}
    assert len(project.calls()) == 2 + 2 + 2

    unchanged = project.output("graph")
    assert unchanged["reasons"] == {} and project.calls() == []  # nothing changed: nothing runs
    assert {name: r["version"] for name, r in unchanged["results"].items()} == {"train": 0, "score": 0, "side": 0}

    project.edit("sum(data) * 2  # EDIT-TRAIN", "sum(data) * 5  # EDIT-TRAIN")
    changed = project.output("graph")
    assert {name: r["version"] for name, r in changed["results"].items()} == {"train": 1, "score": 1, "side": 0}
    assert sorted(changed["reasons"]) == ["score", "train"]
    assert "step 1 'Train': code changed" in changed["reasons"]["train"][0]
    assert changed["reasons"]["score"][0] == "upstream 'train' reran"
    assert sorted(line.split()[0] for line in project.calls()) == ["evaluate"] * 2 + ["train"] * 2
    # each rerun says why in its metadata too
    score_meta = json.loads((tmp_path / "artifacts" / "score" / "v1" / "metadata.json").read_text())
    assert score_meta["facts"]["rerun"]["reasons"][0] == "upstream 'train' reran"
    assert (
        json.loads((tmp_path / "artifacts" / "side" / "v0" / "metadata.json").read_text())["facts"].get("rerun") is None
    )

    assert project.output("graph")["reasons"] == {} and project.calls() == []


def test_an_unversioned_graph_reruns_a_changed_experiment_in_place(tmp_path):
    project = Project(tmp_path)
    project.output("graph")
    project.calls()
    project.edit("bonus=1", "bonus=2")
    changed = project.output("graph")
    assert sorted(changed["reasons"]) == ["score"] and "bonus: 1 -> 2" in changed["reasons"]["score"][0]
    assert sorted(p.name for p in (tmp_path / "artifacts" / "score").iterdir() if p.is_dir()) == ["v0"]
    meta = json.loads((tmp_path / "artifacts" / "score" / "v0" / "metadata.json").read_text())
    assert meta["identity"]["steps"][0]["params"] == {"bonus": 2} and meta["status"] == "completed"


def test_the_readme_snippet_and_the_chaining_example_no_longer_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    readme = (REPO / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = runpy.run_path(str(_write(tmp_path / "readme_snippet.py", snippet)))
    producer = runpy.run_path(str(REPO / "examples" / "artifact_chaining" / "experiment1.py"))
    readme_exp, chain_exp = namespace["exp"], producer["exp1"]
    assert isinstance(readme_exp, Experiment) and isinstance(chain_exp, Experiment)
    assert readme_exp.name is None and chain_exp.name is None
    assert readme_exp.id != chain_exp.id
    # in one root, each finds only its own run
    with installed_plugins_only("metadata", "resume"):
        chain_exp.plugins[0] = readme_exp.plugins[0]
        chain = chain_exp.run(replicates=2, strategy="resume")
    assert sorted(chain.metrics.baseline.metrics) == ["mean"]
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == sorted([readme_exp.id, chain_exp.id])


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


KILLED = """
import os
import signal
import sys

from crystallize import Experiment, Pipeline, pipeline_step, data_source
from crystallize_artifacts import ArtifactPlugin


@data_source
def one(ctx):
    return 1


@pipeline_step()
def step(data, ctx):
    if os.environ.get("KILL") == "1" and ctx["replicate"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    ctx.metrics.add("value", data + ctx["replicate"])
    return data


exp = Experiment(one(), Pipeline([step()]), plugins=[ArtifactPlugin(root_dir=sys.argv[1])], name="killed",
                 replicates=4)

if __name__ == "__main__":
    result = exp.run(strategy=sys.argv[2])
    print(result.metrics.baseline.metrics["value"])
"""


@pytest.mark.parametrize("opener", ["locate_run", "resume"])
def test_a_run_killed_with_sigkill_is_recorded_as_crashed_by_the_next_opener(tmp_path, opener, monkeypatch):
    script = _write(tmp_path / "killed.py", KILLED)
    env = {**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "metadata,resume", "KILL": "1"}
    env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)
    root = tmp_path / "root"
    done = subprocess.run([sys.executable, str(script), str(root), "rerun"], env=env, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    run_dir = root / "killed" / "v0"
    assert json.loads((run_dir / "metadata.json").read_text())["status"] == "running"  # as the process left it
    assert (run_dir / ".lock").read_bytes()  # the dead holder's token

    if opener == "locate_run":
        monkeypatch.setattr(sys, "argv", [str(script), str(root)])
        namespace = runpy.run_path(str(script))
        store = namespace["exp"].locate_run()
        assert store is not None and store.crashed is not None and "process" in store.crashed
        meta = json.loads((run_dir / "metadata.json").read_text())
        assert meta["status"] == "crashed" and meta["crashed"]["holder"] == store.crashed
        assert (run_dir / ".lock").read_bytes() == b""  # recorded once: the next reader finds nothing to do
        assert namespace["exp"].locate_run().crashed is None
    env["KILL"] = "0"
    done = subprocess.run(
        [sys.executable, str(script), str(root), "resume"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[1, 2, 3, 4]"
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "completed"
    assert len(meta["interruptions"]) == 1 and meta["interruptions"][0]["status"] == "crashed"
    assert "process" in meta["interruptions"][0]["holder"]
