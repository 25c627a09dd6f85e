"""crystallize-ml idioms on real storage: artifacts as inputs, ctx.artifacts, apply, retention variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crystallize import (
    Artifact,
    Experiment,
    ExperimentGraph,
    ExperimentInput,
    PipelineStep,
    Treatment,
    data_source,
    pipeline_step,
)
from crystallize.errors import ConfigurationError, MissingArtifactError
from crystallize_artifacts import ArtifactPlugin


@data_source
def index(ctx):
    return ctx["replicate"]


class Produce(PipelineStep):
    def __init__(self, out: Artifact, factor: int = 10):
        self.out = out
        self.factor = factor

    def __call__(self, data, ctx):
        self.out.write({"value": data * self.factor + ctx.get("plus", 0)})
        return data


class Consume(PipelineStep):
    def __call__(self, data, ctx):
        if isinstance(data, Path):  # artifact_datasource yields paths
            data = json.loads(data.read_text())
        values = data if isinstance(data, dict) and "value" not in data else {"only": data}
        for name, loaded in values.items():
            ctx.metrics.add(name, loaded["value"])
        return data


def _json_artifact(name):
    return Artifact(name, writer=lambda obj: json.dumps(obj).encode(), loader=lambda p: json.loads(p.read_text()))


def producer(root, name="train", replicates=3, factor=10, out=None):
    out = out or _json_artifact("model.json")
    exp = Experiment(
        datasource=index(),
        pipeline=[Produce(out, factor)],
        outputs=[out],
        plugins=[ArtifactPlugin(root_dir=root)],
        name=name,
        replicates=replicates,
    )
    return exp, out


def test_an_artifact_is_the_input_of_another_experiment(tmp_path):
    train, model = producer(tmp_path)
    train.run(treatments=[Treatment("plus", {"plus": 1})])
    evaluate = Experiment(
        datasource=model, pipeline=[Consume()], plugins=[ArtifactPlugin(root_dir=tmp_path)], name="eval"
    )
    graph = ExperimentGraph(train, evaluate)
    assert graph.parents["eval"] == ["train"]
    result = evaluate.run(treatments=[Treatment("plus", {"plus": 1})])
    assert result.metrics.baseline.metrics["only"] == [0, 10, 20]  # three replicates, as the producer ran
    assert result.metrics.treatments["plus"].metrics["only"] == [1, 11, 21]  # the matching condition's file
    assert model.fetch(_ctx(2)) == {"value": 20}


def _ctx(replicate, condition="baseline"):
    from crystallize import FrozenContext

    return FrozenContext({"replicate": replicate, "condition": condition})


def test_artifacts_of_two_producers_in_one_input(tmp_path):
    a, model_a = producer(tmp_path, "a", factor=1)
    b, model_b = producer(tmp_path, "b", factor=2, out=_json_artifact("other.json"))
    consumer = Experiment(
        datasource=ExperimentInput(first=model_a, second=model_b),
        pipeline=[Consume()],
        plugins=[ArtifactPlugin(root_dir=tmp_path)],
        name="both",
    )
    results = ExperimentGraph(a, b, consumer).run()
    assert results["both"].metrics.baseline.metrics == {"first": [0, 1, 2], "second": [0, 2, 4]}


def test_a_producer_rebuilt_under_its_name_replaces_the_old_declaration(tmp_path):
    model = _json_artifact("model.json")
    producer(tmp_path, out=model, factor=1)
    rebuilt, _ = producer(tmp_path, out=model, factor=5)
    rebuilt.run()
    assert model.fetch(_ctx(1)) == {"value": 5}


def test_an_artifact_nothing_writes_is_a_missing_artifact_error(tmp_path):
    never = Artifact("never.txt")
    exp, _ = producer(tmp_path)
    exp.outputs["never.txt"] = never
    never._declared_by(exp)
    exp.run()
    with pytest.raises(
        MissingArtifactError, match=r"no step of experiment 'train' v0 wrote an artifact named 'never.txt'"
    ) as raised:
        never.fetch(_ctx(0))
    assert isinstance(raised.value, FileNotFoundError)


def test_artifact_datasource_can_read_one_condition_for_all(tmp_path):
    train, _ = producer(tmp_path)
    train.run(treatments=[Treatment("plus", {"plus": 1})])
    source = train.artifact_datasource(step="Produce", name="model.json", condition="baseline")
    consumer = Experiment(datasource=source, pipeline=[Consume()], name="fixed")
    result = consumer.run(treatments=[Treatment("plus", {"plus": 1})])
    assert result.metrics.treatments["plus"].metrics["only"] == [0, 10, 20]  # the baseline's files
    path = train.artifact_datasource(step="Produce", name="model.json").fetch(_ctx(1))
    assert path == Path(tmp_path) / "train" / "v0" / "replicate_1" / "baseline" / "Produce" / "model.json"


class Log(PipelineStep):
    def __call__(self, data, ctx):
        ctx.artifacts.add("out.txt", b"hello")
        return data


def test_ctx_artifacts_land_where_crystallize_ml_put_them(tmp_path):
    plugin = ArtifactPlugin(root_dir=tmp_path)
    assert plugin.version is None
    exp = Experiment(datasource=index(), pipeline=[Log()], plugins=[plugin], name="logged")
    exp.run()
    assert plugin.version == 0
    assert (tmp_path / "logged" / "v0" / "replicate_0" / "baseline" / "Log" / "out.txt").read_bytes() == b"hello"


class LogAgain(PipelineStep):
    def __call__(self, data, ctx):
        ctx.artifacts.add("out.txt", b"again")
        return data


def test_an_output_written_by_name_is_read_from_the_step_that_wrote_it(tmp_path):
    out = Artifact("out.txt", loader=lambda p: p.read_text())
    logged = Experiment(index(), [Log()], outputs=[out], plugins=[ArtifactPlugin(root_dir=tmp_path)], name="logged")
    logged.run()
    read = pipeline_step()(lambda data, ctx: ctx.metrics.add("text", data["text"]))
    reader = Experiment(ExperimentInput(text=out), [read()], name="reader", plugins=[ArtifactPlugin(tmp_path)])
    assert reader.run().metrics.baseline.metrics["text"] == ["hello"]
    source = logged.artifact_datasource(step=None, name="out.txt")
    assert source.fetch(_ctx(0)) == tmp_path / "logged" / "v0" / "replicate_0" / "baseline" / "Log" / "out.txt"
    (tmp_path / "logged" / "v0" / "manifest.json").unlink()  # a run that never closed: its folders tell
    assert logged.artifact_datasource(step=None, name="out.txt").fetch(_ctx(0)).read_bytes() == b"hello"


def test_an_output_written_by_name_in_two_steps_must_name_the_step(tmp_path):
    out = Artifact("out.txt")
    both = Experiment(index(), [Log(), LogAgain()], outputs=[out], plugins=[ArtifactPlugin(tmp_path)], name="both")
    both.run()
    with pytest.raises(ConfigurationError, match=r"steps 'Log', 'LogAgain' of experiment 'both' v0 each wrote"):
        out.fetch(_ctx(0))
    assert both.artifact_datasource("LogAgain", "out.txt").fetch(_ctx(0)).read_bytes() == b"again"


def test_apply_leaves_the_stored_run_byte_for_byte(tmp_path):
    train, _ = producer(tmp_path)
    train.run()
    folder = tmp_path / "train"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert train.apply(data=7) == 7
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_retention_variables_are_an_explicit_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYSTALLIZE_ARTIFACT_RETENTION", "1")
    plugin = ArtifactPlugin(root_dir=tmp_path, versioned=True)
    assert plugin.artifact_retention == 1
    exp, _ = producer(tmp_path, replicates=1)
    exp.plugins = [plugin]
    exp.run()
    exp.run()
    assert not list((tmp_path / "train" / "v0").glob("replicate_*/**/model.json"))
    assert list((tmp_path / "train" / "v1").glob("replicate_*/**/model.json"))
    assert (tmp_path / "train" / "v0" / "baseline" / "results.json").exists()  # metrics are kept
    assert ArtifactPlugin(root_dir=tmp_path, artifact_retention=5).artifact_retention == 5  # the argument wins
    monkeypatch.setenv("CRYSTALLIZE_ARTIFACT_RETENTION", "three")
    with pytest.raises(ValueError, match="CRYSTALLIZE_ARTIFACT_RETENTION='three' is not a number"):
        ArtifactPlugin(root_dir=tmp_path)
    monkeypatch.setenv("CRYSTALLIZE_ARTIFACT_RETENTION", "0")
    with pytest.raises(ValueError, match="got 0 \\(from CRYSTALLIZE_ARTIFACT_RETENTION\\)"):
        ArtifactPlugin(root_dir=tmp_path)
    monkeypatch.delenv("CRYSTALLIZE_ARTIFACT_RETENTION")
    assert ArtifactPlugin(root_dir=tmp_path).artifact_retention is None  # keeps everything by default


def test_load_metrics_reads_what_completed_runs_stored(tmp_path):
    from crystallize_artifacts import load_all_metrics, load_metrics

    exp, _ = producer(tmp_path, replicates=2)
    exp.plugins = [ArtifactPlugin(root_dir=tmp_path, versioned=True)]

    class Score(PipelineStep):
        def __call__(self, data, ctx):
            ctx.metrics.add("score", data + ctx.get("plus", 0))
            return data

    exp.pipeline.steps.append(Score())
    exp.run(treatments=[Treatment("a", {"plus": 1}), Treatment("b", {"plus": 2})])
    exp.run(treatments=[Treatment("a", {"plus": 5})])
    folder = tmp_path / "train"
    assert load_metrics(folder) == (1, {"score": [0, 1]}, {"a": {"score": [5, 6]}})
    assert load_metrics(folder, version=0) == (0, {"score": [0, 1]}, {"a": {"score": [1, 2]}, "b": {"score": [2, 3]}})
    latest, baseline, treatments = load_all_metrics(folder)
    assert (latest, baseline) == (1, {"score": [0, 1]})
    assert treatments == {"a": (1, {"score": [5, 6]}), "b": (0, {"score": [2, 3]})}  # b only ran in v0
    assert load_metrics(tmp_path / "nothing") == (-1, {}, {}) == load_all_metrics(tmp_path / "nothing")


def test_results_export_as_json_parquet_and_a_verdict_table(tmp_path):
    from crystallize import Hypothesis

    exp, _ = producer(tmp_path)

    class Score(PipelineStep):
        def __call__(self, data, ctx):
            ctx.metrics.add("score", data + ctx.get("plus", 0))
            return data

    exp.pipeline.steps.append(Score())
    result = exp.run(treatments=[Treatment("a", {"plus": 1})], hypotheses=[Hypothesis(metrics="score")])
    text = result.to_json(tmp_path / "result.json")
    stored = json.loads((tmp_path / "result.json").read_text())
    assert stored == json.loads(text)
    assert stored["metrics"]["treatments"]["a"]["score"] == [1, 2, 3]
    assert stored["provenance"]["replicates"] == 3 and stored["timestamp"] == result.run.started_at
    assert [a["name"] for a in stored["artifacts"]] == ["model.json"] * 6
    table = result.metrics.to_df()
    assert list(table["condition"]) == ["a"] and list(table["hypothesis"]) == ["score"]
    assert "p_value" in table.columns
    pytest.importorskip("pyarrow")
    result.to_parquet(tmp_path / "result.parquet")


def test_apply_serves_predictions_from_a_stored_runs_artifacts(tmp_path):
    train, model = producer(tmp_path, replicates=1, factor=7)
    train.run()

    class Predict(PipelineStep):
        def __init__(self, model: Artifact):
            self.model = model

        def __call__(self, data, ctx):
            return data * self.model.fetch(ctx)["value"]  # replicate 0 of the stored run

    serve = Experiment(datasource=index(), pipeline=[Predict(model)], name="serve")
    assert serve.apply(data=3) == 0  # the stored model of replicate 0 is 0 * 7
    train.run(treatments=[Treatment("shift", {"plus": 2})])  # a newer version, with a treatment
    assert serve.apply(Treatment("shift", {}), data=3) == 6  # the newest run, its matching condition


def test_a_step_reading_another_experiments_artifact_works_in_worker_processes(tmp_path):
    from crystallize import ParallelExecution

    train, model = producer(tmp_path, replicates=2, factor=7)
    train.run()

    class Predict(PipelineStep):
        def __init__(self, model: Artifact):
            self.model = model

        def __call__(self, data, ctx):
            ctx.metrics.add("prediction", self.model.fetch(ctx)["value"] + 1)
            return data

    serve = Experiment(
        datasource=index(),
        pipeline=[Predict(model)],
        plugins=[ParallelExecution(executor_type="process", max_workers=2)],
        replicates=2,
    )
    result = serve.run()
    assert result.errors == {}
    assert result.metrics.baseline.metrics["prediction"] == [1, 8]


def test_require_metadata_is_checked_at_once_when_the_producer_has_run(tmp_path):
    from crystallize_artifacts import MetadataMissingError

    train, _ = producer(tmp_path)
    later = train.artifact_datasource(step="Produce", name="model.json", require_metadata=True)  # not run yet: later
    train.run()
    (tmp_path / "train" / "v0" / "metadata.json").unlink()
    with pytest.raises(MetadataMissingError, match="must run with ArtifactPlugin") as raised:
        train.artifact_datasource(step="Produce", name="model.json", require_metadata=True)
    assert isinstance(raised.value, FileNotFoundError)
    with pytest.raises(MetadataMissingError):
        Experiment(datasource=later, pipeline=[Consume()]).run()
