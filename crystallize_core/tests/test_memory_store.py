"""The reference in-memory store passes the store contract, and works as a storage plugin."""

from __future__ import annotations

from core_helpers import numbers, total

from crystallize import Experiment, Pipeline, Treatment
from crystallize.testing import MemoryStorage, RunStoreContract


class TestMemoryStoreContract(RunStoreContract):
    travels_to_processes = False
    digest_algorithm = "sha256"  # the reference store needs no hashing package

    def make_storage(self, tmp_path):
        return MemoryStorage()


class TestUnversionedMemoryStoreContract(RunStoreContract):
    travels_to_processes = False
    digest_algorithm = "sha256"

    def make_storage(self, tmp_path):
        return MemoryStorage(versioned=False)


def test_versions_follow_each_other_and_runs_close_with_their_status():
    storage = MemoryStorage()
    exp = Experiment(numbers(), Pipeline([total()]), plugins=[storage], name="mem", treatments=[Treatment("t", {})])
    first, second = exp.run(), exp.run()
    assert (first.run.version, second.run.version) == (0, 1)
    assert [run.status for run in storage.runs["mem"].values()] == ["completed", "completed"]
    assert storage.runs["mem"][1].completed["t"].metrics == second.metrics.treatments["t"].metrics
