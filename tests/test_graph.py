import json
import logging
from pathlib import Path

import pytest

from crystallize import (
    Artifact,
    ConfigurationError,
    Experiment,
    ExperimentGraph,
    ExperimentInput,
    Pipeline,
    PipelineStep,
    Treatment,
    data_source,
    hookimpl,
    pipeline_step,
)
from crystallize.errors import UnreadTreatmentKeyWarning
from crystallize_artifacts import ArtifactPlugin, FallbackWarning


@data_source
def seed_numbers(ctx):
    return ctx["replicate"] + 1


class Emit(PipelineStep):
    def __init__(self, out, factor=1):
        self.out = out
        self.factor = factor

    def __call__(self, data, ctx):
        value = data * self.factor * ctx.get("scale", 1)
        self.out.write(json.dumps(value).encode())
        ctx.metrics.add("value", value)
        return value


@pipeline_step()
def read_value(path, ctx):
    value = json.loads(Path(path).read_text())
    ctx.metrics.add("value", value)
    return value


@pipeline_step()
def add_inputs(inputs, ctx):
    total = sum(json.loads(Path(p).read_text()) for p in inputs.values())
    ctx.metrics.add("sum", total)
    return total


class Ran:
    def __init__(self):
        self.units = []

    @hookimpl
    def on_replicate_outcome(self, experiment, outcome):
        self.units.append((experiment.name, outcome.condition, outcome.replicate))


def chain(root, spy=None, replicates=2):
    a_out, b_out = Artifact("a.json"), Artifact("b.json")
    plugins = lambda: [ArtifactPlugin(root), *([spy] if spy else [])]  # noqa: E731
    a = Experiment(
        seed_numbers(),
        Pipeline([Emit(a_out)]),
        plugins=plugins(),
        outputs=[a_out],
        name="a",
        treatments=[Treatment("big", {"scale": 10})],
        replicates=replicates,
    )
    b = Experiment(
        a.artifact_datasource("Emit", "a.json"),
        Pipeline(
            [
                read_value(),
            ]
        ),
        plugins=plugins(),
        name="b",
    )
    b2 = Experiment(
        seed_numbers(),
        Pipeline([Emit(b_out, factor=100)]),
        plugins=plugins(),
        outputs=[b_out],
        name="b2",
        replicates=replicates,
    )
    c = Experiment(
        ExperimentInput(x=a.artifact_datasource("Emit", "a.json"), y=b2.artifact_datasource("Emit", "b.json")),
        Pipeline([add_inputs()]),
        plugins=plugins(),
        name="c",
    )
    return a, b, b2, c


def test_order_follows_dependencies_whatever_the_listing_order(tmp_path):
    a, b, b2, c = chain(tmp_path)
    graph = ExperimentGraph.from_experiments([c, b, b2, a])
    assert graph.order.index("a") < graph.order.index("b")
    assert graph.order.index("a") < graph.order.index("c") and graph.order.index("b2") < graph.order.index("c")
    assert graph.parents["c"] == ["a", "b2"]


def test_graph_runs_in_order_and_inherits_treatments(tmp_path):
    a, b, b2, c = chain(tmp_path)
    with pytest.warns(FallbackWarning, match="'b2' v0 has no condition 'big'") as caught:  # c inherits big
        results = ExperimentGraph(a, b, b2, c).run()
    # b and c run "big" only to carry a's artifacts through: that they do not read its key is no news
    assert not [w for w in caught if issubclass(w.category, UnreadTreatmentKeyWarning)]
    assert set(results) == {"a", "b", "b2", "c"}
    assert results["b"].metrics.treatments["big"].metrics["value"] == [10, 20]  # a's "big" flowed into b
    assert results["b"].metrics.baseline.metrics["value"] == [1, 2]
    assert results["c"].metrics.treatments["big"].metrics["sum"] == [10 + 100, 20 + 200]


def test_unnamed_experiments_and_cycles_are_rejected(tmp_path):
    a, *_ = chain(tmp_path)
    with pytest.raises(ConfigurationError, match="needs a name"):
        ExperimentGraph(a, Experiment(seed_numbers(), Pipeline([read_value()])))

    class Loop:
        def __init__(self, name, parent):
            from crystallize._records import Upstream

            self.name = name
            self.treatments = []
            self.datasource = type("S", (), {"upstream": (Upstream(parent, None, "s", "x"),)})()

    with pytest.raises(ConfigurationError, match="cycle"):
        ExperimentGraph(Loop("p", "q"), Loop("q", "p"))


def test_graph_resume_reruns_only_what_is_missing_and_says_why(tmp_path, caplog):
    spy = Ran()
    a, b, *_ = chain(tmp_path, spy)
    ExperimentGraph(a, b).run()
    spy.units.clear()
    graph = ExperimentGraph(a, b)
    graph.run(strategy="resume")
    assert spy.units == [] and graph.reasons == {}

    (tmp_path / "a" / "v0" / "replicate_1" / "big" / "Emit" / "a.json").unlink()
    with caplog.at_level(logging.WARNING, logger="crystallize.graph"):
        graph.run(strategy="resume")
    assert graph.reasons["a"] == ["outputs of v0 are missing: replicate_1/big/Emit/a.json"]
    assert "experiment 'a' reruns: outputs of v0 are missing" in caplog.text
    ran = {name for name, *_ in spy.units}
    assert ran == {"a", "b"}  # a reran (v0 replaced), so b's input changed and it reran too
    assert graph.reasons["b"][0] == "upstream 'a' reran"  # the graph's own reason, then the plugins'
    assert "upstream 'a' was rerun" in graph.reasons["b"][1]


def test_graph_resume_continues_an_interrupted_downstream(tmp_path):
    spy = Ran()
    a, b, *_ = chain(tmp_path, spy)
    ExperimentGraph(a, b).run()
    (tmp_path / "b" / "v0" / "big" / ".crystallize_complete").unlink()  # as if killed before its marker
    spy.units.clear()
    ExperimentGraph(a, b).run(strategy="resume")
    assert spy.units == [("b", "big", 0), ("b", "big", 1)]  # only the unvouched condition runs
    spy.units.clear()
    ExperimentGraph(a, b).run(strategy="resume")
    assert spy.units == []
