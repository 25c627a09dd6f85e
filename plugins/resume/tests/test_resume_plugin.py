"""The resume plugin works with any RunStore, not only crystallize-artifacts'."""

from __future__ import annotations

import pytest

from crystallize import Experiment, Pipeline, ResumeError, Treatment, data_source, hookimpl, pipeline_step
from crystallize.plugin import RESUME_FACT, ConditionRecord, ReplicateRecord
from crystallize.testing import installed_plugins_only
from crystallize_resume import ResumePlugin


@data_source
def one(ctx):
    return 1.0


@pipeline_step()
def record(data, ctx, scale=1.0):
    ctx.metrics.add("value", data * scale * 10 + ctx["replicate"])
    return data


class DictStore:
    """A RunStore backed by dicts, as a remote-storage plugin might provide."""

    version = 4
    location = "memory://exp/v4"

    def __init__(self, resumed=True, documents=None, complete=None, journal=None):
        self.resumed = resumed
        self.documents = documents or {}
        self.complete = complete or {}
        self.journal = journal or {}

    def read_json(self, path):
        value = self.documents.get(path)
        if value == "corrupt":
            raise ValueError(f"{path} is not valid JSON")
        return value

    def write_json(self, path, document):
        self.documents[path] = document

    def completed_condition(self, condition):
        return self.complete.get(condition)

    def finished_replicates(self, condition):
        return self.journal.get(condition, {})

    # The write side the core drives; these tests look at what resume reads.
    def prepare_resume(self, conditions, completed, replicates=None, fingerprints=None):
        self.prepared = (conditions, completed)

    def write_artifact(self, condition, replicate, step, name, data):
        raise AssertionError("these experiments write no artifacts")

    def record_replicate(self, outcome, fingerprint):
        self.recorded = [*getattr(self, "recorded", []), (outcome.condition, outcome.replicate)]

    def complete_condition(self, condition, replicates, fingerprint, metrics):
        self.completed = [*getattr(self, "completed", []), condition]

    def close(self, status):
        self.status = status


class StorePlugin:
    def __init__(self, store):
        self.store = store

    @hookimpl
    def open_store(self):
        return self.store


class Ran:
    def __init__(self):
        self.units = []

    @hookimpl
    def on_replicate_outcome(self, outcome):
        self.units.append((outcome.condition, outcome.replicate))


@pytest.fixture(autouse=True)
def only_resume():
    with installed_plugins_only():
        yield


def build(store, spy, replicates=3):
    return Experiment(
        one(),
        Pipeline([record()]),
        plugins=[ResumePlugin(), StorePlugin(store), spy],
        treatments=[Treatment("t", {"scale": 2.0})],
        replicates=replicates,
    )


def test_complete_conditions_and_journaled_replicates_are_skipped():
    spy = Ran()
    exp = build(DictStore(), spy)
    fingerprint = Treatment("t", {"scale": 2.0}).fingerprint()
    exp_store = DictStore(
        documents={"metadata.json": {"id": exp.id}},
        complete={"baseline": ConditionRecord("baseline", 3, "", {"value": [10.0, 11.0, 12.0]})},
        journal={"t": {1: ReplicateRecord("t", 1, {"value": [21.0]}, fingerprint)}},
    )
    exp.plugins[1] = StorePlugin(exp_store)
    result = exp.run(strategy="resume")
    assert spy.units == [("t", 0), ("t", 2)]
    # The core drove the store: prepared for what resume reused, recorded the rest, completed t, closed.
    assert exp_store.prepared == (("baseline", "t"), result.run.completed)
    assert (exp_store.recorded, exp_store.completed, exp_store.status) == ([("t", 0), ("t", 2)], ["t"], "completed")
    assert result.metrics.baseline.metrics == {"value": [10.0, 11.0, 12.0]}
    assert result.metrics.treatments["t"].metrics == {"value": [20.0, 21.0, 22.0]}
    assert result.run.facts[RESUME_FACT] == {
        "from": "memory://exp/v4",
        "complete_conditions": ["baseline"],
        "finished_replicates": 1,
    }


def test_stale_units_are_not_trusted():
    spy = Ran()
    exp = build(DictStore(), spy)
    exp.plugins[1] = StorePlugin(
        DictStore(
            documents={"metadata.json": {"id": exp.id}},
            complete={"baseline": ConditionRecord("baseline", 2, "", {"value": [1, 2]})},  # 2 != 3 replicates
            journal={
                "baseline": {0: ReplicateRecord("baseline", 0, {"value": [10.0]}, "")},
                "t": {0: ReplicateRecord("t", 0, {"value": [99.0]}, "old-fingerprint")},  # treatment changed
            },
        )
    )
    exp.run(strategy="resume")
    assert spy.units == [("baseline", 1), ("baseline", 2), ("t", 0), ("t", 1), ("t", 2)]


def test_changed_pipeline_and_corrupt_metadata_are_refused():
    spy = Ran()
    exp = build(DictStore(documents={"metadata.json": {"id": "something-else"}}), spy)
    with pytest.raises(ResumeError, match="recorded id something-else"):
        exp.run(strategy="resume")
    exp = build(DictStore(documents={"metadata.json": "corrupt"}), spy)
    with pytest.raises(ResumeError, match="not valid JSON"):
        exp.run(strategy="resume")
    assert spy.units == []


@pytest.mark.parametrize("metadata", [None, [], 7, "null", {"name": "x"}, {"id": 3}])
def test_finished_work_without_a_usable_metadata_id_is_refused(metadata):
    spy = Ran()
    documents = {} if metadata is None else {"metadata.json": None if metadata == "null" else metadata}
    store = DictStore(documents=documents, journal={"baseline": {0: ReplicateRecord("baseline", 0, {"value": [1.0]})}})
    with pytest.raises(ResumeError, match=r"cannot resume memory://exp/v4: .*(metadata\.json|'id')"):
        build(store, spy).run(strategy="resume")
    assert spy.units == []


def test_a_folder_without_metadata_and_without_finished_work_resumes_as_a_fresh_run():
    spy = Ran()
    build(DictStore(), spy).run(strategy="resume")
    assert len(spy.units) == 6


def test_without_a_store_resume_warns_and_runs_everything():
    spy = Ran()
    exp = Experiment(one(), Pipeline([record()]), plugins=[ResumePlugin(), spy], replicates=2)
    with pytest.warns(UserWarning, match="no plugin stores its runs"):
        exp.run(strategy="resume")
    assert len(spy.units) == 2


def test_a_new_store_means_a_fresh_run():
    spy = Ran()
    build(DictStore(resumed=False), spy).run(strategy="resume")
    assert len(spy.units) == 6
