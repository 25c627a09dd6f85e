import json

import pytest
from artifact_helpers import ModelStep, draws, experiment

from crystallize import Experiment, Pipeline, PipelineStep, ResumeError, SeedPlugin, Treatment, hookimpl
from crystallize.plugin import RESUME_FACT
from crystallize_artifacts import ArtifactPlugin


class Ran:
    """Records which units actually ran."""

    def __init__(self):
        self.units = []

    @hookimpl
    def on_replicate_outcome(self, outcome):
        self.units.append((outcome.condition, outcome.replicate))


def with_spy(exp):
    spy = Ran()
    exp.plugins.append(spy)
    return exp, spy


def test_resume_of_a_complete_run_runs_nothing_and_returns_the_same_result(tmp_path):
    first = experiment(tmp_path, replicates=3).run()
    exp, spy = with_spy(experiment(tmp_path, replicates=3))
    again = exp.run(strategy="resume")
    assert spy.units == []
    assert again.metrics == first.metrics
    assert again.run.version == 0 and again.run.facts[RESUME_FACT]["complete_conditions"] == ["baseline", "double"]


def test_a_failed_condition_is_rerun_and_nothing_else(tmp_path):
    failed = experiment(tmp_path, replicates=4, fail=("double", 2)).run()
    assert list(failed.errors) == ["double"]
    exp, spy = with_spy(experiment(tmp_path, replicates=4))
    resumed = exp.run(strategy="resume")
    assert spy.units == [("double", 2)]
    assert resumed.ok and resumed.run.version == 0
    clean = experiment(tmp_path / "clean", replicates=4).run()
    assert resumed.metrics == clean.metrics
    assert (tmp_path / "producer" / "v0" / "double" / ".crystallize_complete").exists()
    meta = json.loads((tmp_path / "producer" / "v0" / "metadata.json").read_bytes())
    assert meta["status"] == "completed" and len(meta["resumed_at"]) == 1


def test_resume_continues_the_latest_version_in_place(tmp_path):
    experiment(tmp_path, versioned=True).run()
    experiment(tmp_path, versioned=True, fail=("baseline", 0)).run()
    resumed = experiment(tmp_path, versioned=True).run(strategy="resume")
    assert resumed.run.version == 1 and resumed.ok
    assert sorted(p.name for p in (tmp_path / "producer").iterdir()) == ["v0", "v1"]


def test_resume_with_nothing_stored_runs_everything(tmp_path):
    exp, spy = with_spy(experiment(tmp_path, replicates=2))
    assert exp.run(strategy="resume").ok
    assert len(spy.units) == 4


def test_a_changed_pipeline_is_refused_and_nothing_is_touched(tmp_path):
    experiment(tmp_path, replicates=2, fail=("double", 1)).run()
    before = {p: p.read_bytes() for p in (tmp_path / "producer").rglob("*") if p.is_file()}

    class Other(ModelStep):
        pass

    changed = experiment(tmp_path, replicates=2)
    changed.pipeline.steps[0] = Other(changed.outputs["data.json"])
    changed._id = None
    with pytest.raises(
        ResumeError, match=r"changed since that run:\n  - step 1 was replaced \('ModelStep' -> 'Other'\)"
    ):
        changed.run(strategy="resume")
    after = {p: p.read_bytes() for p in (tmp_path / "producer").rglob("*") if p.is_file()}
    assert after == before


def test_a_changed_treatment_reruns_that_condition_only(tmp_path):
    experiment(tmp_path, replicates=2).run()
    exp, spy = with_spy(experiment(tmp_path, replicates=2, treatments=[Treatment("double", {"scale": 3.0})]))
    result = exp.run(strategy="resume")
    assert sorted(spy.units) == [("double", 0), ("double", 1)]
    assert (
        result.metrics.treatments["double"].metrics
        == experiment(tmp_path / "fresh", replicates=2, treatments=[Treatment("double", {"scale": 3.0})])
        .run()
        .metrics.treatments["double"]
        .metrics
    )


def test_more_replicates_reuse_the_finished_ones(tmp_path):
    experiment(tmp_path, replicates=2).run()
    exp, spy = with_spy(experiment(tmp_path, replicates=4))
    result = exp.run(strategy="resume")
    assert sorted(spy.units) == [("baseline", 2), ("baseline", 3), ("double", 2), ("double", 3)]
    assert result.metrics == experiment(tmp_path / "fresh", replicates=4).run().metrics


class Interrupting(PipelineStep):
    """Raises KeyboardInterrupt at one unit, as Ctrl-C would."""

    def __init__(self, out, at):
        self.inner = ModelStep(out)
        self.at = at

    def __call__(self, data, ctx):
        if (ctx["condition"], ctx["replicate"]) == self.at:
            raise KeyboardInterrupt
        return self.inner(data, ctx)

    @property
    def step_name(self):
        return "ModelStep"

    @property
    def params(self):
        return {}


def test_replicates_finished_inside_an_unfinished_condition_are_skipped(tmp_path):
    exp = experiment(tmp_path, replicates=5)
    out = exp.outputs["data.json"]
    exp.pipeline.steps[0] = Interrupting(out, ("baseline", 3))
    with pytest.raises(KeyboardInterrupt):
        exp.run()
    meta = json.loads((tmp_path / "producer" / "v0" / "metadata.json").read_bytes())
    assert meta["status"] == "interrupted"
    resumed_exp, spy = with_spy(experiment(tmp_path, replicates=5))
    resumed_exp.pipeline.steps[0] = Interrupting(resumed_exp.outputs["data.json"], None)  # the same code
    result = resumed_exp.run(strategy="resume")
    assert spy.units[:2] == [("baseline", 3), ("baseline", 4)] and len(spy.units) == 7
    assert result.metrics == experiment(tmp_path / "fresh", replicates=5).run().metrics


def test_resume_is_refused_while_another_process_writes_the_run(tmp_path):
    from crystallize_artifacts import LocalRunStore, RunLockedError

    experiment(tmp_path).run()
    holder = LocalRunStore.open_for_run(tmp_path / "producer", versioned=False, resume=True, durable=False)
    try:
        with pytest.raises(RunLockedError, match="being written by another run"):
            experiment(tmp_path).run(strategy="resume")
    finally:
        holder.close("completed")


class Uneven(PipelineStep):
    """Replicate r records "loss" r times and "acc" once: no columns for this split."""

    def __call__(self, data, ctx):
        r = ctx["replicate"]
        ctx.metrics.add("acc", r / 10)
        for i in range(r):
            ctx.metrics.add("loss", r * 10 + i)
        return data

    @property
    def params(self):
        return {}


def test_the_index_keeps_columns_only_for_one_value_per_replicate_and_resume_rebuilds_both_exactly(tmp_path):
    from artifact_helpers import draws as source

    def build(step, name):
        return Experiment(
            source(), Pipeline([step]), plugins=[SeedPlugin(3), ArtifactPlugin(tmp_path)], name=name, replicates=3
        )

    even = experiment(tmp_path, replicates=3).run()
    uneven = build(Uneven(), "uneven").run()
    even_index = json.loads((tmp_path / "producer" / "v0" / ".index.json").read_bytes())["conditions"]
    uneven_index = json.loads((tmp_path / "uneven" / "v0" / ".index.json").read_bytes())["conditions"]
    assert even_index["baseline"]["replicate_metrics"] == "columns"
    assert even_index["baseline"]["seeds"] == even.metrics.baseline.seeds  # a list beside columns
    assert uneven_index["baseline"]["replicate_metrics"] == {
        "0": {"acc": [0.0]},
        "1": {"acc": [0.1], "loss": [10]},
        "2": {"acc": [0.2], "loss": [20, 21]},
    }
    for again, first in (
        (experiment(tmp_path, replicates=3).run(strategy="resume"), even),
        (build(Uneven(), "uneven").run(strategy="resume"), uneven),
    ):
        for resumed, fresh in (
            (again.metrics.baseline, first.metrics.baseline),
            *((again.metrics.treatments[t], first.metrics.treatments[t]) for t in first.metrics.treatments),
        ):
            assert resumed.metrics == fresh.metrics and resumed.by_replicate == fresh.by_replicate
            assert resumed.seeds == fresh.seeds and resumed.missing == fresh.missing == ()


@pytest.mark.parametrize(
    "damage",
    [
        {"metrics": {"value": ["one value for three replicates"]}},
        {"seeds": [1, 2]},
        {"seeds": {"0": 1}},
        {"replicates": None},
    ],
)
def test_a_columns_entry_that_does_not_add_up_is_not_trusted_and_the_files_are_read(tmp_path, damage):
    from crystallize_artifacts.commit import write_atomic

    first = experiment(tmp_path, replicates=3).run()
    index_path = tmp_path / "producer" / "v0" / ".index.json"
    index = json.loads(index_path.read_bytes())
    assert index["conditions"]["baseline"]["replicate_metrics"] == "columns"
    index["conditions"]["baseline"].update(damage)
    write_atomic(index_path, json.dumps(index).encode())
    exp, spy = with_spy(experiment(tmp_path, replicates=3))
    resumed = exp.run(strategy="resume")
    assert spy.units == [] and resumed.metrics == first.metrics
    assert resumed.metrics.baseline.by_replicate == first.metrics.baseline.by_replicate
    rebuilt = json.loads(index_path.read_bytes())["conditions"]["baseline"]
    assert rebuilt["metrics"] == first.metrics.baseline.metrics and rebuilt["seeds"] == first.metrics.baseline.seeds


def test_index_split_is_columns_only_when_every_replicate_recorded_exactly_the_flat_values():
    from crystallize_artifacts.completion import index_split

    nan = float("nan")
    flat = {"a": [1, nan], "b": ["x", "y"]}
    split = {"0": {"a": [1], "b": ["x"]}, "1": {"a": [nan], "b": ["y"]}}
    assert index_split(split, flat, 2) == "columns"
    assert index_split({}, {}, 0) == {} and index_split(None, flat, 2) is None
    for other in (
        {"0": split["0"]},  # a replicate missing
        {**split, "1": {"a": [nan, 2], "b": ["y"]}},  # a metric recorded twice
        {**split, "1": {"a": [nan]}},  # a metric not recorded
        {**split, "1": {"a": [nan], "b": ["y"], "c": [0]}},  # a metric the flat values lack
        {**split, "1": {"a": [nan], "b": ["z"]}},  # a value that differs
        {**split, "2": split["1"]},  # more replicates than the count
    ):
        assert index_split(other, flat, 2) is other
    assert index_split(split, flat, 3) is split


def test_unnamed_experiment_resumes_under_its_id(tmp_path):
    out_exp = Experiment(
        draws(),
        Pipeline([ModelStep(experiment(tmp_path).outputs["data.json"])]),
        plugins=[SeedPlugin(1), ArtifactPlugin(tmp_path)],
        outputs=[experiment(tmp_path).outputs["data.json"]],
        replicates=2,
    )
    out_exp.run()
    assert (tmp_path / out_exp.id / "v0" / "baseline" / ".crystallize_complete").exists()


def test_the_completion_index_is_trusted_only_while_its_files_are_unchanged(tmp_path):
    from crystallize_artifacts.commit import write_atomic

    first = experiment(tmp_path, replicates=2).run()
    run_dir = tmp_path / "producer" / "v0"
    index_path = run_dir / ".index.json"
    index = json.loads(index_path.read_bytes())
    assert set(index["conditions"]) == {"baseline", "double"}
    # Plant values only the index holds: if resume reports them, it read the index, not the files.
    # (One value per replicate: the entry keeps its split as these columns.)
    assert index["conditions"]["baseline"]["replicate_metrics"] == "columns"
    index["conditions"]["baseline"]["metrics"] = {"value": ["from the index", "also from the index"]}
    write_atomic(index_path, json.dumps(index).encode())
    planted = experiment(tmp_path, replicates=2).run(strategy="resume").metrics.baseline
    assert planted.metrics == planted.by_replicate == {"value": ["from the index", "also from the index"]}
    # Replacing results.json (same bytes, new file) makes the entry stale: the files are read again.
    results = run_dir / "baseline" / "results.json"
    write_atomic(results, results.read_bytes())
    resumed = experiment(tmp_path, replicates=2).run(strategy="resume")
    assert resumed.metrics == first.metrics
    assert json.loads(index_path.read_bytes())["conditions"]["baseline"]["metrics"] == first.metrics.baseline.metrics


def test_a_resume_with_nothing_to_run_leaves_every_file_of_a_completed_folder_as_it_was(tmp_path):
    experiment(tmp_path, replicates=2).run()
    run_dir = tmp_path / "producer" / "v0"

    def snapshot():
        return {
            p.relative_to(run_dir).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
            for p in run_dir.rglob("*")
            if p.is_file() and p.name != ".lock"  # the lock file holds the live run's token
        }

    before = snapshot()
    assert {"outcome.json", "metadata.json", ".index.json"} <= set(before)
    exp, spy = with_spy(experiment(tmp_path, replicates=2))
    assert exp.run(strategy="resume").ok and spy.units == []
    assert snapshot() == before
    # What is missing, or no longer says what the run concluded, is written again.
    (run_dir / "outcome.json").unlink()
    assert experiment(tmp_path, replicates=2).run(strategy="resume").ok
    assert json.loads((run_dir / "outcome.json").read_bytes())["status"] == "completed"
    (run_dir / "outcome.json").write_text(json.dumps({"status": "failed", "hypotheses": [], "errors": []}))
    assert experiment(tmp_path, replicates=2).run(strategy="resume").ok
    assert json.loads((run_dir / "outcome.json").read_bytes())["status"] == "completed"
