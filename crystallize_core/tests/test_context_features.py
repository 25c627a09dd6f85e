"""Context features crystallize-ml code relies on: tags, record, logger, ctx.artifacts, copies."""

from __future__ import annotations

import logging
import threading

import pytest

from crystallize import ContextMutationError, Experiment, FrozenContext, Pipeline, PipelineStep, data_source
from crystallize.testing import MemoryStorage


def test_record_and_tags_keep_one_tag_mapping_per_value():
    ctx = FrozenContext()
    ctx.record("loss", 0.5, tags={"epoch": 1})
    ctx.metrics.add("loss", 0.4)
    ctx.metrics.add("loss", 0.3, tags={"epoch": 3})
    assert ctx.metrics["loss"] == (0.5, 0.4, 0.3)
    assert ctx.metrics.get_tags("loss") == ({"epoch": 1}, {}, {"epoch": 3})
    assert ctx.metrics.get_tags("never") == ()


def test_metrics_snapshot_is_read_only_and_adds_from_threads_are_all_kept():
    ctx = FrozenContext()

    def add(_):
        for i in range(500):
            ctx.metrics.add("x", i)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = ctx.metrics.as_dict()
    assert len(snapshot["x"]) == 2000
    with pytest.raises(TypeError):
        snapshot["y"] = (1,)  # type: ignore[index]


def test_initial_values_are_copied_so_later_changes_do_not_leak_in():
    source = {"nested": {"x": 1}, "lock": threading.Lock()}
    ctx = FrozenContext(source)
    source["nested"]["x"] = 2
    assert ctx["nested"] == {"x": 1}
    assert ctx["lock"] is source["lock"]  # what cannot be copied is shared, not refused


def test_the_logger_is_crystallizes_unless_one_is_given():
    assert FrozenContext().logger.name == "crystallize"
    mine = logging.getLogger("mine")
    assert FrozenContext({}, logger=mine).logger is mine


def test_mutation_error_names_the_key_and_its_value():
    ctx = FrozenContext({"a": 1})
    with pytest.raises(ContextMutationError, match=r"Cannot mutate existing key: 'a' \('a' is already set to 1\)"):
        ctx.add("a", 2)


def test_artifact_log_outside_a_run_keeps_each_name_once():
    ctx = FrozenContext()
    ctx.artifacts.add("a.txt", b"1")
    ctx.artifacts.add("b.txt", "two")
    assert len(ctx.artifacts) == 2 and ctx.artifacts.get("b.txt") == b"two"
    with pytest.raises(ContextMutationError, match="'a.txt' was already added"):
        ctx.artifacts.add("a.txt", b"again")
    with pytest.raises(TypeError, match="bytes or str, got int"):
        ctx.artifacts.add("c.txt", 3)
    with pytest.raises(ValueError, match="artifact"):
        ctx.artifacts.add("../escape", b"x")


@data_source
def zero(ctx):
    return 0


class Log(PipelineStep):
    def __call__(self, data, ctx):
        ctx.artifacts.add("out.txt", f"{ctx['condition']}/{ctx['replicate']}")
        return data


class Count(PipelineStep):
    def __init__(self, seen):
        self.seen = seen

    def __call__(self, data, ctx):
        self.seen.append(len(ctx.artifacts))
        return data


def test_ctx_artifacts_in_a_run_are_written_through_the_store_per_step():
    seen: list[int] = []
    storage = MemoryStorage()
    exp = Experiment(datasource=zero(), pipeline=Pipeline([Log(), Count(seen)]), plugins=[storage], replicates=2)
    result = exp.run()
    assert result.errors == {}
    (run,) = storage.runs[exp.key].values()
    assert {p: b.decode() for p, b in run.artifacts.items()} == {
        "replicate_0/baseline/Log/out.txt": "baseline/0",
        "replicate_1/baseline/Log/out.txt": "baseline/1",
    }
    assert seen == [0, 0]  # the next step starts with an empty log
    assert [r.name for r in result.artifacts] == ["out.txt", "out.txt"]


def test_ctx_artifacts_without_storage_is_a_clear_error():
    result = Experiment(datasource=zero(), pipeline=Pipeline([Log()])).run()
    assert "no active plugin provides storage" in result.errors["baseline"][0].message
