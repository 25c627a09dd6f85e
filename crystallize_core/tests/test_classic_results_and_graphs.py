"""Results and graphs as crystallize-ml code reads and builds them."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crystallize import (
    Experiment,
    ExperimentGraph,
    FrozenContext,
    Pipeline,
    PipelineStep,
    SeedPlugin,
    Treatment,
    data_source,
)
from crystallize._aggregation import ReplicateResult, ResultAggregator
from crystallize.errors import ConfigurationError
from crystallize.testing import MemoryStorage


@data_source
def index(ctx):
    return ctx["replicate"]


class Fails(PipelineStep):
    def __call__(self, data, ctx):
        if data == 1:
            raise ValueError(f"bad replicate {data}")
        ctx.metrics.add("value", data + ctx.get("plus", 0))
        return data


# -- results ----------------------------------------------------------------------------------------


def test_errors_answer_crystallize_ml_flat_keys_with_the_original_exception():
    result = Experiment(datasource=index(), pipeline=[Fails()], replicates=3).run()
    assert list(result.errors) == ["baseline"]
    assert "baseline_rep_1" in result.errors and "baseline_rep_0" not in result.errors
    error = result.errors["baseline_rep_1"]
    assert isinstance(error, ValueError) and str(error) == "bad replicate 1"
    assert result.errors.get("baseline_rep_1") is error and result.errors.get("treat_rep_1") is None
    assert result.errors["baseline"][1].exception is error
    with pytest.raises(KeyError):
        result.errors["baseline_rep_2"]


def test_provenance_names_the_pipeline_replicates_and_seeds():
    exp = Experiment(datasource=index(), pipeline=[Fails()], plugins=[SeedPlugin(seed=3)], replicates=2)
    result = exp.run(treatments=[Treatment("t", {"plus": 1})])
    provenance = result.provenance
    assert provenance["pipeline_signature"] == exp.pipeline.signature()
    assert provenance["replicates"] == 2 and provenance["experiment_id"] == exp.id
    assert provenance["seeds"]["baseline"] == result.metrics.baseline.seeds
    assert set(provenance["seeds"]) == {"baseline", "t"} and None not in provenance["seeds"]["t"]


def test_the_pipeline_signature_is_text_naming_each_step_and_the_same_in_another_process():
    exp = Experiment(datasource=index(), pipeline=[Fails()])
    text = exp.pipeline.signature()
    assert isinstance(text, str) and "Fails" in text
    assert json.loads(text) == exp.signature()["steps"]
    assert "0x" not in text  # no memory address: crystallize-ml's repr-based signature changed per process
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_classic_results_and_graphs as t; "
        "print(t.Experiment(datasource=t.index(), pipeline=[t.Fails()]).pipeline.signature())"
    )
    here = str(Path(__file__).parent)
    again = subprocess.run([sys.executable, "-c", code, here], capture_output=True, text=True, check=True).stdout
    assert again.strip() == text


def test_get_artifact_says_where_each_replicate_wrote_it():
    from crystallize import Artifact, pipeline_step

    out = Artifact("x.txt")

    @pipeline_step()
    def write(data, ctx, out=out):
        out.write(b"x")
        return data

    result = Experiment(
        datasource=index(), pipeline=[write()], outputs=[out], plugins=[MemoryStorage()], replicates=2
    ).run()
    found = result.get_artifact("x.txt")
    assert list(found) == ["baseline"] and sorted(found["baseline"]) == [0, 1]
    assert str(found["baseline"][1]).endswith("replicate_1/baseline/write/x.txt")
    assert result.get_artifact("y.txt") == {}


def test_print_tree_shows_what_each_step_read_and_wrote():
    class Reads(PipelineStep):
        def __call__(self, data, ctx):
            ctx.add("doubled", ctx["x"] * 2)
            ctx.metrics.add("m", data)
            return data

    pipeline = Pipeline([Reads()])
    _, provenance = pipeline.run(5, FrozenContext({"x": 1}), verbose=True, return_provenance=True)
    assert provenance[0]["ctx_changes"] == {
        "reads": {"x": 1},
        "wrote": {"doubled": {"before": None, "after": 2}},
        "metrics": {"m": {"before": (), "after": (5,)}},
    }
    result = Experiment(datasource=index(), pipeline=pipeline).run()
    result.provenance["ctx_changes"] = {"baseline": {0: provenance}}
    out = io.StringIO()
    result.print_tree(file=out)
    text = out.getvalue()
    assert text.splitlines()[0] == "Experiment Summary"
    assert "Reads" in text and "Reads: x=1" in text and "Replicate 0" in text
    with pytest.raises(ValueError, match="'action' must come last"):
        result.print_tree("action > step")


def test_result_aggregator_folds_0_27_replicate_results():
    error = RuntimeError("rep 1")
    reps = [
        ReplicateResult({"m": [1]}, 10, {"t": {"m": [2]}}, {"t": 20}, {}, {"baseline": [{"step": "S"}]}),
        ReplicateResult(None, None, {"t": {"m": [3]}}, {"t": 21}, {"baseline_rep_1": error}, {}),
    ]
    aggregator = ResultAggregator(Pipeline([Fails()]), replicates=2)
    aggregate = aggregator.aggregate_results(reps)
    assert aggregate.baseline_metrics == {"m": [1]} and aggregate.treatment_metrics_dict == {"t": {"m": [2, 3]}}
    assert aggregate.treatment_seeds_agg == {"t": [20, 21]} and aggregate.errors == {"baseline_rep_1": error}
    from crystallize._result import ConditionMetrics, ExperimentMetrics

    metrics = ExperimentMetrics(ConditionMetrics({"m": [1]}), {"t": ConditionMetrics({"m": [2, 3]})})
    result = aggregator.build_result(metrics, aggregate)
    assert result.provenance["seeds"] == {"baseline": [10], "t": [20, 21]}
    assert result.provenance["ctx_changes"] == {"baseline": {0: [{"step": "S"}]}}


# -- graphs ---------------------------------------------------------------------------------------


class Record(PipelineStep):
    def __call__(self, data, ctx):
        ctx.metrics.add("value", data + ctx.get("plus", 0))
        return data


def named(name, treatments=()):
    return Experiment(datasource=index(), pipeline=[Record()], name=name, treatments=list(treatments))


def test_a_graph_built_step_by_step_orders_and_passes_treatments_down():
    a, b, c = named("a", [Treatment("inc", {"plus": 1})]), named("b"), named("c")
    graph = ExperimentGraph()
    for exp in (c, b, a):
        graph.add_experiment(exp)
    graph.add_dependency(b, a)
    graph.add_dependency(c, b)
    results = graph.run(replicates=2)
    assert list(results) == ["a", "b", "c"]
    assert results["c"].metrics.treatments["inc"].metrics["value"] == [1, 2]
    assert ExperimentGraph(a, b).name is None and graph.order == ["a", "b", "c"]


def test_graph_mistakes_are_clear_errors():
    a, b = named("a"), named("b")
    graph = ExperimentGraph()
    with pytest.raises(ConfigurationError, match="needs a name"):
        graph.add_experiment(Experiment(datasource=index(), pipeline=[Record()]))
    graph.add_experiment(a)
    with pytest.raises(ConfigurationError, match="add experiment 'b' to the graph first"):
        graph.add_dependency(b, a)
    graph.add_experiment(b)
    graph.add_dependency(b, a)
    graph.add_dependency(a, b)
    with pytest.raises(ValueError, match="contains cycles: "):
        graph.run()


def test_graph_arun_reports_progress_to_an_async_callback():
    events = []

    async def progress(status, name):
        await asyncio.sleep(0)
        events.append((status, name))

    graph = ExperimentGraph(named("a"), named("b"))
    results = asyncio.run(graph.arun(progress_callback=progress))
    assert set(results) == {"a", "b"}
    assert events == [("running", "a"), ("completed", "a"), ("running", "b"), ("completed", "b")] or events == [
        ("running", "b"),
        ("completed", "b"),
        ("running", "a"),
        ("completed", "a"),
    ]


# -- experiment folders -------------------------------------------------------------------------------


def _folder(root, name, config, **modules):
    folder = root / name
    folder.mkdir(parents=True)
    import yaml

    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    for module, text in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(text))
    return folder / "config.yaml"


SOURCES = """
from crystallize import data_source

@data_source
def numbers(ctx):
    return ctx["replicate"] + 1
"""
STEPS = """
from crystallize import Artifact, pipeline_step

@pipeline_step()
def scale(data, ctx, out: Artifact, *, factor=1):
    out.write(str(data * factor).encode())
    ctx.metrics.add("value", data * factor)
    return data * factor
"""
VERIFIERS = """
from crystallize import verifier

@verifier
def bigger(baseline, treatment):
    return {"p_value": 0.0 if sum(treatment["value"]) > sum(baseline["value"]) else 1.0}
"""


def test_an_experiment_folder_builds_a_runnable_experiment(tmp_path):
    config = _folder(
        tmp_path / "experiments",
        "scaling",
        {
            "replicates": 2,
            "datasource": {"n": "numbers"},
            "steps": [{"scale": {"out": "result"}}],
            "outputs": {"result": {"file_name": "result.txt"}},
            "treatments": {"triple": {"factor": 3}},
            "hypotheses": [{"name": "grows", "verifier": "bigger", "metrics": "value"}],
        },
        datasources=SOURCES,
        steps=STEPS,
        verifiers=VERIFIERS,
    )
    exp = Experiment.from_yaml(config)
    assert exp.name == "scaling" and list(exp.outputs) == ["result.txt"]
    exp.plugins.append(MemoryStorage())
    result = exp.run()
    assert result.metrics.treatments["triple"].metrics["value"] == [3, 6]
    assert result.get_hypothesis("grows").ranking["best"] == "triple"


def test_folder_mistakes_name_the_file_and_the_value(tmp_path):
    root = tmp_path / "experiments"
    no_source = _folder(root, "a", {"steps": []})
    with pytest.raises(ValueError, match="must define a 'datasource' section"):
        Experiment.from_yaml(no_source)
    unknown = _folder(
        root,
        "b",
        {
            "datasource": {"n": "numbers"},
            "steps": [{"scale": {"out": "r"}}],
            "outputs": {"r": {}},
            "hypotheses": [{"verifier": "missing_verifier", "metrics": "value"}],
        },
        datasources=SOURCES,
        steps=STEPS,
        verifiers=VERIFIERS,
    )
    with pytest.raises(ValueError, match="'missing_verifier' is not defined in verifiers.py"):
        Experiment.from_yaml(unknown)
    unused = _folder(
        root, "c", {"datasource": {"n": "numbers"}, "steps": [], "outputs": {"r": {}}}, datasources=SOURCES, steps=STEPS
    )
    with pytest.raises(ValueError, match="outputs not used by any step: r"):
        Experiment.from_yaml(unused)


def test_a_folder_graph_links_references_and_refuses_cycles(tmp_path):
    root = tmp_path / "experiments"
    spec = {"steps": [{"scale": {"out": "result"}}], "outputs": {"result": {"file_name": "result.txt"}}}
    _folder(root, "a", {"datasource": {"n": "numbers"}, **spec}, datasources=SOURCES, steps=STEPS)
    b = _folder(root, "b", {"datasource": {"prev": "a#result"}, **spec}, steps=STEPS)
    graph = ExperimentGraph.from_yaml(b)
    assert graph.order == ["a", "b"] and graph.name == "b"
    assert [u.experiment for u in graph.experiments["b"].datasource.upstream] == ["a"]
    assert ExperimentGraph.from_yaml(root).order == ["a", "b"]

    cyclic = tmp_path / "cyclic" / "experiments"
    _folder(cyclic, "x", {"datasource": {"i": "y#result"}, **spec}, steps=STEPS)
    _folder(cyclic, "y", {"datasource": {"i": "x#result"}, **spec}, steps=STEPS)
    with pytest.raises(ValueError, match="contains cycles"):
        ExperimentGraph.from_yaml(cyclic / "x" / "config.yaml")


def test_find_experiments_root_walks_up_or_says_where_it_looked(tmp_path, caplog):
    from crystallize._folders import find_experiments_root

    (tmp_path / "project" / "experiments" / "train" / "steps").mkdir(parents=True)
    assert find_experiments_root(tmp_path / "project" / "experiments" / "train" / "steps") == (
        tmp_path / "project" / "experiments"
    )
    assert find_experiments_root(tmp_path / "project") == tmp_path / "project" / "experiments"
    lonely = tmp_path / "lonely" / "deep"
    lonely.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="Could not locate an 'experiments' folder"):
        find_experiments_root(lonely)
    assert find_experiments_root(lonely, strict=False) == lonely.resolve()
    assert "Could not locate 'experiments' dir" in caplog.text
