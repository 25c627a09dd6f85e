"""Every hook is called when and with what the hookspecs promise.

Every test here runs twice (the ``dispatch`` fixture): with hooks called
directly where the core may (the default), and with every call going through
pluggy, so the fast path can never drift from pluggy's semantics.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from core_helpers import FailOn, numbers, total

from crystallize import (
    Artifact,
    DataSource,
    Experiment,
    ExperimentGraph,
    Pipeline,
    PipelineStep,
    Treatment,
    hookimpl,
    hookspecs,
)
from crystallize._dispatch import HOOK_NAMES, Hooks
from crystallize._records import ArtifactRecord, CompletedWork, ReplicateOutcome, Run
from crystallize._registry import build_manager
from crystallize.testing import MemoryStorage, record_hooks

pytestmark = pytest.mark.usefixtures("dispatch")


class Writer(PipelineStep):
    def __init__(self, out):
        self.out = out

    def __call__(self, data, ctx):
        self.out.write(b"payload")
        return data


class Recorder:
    """Implements every hook with every argument; records the calls."""

    plugin_name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def _note(self, hook, /, **kwargs):
        self.calls.append((hook, kwargs))

    def names(self):
        return [name for name, _ in self.calls]

    @hookimpl
    def validate_experiment(self, experiment):
        self._note("validate_experiment", experiment=experiment)

    @hookimpl
    def open_store(self, experiment, run):
        self._note("open_store", experiment=experiment, run=run)

    @hookimpl
    def locate_run(self, experiment, version):
        self._note("locate_run", experiment=experiment, version=version)

    @hookimpl
    def on_resume(self, experiment, run):
        self._note("on_resume", experiment=experiment, run=run)
        return CompletedWork(conditions={"t": {"total": [1.0, 2.0]}}, replicates={"baseline": {0: {"total": [9.0]}}})

    @hookimpl
    def before_run(self, experiment, run):
        self._note("before_run", experiment=experiment, run=run)

    @hookimpl
    def execute_replicates(self, experiment, run, batch):
        self._note("execute_replicates", experiment=experiment, run=run, batch=batch)

    @hookimpl
    def on_worker_start(self, experiment, run):
        self._note("on_worker_start", experiment=experiment, run=run)

    @hookimpl(wrapper=True)
    def wrap_replicate(self, experiment, run, ctx):
        self._note("wrap_replicate", ctx=dict(ctx))
        try:
            return (yield)
        except Exception as exc:
            self._note("wrap_replicate saw", error=exc)
            raise
        finally:
            self._note("wrap_replicate done", ctx=dict(ctx))

    @hookimpl
    def before_replicate(self, experiment, run, ctx):
        self._note("before_replicate", experiment=experiment, run=run, ctx=dict(ctx))

    @hookimpl
    def before_step(self, experiment, run, step, ctx):
        self._note("before_step", experiment=experiment, run=run, step=step, ctx=ctx)

    @hookimpl
    def after_step(self, experiment, run, step, data, ctx):
        self._note("after_step", experiment=experiment, run=run, step=step, data=data, ctx=ctx)

    @hookimpl
    def on_artifact_write(self, experiment, run, artifact, record, ctx):
        self._note("on_artifact_write", artifact=artifact, record=record, ctx=dict(ctx))

    @hookimpl
    def on_replicate_error(self, experiment, run, ctx, step, error):
        self._note("on_replicate_error", ctx=dict(ctx), step=step, error=error)

    @hookimpl
    def on_replicate_outcome(self, experiment, run, outcome):
        self._note("on_replicate_outcome", outcome=outcome)

    @hookimpl
    def on_condition_complete(self, experiment, run, condition, metrics, errors):
        self._note("on_condition_complete", condition=condition, metrics=metrics, errors=errors)

    @hookimpl
    def after_run(self, experiment, run, result):
        self._note("after_run", run=run, result=result)

    @hookimpl
    def artifact_datasource(self, experiment, step, name, require_metadata, version):
        self._note("artifact_datasource", step=step, name=name, require_metadata=require_metadata, version=version)
        return UpstreamSource(experiment.key, step, name)

    @hookimpl
    def stale_reason(self, experiment):
        self._note("stale_reason", experiment=experiment)
        return "a test says so"

    @hookimpl
    def before_graph_run(self, graph, strategy):
        self._note("before_graph_run", graph=graph, strategy=strategy)

    @hookimpl
    def after_graph_run(self, graph, results):
        self._note("after_graph_run", graph=graph, results=results)


class UpstreamSource(DataSource):
    def __init__(self, producer, step, name):
        self.producer, self.step, self.name = producer, step, name

    def fetch(self, ctx):
        return [1.0]

    @property
    def upstream(self):
        from crystallize._records import Upstream

        return (Upstream(self.producer, None, self.step, self.name),)


def calls(recorder, name):
    return [kwargs for n, kwargs in recorder.calls if n == name]


def test_lifecycle_order_and_arguments():
    rec = Recorder()
    out = Artifact("a.bin")
    exp = Experiment(
        numbers(),
        Pipeline([total(), Writer(out), FailOn("t", 1)]),
        plugins=[MemoryStorage(), rec],  # rec is called first, so it sees firstresult hooks
        outputs=[out],
        treatments=[Treatment("t", {"scale": 2.0})],
        replicates=2,
    )
    result = exp.run()
    names = rec.names()
    assert names[:4] == ["validate_experiment", "open_store", "before_run", "execute_replicates"]
    assert names[-1] == "after_run"
    assert "on_resume" not in names  # only for strategy="resume"
    assert names[4] == "on_worker_start" and names.count("on_worker_start") == 1  # serial: this process, once
    per_replicate = names[names.index("wrap_replicate") : names.index("wrap_replicate done") + 1]
    assert per_replicate == [
        "wrap_replicate",
        "before_replicate",
        *["before_step", "after_step"],  # total
        *["before_step", "on_artifact_write", "after_step"],  # Writer
        *["before_step", "after_step"],  # FailOn
        "wrap_replicate done",
    ]
    assert names.count("wrap_replicate") == names.count("wrap_replicate done") == 4
    (saw,) = calls(rec, "wrap_replicate saw")  # the failing replicate's error reaches the wrapper
    assert isinstance(saw["error"], RuntimeError) and "planned failure at t/1" in str(saw["error"])
    assert len(calls(rec, "before_replicate")) == 4
    assert calls(rec, "before_replicate")[0]["ctx"] == {"replicate": 0, "condition": "baseline"}
    assert len(calls(rec, "before_step")) == 4 * 3
    assert len(calls(rec, "after_step")) == 4 * 3 - 1  # t/1 fails in its third step
    writes = calls(rec, "on_artifact_write")
    assert len(writes) == 4 and writes[0]["artifact"] is out and writes[0]["ctx"]["replicate"] == 0
    first = writes[0]["record"]  # the store committed the bytes before the hook was called
    assert (first.step, first.condition, first.size) == ("Writer", "baseline", len(b"payload"))
    (error_call,) = calls(rec, "on_replicate_error")
    assert error_call["ctx"]["condition"] == "t" and isinstance(error_call["error"], RuntimeError)
    assert isinstance(error_call["step"], FailOn)
    outcomes = [c["outcome"] for c in calls(rec, "on_replicate_outcome")]
    assert [(o.condition, o.replicate, o.ok) for o in outcomes] == [
        ("baseline", 0, True),
        ("baseline", 1, True),
        ("t", 0, True),
        ("t", 1, False),
    ]
    assert all(isinstance(o, ReplicateOutcome) for o in outcomes)
    assert isinstance(outcomes[0].artifacts[0], ArtifactRecord)
    completes = calls(rec, "on_condition_complete")
    assert [c["condition"] for c in completes] == ["baseline", "t"]
    assert completes[0]["errors"] == {} and list(completes[1]["errors"]) == [1]
    assert len(completes[0]["metrics"]["total"]) == 2 and len(completes[1]["metrics"]["total"]) == 1
    (after,) = calls(rec, "after_run")
    assert after["result"] is result and after["run"].status == "failed"
    run = after["run"]
    assert isinstance(run, Run) and run.key == exp.id and run.replicates == 2


def test_on_resume_reports_are_skipped_and_merged_into_the_result():
    rec = Recorder()
    exp = Experiment(
        numbers(), Pipeline([total()]), plugins=[rec], treatments=[Treatment("t", {"scale": 2.0})], replicates=2
    )
    result = exp.run(strategy="resume")
    names = rec.names()
    assert names.index("on_resume") < names.index("before_run")
    ran = [(c["outcome"].condition, c["outcome"].replicate) for c in calls(rec, "on_replicate_outcome")]
    assert ran == [("baseline", 1)]  # baseline/0 came from the report, t entirely
    assert result.metrics.treatments["t"].metrics == {"total": [1.0, 2.0]}
    assert result.metrics.baseline.metrics["total"][0] == 9.0
    assert len(result.metrics.baseline.metrics["total"]) == 2
    assert [c["condition"] for c in calls(rec, "on_condition_complete")] == ["baseline"]


def test_resume_without_a_resume_plugin_says_what_to_install():
    exp = Experiment(numbers(), Pipeline([total()]))
    with pytest.raises(Exception, match="needs a plugin that reports what earlier runs completed"):
        exp.run(strategy="resume")


def test_chaining_hooks_artifact_datasource_locate_run_and_stale_reason():
    rec = Recorder()
    producer = Experiment(numbers(), Pipeline([total()]), plugins=[rec], name="producer")
    source = producer.artifact_datasource("total", "x.json", require_metadata=True, version=3)
    assert calls(rec, "artifact_datasource") == [
        {"step": "total", "name": "x.json", "require_metadata": True, "version": 3}
    ]
    assert producer.locate_run(version=2) is None
    assert calls(rec, "locate_run")[0]["version"] == 2
    consumer = Experiment(source, Pipeline([total()]), plugins=[rec], name="consumer")
    graph = ExperimentGraph(producer, consumer)
    assert graph.order == ["producer", "consumer"]
    results = graph.run(strategy="resume")
    assert [c["experiment"].name for c in calls(rec, "stale_reason")] == ["producer", "consumer"]
    graph_calls = [n for n in rec.names() if n.endswith("graph_run")]
    assert graph_calls == ["before_graph_run", "after_graph_run"]  # one plugin object, called once
    assert calls(rec, "before_graph_run") == [{"graph": graph, "strategy": "resume"}]
    assert calls(rec, "after_graph_run")[0]["results"] == results and list(results) == ["producer", "consumer"]
    assert rec.names().index("before_graph_run") < rec.names().index("stale_reason")
    # the consumer reruns because its upstream did, and says so first
    assert graph.reasons == {
        "producer": ["a test says so"],
        "consumer": ["upstream 'producer' reran", "a test says so"],
    }


def test_unimplemented_hooks_are_none_in_the_caller_table(dispatch):
    pm, _ = build_manager([])
    table = Hooks(pm, direct=dispatch == "direct")
    assert table.before_step is None and table.after_step is None and table.on_artifact_write is None
    assert table.execute_replicates is not None  # the built-in serial executor
    pm2, _ = build_manager([Recorder()])
    assert all(getattr(Hooks(pm2, direct=dispatch == "direct"), name) is not None for name in HOOK_NAMES)


def test_record_hooks_sees_calls_in_order():
    exp = Experiment(numbers(), Pipeline([total()]), plugins=[MemoryStorage()])
    with record_hooks() as recorded:
        exp.run()
    assert recorded.names()[0] == "validate_experiment" or recorded.names()[0] == "open_store"
    recorded.assert_called("open_store")
    recorded.assert_called("execute_replicates")
    with pytest.raises(AssertionError, match="not called"):
        recorded.assert_called("stale_reason")
    from crystallize import _registry

    assert not _registry.observed()  # the recorder is gone once the block ends


# -- meta-tests: the contract documents itself and is exercised --------------------------------


def _specs():
    return {name: getattr(hookspecs, name) for name in HOOK_NAMES}


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hookspec_is_documented_with_each_parameter(name):
    spec = _specs()[name]
    doc = inspect.getdoc(spec) or ""
    assert len(doc) > 80, f"hookspec {name} needs a real docstring"
    for param in inspect.signature(spec).parameters:
        assert f":param {param}:" in doc, f"hookspec {name} does not document {param!r}"
    if getattr(spec, "crystallize_spec", {}).get("firstresult"):
        assert "Stops at first non-None result" in doc, f"firstresult hook {name} must say so"


def _implemented_in_tests() -> set[str]:
    repo = Path(__file__).resolve().parents[2]
    found: set[str] = set()
    for folder in [
        repo / "crystallize_core" / "tests",
        repo / "tests",
        *repo.glob("*/tests"),
        *repo.glob("plugins/*/tests"),
    ]:
        for file in folder.glob("test_*.py"):
            found.update(re.findall(r"@hookimpl[^\n]*\n\s*def (\w+)\(", file.read_text()))
    return found


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hookspec_has_a_test_implementing_it(name):
    assert name in _implemented_in_tests(), f"no test implements hook {name!r}"


def test_hook_names_match_the_hookspec_module():
    declared = {n for n, obj in vars(hookspecs).items() if inspect.isfunction(obj) and n[0] != "_"}
    assert set(HOOK_NAMES) == declared
