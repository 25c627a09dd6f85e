import pickle
import threading

import pytest
from core_helpers import numbers

from crystallize import (
    Artifact,
    ArtifactStoreError,
    Experiment,
    ParallelExecution,
    Pipeline,
    PipelineStep,
    Treatment,
    pipeline_step,
)
from crystallize.testing import MemoryStorage


class ModelStep(PipelineStep):
    """The guide's class step: holds its artifact, writes from __call__."""

    def __init__(self, out: Artifact):
        self.out = out

    def __call__(self, data, ctx):
        self.out.write(f"{ctx['condition']}-{ctx['replicate']}".encode())
        return data

    @property
    def params(self):
        return {}


@pipeline_step()
def save_json(data, ctx, out):
    out.write({"r": ctx["replicate"]})
    return data


def stored_files(storage, result):
    """``{path: bytes}`` a MemoryStorage holds for the run behind ``result``."""
    return storage.runs[result.run.key][result.run.version].artifacts


def test_class_step_writes_through_the_contextvar_scope():
    out = Artifact("model.bin")
    store = MemoryStorage()
    exp = Experiment(
        numbers(),
        Pipeline([ModelStep(out)]),
        plugins=[store],
        outputs=[out],
        replicates=2,
        treatments=[Treatment("t", {})],
    )
    result = exp.run()
    assert result.ok
    assert stored_files(store, result) == {
        "replicate_0/baseline/ModelStep/model.bin": b"baseline-0",
        "replicate_1/baseline/ModelStep/model.bin": b"baseline-1",
        "replicate_0/t/ModelStep/model.bin": b"t-0",
        "replicate_1/t/ModelStep/model.bin": b"t-1",
    }
    assert [r.path for r in result.artifacts][:1] == ["replicate_0/baseline/ModelStep/model.bin"]


def test_scopes_do_not_leak_between_threads():
    out = Artifact("model.bin")
    store = MemoryStorage()
    exp = Experiment(
        numbers(),
        Pipeline([ModelStep(out)]),
        plugins=[store, ParallelExecution(max_workers=4)],
        outputs=[out],
        replicates=20,
    )
    result = exp.run()
    assert result.ok
    files = stored_files(store, result)
    assert files == {f"replicate_{r}/baseline/ModelStep/model.bin": f"baseline-{r}".encode() for r in range(20)}


def test_writer_turns_objects_into_bytes_and_non_bytes_without_writer_fails_clearly():
    import json

    good = Artifact("a.json", writer=lambda obj: json.dumps(obj).encode())
    store = MemoryStorage()
    exp = Experiment(numbers(), Pipeline([save_json(out=good)]), plugins=[store], outputs=[good])
    result = exp.run()
    assert result.ok
    assert stored_files(store, result)["replicate_0/baseline/save_json/a.json"] == b'{"r": 0}'

    bad = Artifact("b.json")
    result = Experiment(numbers(), Pipeline([save_json(out=bad)]), plugins=[MemoryStorage()], outputs=[bad]).run()
    error = result.errors["baseline"][0]
    assert error.type_name == "TypeError"
    assert "Artifact 'b.json': write() got dict, not bytes" in error.message
    assert "writer=" in error.message


def test_writing_with_no_store_fails_before_any_work():
    out = Artifact("model.bin")
    calls = []

    class Spy(ModelStep):
        def __call__(self, data, ctx):
            calls.append(1)
            return super().__call__(data, ctx)

    exp = Experiment(numbers(), Pipeline([Spy(out)]), outputs=[out])
    with pytest.raises(ArtifactStoreError, match="no active plugin provides storage; pass a storage plugin"):
        exp.run()
    assert calls == []


def test_write_outside_a_step_is_a_clear_error():
    with pytest.raises(RuntimeError, match="outside a running pipeline step"):
        Artifact("x.bin").write(b"data")


def test_lambdas_in_loader_and_writer_pickle_with_standard_pickle():
    suffix = "!"
    art = Artifact("x.txt", loader=lambda p: p.read_text() + suffix, writer=lambda s: (s + suffix).encode())
    clone = pickle.loads(pickle.dumps(art))
    assert clone.writer("hi") == b"hi!"
    assert clone.name == "x.txt"


def test_load_uses_the_loader(tmp_path):
    (tmp_path / "f").write_text("content")
    assert Artifact("f").load(tmp_path / "f") == b"content"
    assert Artifact("f", loader=lambda p: p.read_text().upper()).load(tmp_path / "f") == "CONTENT"


def test_undeclared_artifact_written_by_a_function_step_is_reported():
    other = Artifact("other.bin")

    @pipeline_step()
    def sneaky(data, ctx):
        other.write(b"x")
        return data

    result = Experiment(
        numbers(), Pipeline([sneaky()]), plugins=[MemoryStorage()], outputs=[Artifact("declared.bin")]
    ).run()
    assert "not declared in this experiment's outputs" in result.errors["baseline"][0].message


def test_scope_is_reset_after_the_run():
    from crystallize._artifact import current_scope

    out = Artifact("model.bin")
    Experiment(numbers(), Pipeline([ModelStep(out)]), plugins=[MemoryStorage()], outputs=[out]).run()
    assert current_scope() is None
    assert threading.current_thread() is threading.main_thread()
