import json
import logging

import pytest

from crystallize import (
    Artifact,
    Experiment,
    ExperimentGraph,
    ExperimentInput,
    Pipeline,
    PipelineStep,
    SeedPlugin,
    Treatment,
    data_source,
    pipeline_step,
)
from crystallize.testing import installed_plugins_only
from crystallize_artifacts import ArtifactPlugin


@pytest.fixture(autouse=True)
def guide_plugins():
    with installed_plugins_only("metadata", "resume"):
        yield


@data_source
def source(ctx):
    return ctx["replicate"]


class Save(PipelineStep):
    def __init__(self, out):
        self.out = out

    def __call__(self, data, ctx):
        self.out.write(str(data * ctx.get("k", 1)).encode())
        return data


@pipeline_step()
def consume(data, ctx):
    ctx.metrics.add("bytes", data.read_text())
    return data


def producer(root, versioned=True):
    out = Artifact("n.txt")
    return Experiment(
        source(),
        Pipeline([Save(out)]),
        outputs=[out],
        name="producer",
        replicates=2,
        plugins=[ArtifactPlugin(root, versioned=versioned), SeedPlugin(seed=4)],
        treatments=[Treatment("t", {"k": 3})],
        description="makes numbers",
    )


def consumer(root, prod):
    return Experiment(
        prod.artifact_datasource("Save", "n.txt"),
        Pipeline([consume()]),
        name="consumer",
        plugins=[ArtifactPlugin(root, versioned=True)],
    )


def read_meta(path):
    return json.loads(path.read_bytes())


def test_metadata_has_crystallize_ml_keys_and_more(tmp_path):
    result = producer(tmp_path).run()
    meta = read_meta(tmp_path / "producer" / "v0" / "metadata.json")
    assert meta["replicates"] == 2 and meta["name"] == "producer" and meta["id"] == result.run.experiment_id
    assert meta["version"] == 0 and meta["status"] == "completed" and meta["run_id"] == result.run.run_id
    assert meta["conditions"] == ["baseline", "t"] and meta["completed_conditions"] == ["baseline", "t"]
    assert meta["seeds"]["base"] == 4 and meta["facts"]["seed"]["base"] == 4
    assert meta["packages"]["crystallize-core"] and meta["packages"]["crystallize-metadata"]
    assert meta["description"] == "makes numbers" and meta["outputs"] == ["n.txt"]
    assert meta["created_at"] and meta["finished_at"] and meta["upstream"] == []
    assert meta["signature"]["steps"][0]["step"] == "Save"


def test_lineage_records_the_upstream_run(tmp_path):
    first = producer(tmp_path).run()
    consumer(tmp_path, producer(tmp_path)).run()
    meta = read_meta(tmp_path / "consumer" / "v0" / "metadata.json")
    (upstream,) = meta["upstream"]
    assert upstream["experiment"] == "producer" and upstream["version"] == 0
    assert upstream["run_id"] == first.run.run_id and upstream["step"] == "Save"
    assert upstream["location"] == str(tmp_path / "producer" / "v0")


def test_running_status_is_visible_during_the_run(tmp_path):
    seen = []

    class Peek(PipelineStep):
        def __call__(self, data, ctx):
            seen.append(read_meta(tmp_path / "p" / "v0" / "metadata.json")["status"])
            return data

    Experiment(source(), Pipeline([Peek()]), name="p", plugins=[ArtifactPlugin(tmp_path)]).run()
    assert seen == ["running"]
    assert read_meta(tmp_path / "p" / "v0" / "metadata.json")["status"] == "completed"


def test_graph_resume_reruns_a_consumer_only_when_its_upstream_changed(tmp_path, caplog):
    prod = producer(tmp_path)
    cons = consumer(tmp_path, prod)
    ExperimentGraph(prod, cons).run()
    graph = ExperimentGraph.from_experiments([prod, cons])
    graph.run(strategy="resume")
    assert graph.reasons == {}
    assert sorted(p.name for p in (tmp_path / "consumer").iterdir()) == ["v0"]

    prod.run()  # the producer reran outside the graph: v1
    with caplog.at_level(logging.WARNING, logger="crystallize.graph"):
        results = graph.run(strategy="resume")
    assert graph.reasons["consumer"] == [
        "upstream 'producer' was rerun since its last run (it read v0, the latest is v1)"
    ]
    assert "experiment 'consumer' reruns" in caplog.text
    assert results["consumer"].run.version == 1
    assert read_meta(tmp_path / "consumer" / "v1" / "metadata.json")["upstream"][0]["version"] == 1


def test_graph_resume_reruns_a_producer_that_now_declares_an_output_its_run_lacks(tmp_path):
    class SaveBoth(PipelineStep):
        def __init__(self, first, second=None):
            self.first, self.second = first, second

        def __call__(self, data, ctx):
            self.first.write(b"1")
            if self.second is not None:
                self.second.write(b"2")
            return data

        @property
        def params(self):  # as in crystallize-ml: the artifacts it holds are not parameters
            return {}

    @pipeline_step()
    def count_inputs(data, ctx):
        ctx.metrics.add("inputs", len(data))
        return data

    def graph(*names):
        outs = [Artifact(n) for n in names]
        prod = Experiment(
            source(), Pipeline([SaveBoth(*outs)]), outputs=outs, name="producer", plugins=[ArtifactPlugin(tmp_path)]
        )
        cons = Experiment(
            ExperimentInput(**{n.split(".")[0]: prod.outputs[n] for n in names}),
            Pipeline([count_inputs()]),
            name="consumer",
            plugins=[ArtifactPlugin(tmp_path)],
        )
        return ExperimentGraph(prod, cons)

    graph("one.txt").run()
    again = graph("one.txt")
    again.run(strategy="resume")
    assert again.reasons == {}  # nothing changed: nothing reruns
    grown = graph("one.txt", "two.txt")
    results = grown.run(strategy="resume")
    assert grown.reasons["producer"] == [
        "it now declares output(s) 'two.txt', which its last run (v0) did not, so it holds none of them"
    ]
    assert results["consumer"].ok and results["consumer"].metrics.baseline.metrics["inputs"] == [2]


def test_a_resume_with_nothing_to_run_keeps_the_provenance_of_the_runs_that_made_the_results(tmp_path, monkeypatch):
    import crystallize_metadata.plugin as metadata_plugin

    producer(tmp_path, versioned=False).run()
    path = tmp_path / "producer" / "v0" / "metadata.json"
    before = path.read_bytes()
    assert json.loads(before)["status"] == "completed"

    def no_probe(experiment):
        raise AssertionError("a resume with nothing to run probed git")

    monkeypatch.setattr(metadata_plugin, "_git", no_probe)
    again = producer(tmp_path, versioned=False).run(strategy="resume")
    assert again.ok and path.read_bytes() == before  # not rewritten: no later commit or package claims it


def test_a_resume_with_nothing_to_run_still_closes_a_folder_left_running(tmp_path):
    producer(tmp_path, versioned=False).run()
    path = tmp_path / "producer" / "v0" / "metadata.json"
    left = json.loads(path.read_bytes())
    left.update(status="running", finished_at=None)  # the process died after its last marker
    path.write_text(json.dumps(left))
    again = producer(tmp_path, versioned=False).run(strategy="resume")
    recorded = json.loads(path.read_bytes())
    assert again.ok and recorded["status"] == "completed" and recorded["finished_at"] is not None
    assert recorded["resumed_at"] == [again.run.started_at] and recorded["run_id"] == left["run_id"]
