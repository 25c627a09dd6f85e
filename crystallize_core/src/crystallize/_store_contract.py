"""Conformance tests every :class:`~crystallize.plugin.RunStore` passes: :class:`RunStoreContract`.

Subclass it in a test module, under a name pytest collects, and say how to
make your storage plugin::

    from crystallize.testing import RunStoreContract

    class TestMyStoreContract(RunStoreContract):
        def make_storage(self, tmp_path):
            return MyStoragePlugin(root=tmp_path)

Every ``test_*`` method then runs against your store. The tests open stores
through your plugin's ``open_store``/``locate_run`` hooks, exactly as the
core does, and drive them in the order the core does.
"""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from crystallize._datasource import data_source
from crystallize._digests import hash_bytes, parse_digest
from crystallize._experiment import Experiment
from crystallize._lifecycle import new_run
from crystallize._records import ArtifactRecord, CompletedWork, ReplicateError, ReplicateOutcome
from crystallize._steps import Pipeline, PipelineStep
from crystallize._store import RunStore
from crystallize._treatment import Treatment
from crystallize.errors import ReplicateRejected

__all__ = ["RunStoreContract"]

CONDITIONS = ("baseline", "double")


@data_source
def _contract_numbers(ctx: Any) -> list[int]:
    return [ctx["replicate"], 1, 2]


class _ContractStep(PipelineStep):
    """Writes one artifact and records one metric; fails for one (condition, replicate) if asked."""

    def __init__(self, out: Any, fail: tuple[str, int] | None = None) -> None:
        self.out = out
        self.fail = fail

    def __call__(self, data: Any, ctx: Any) -> Any:
        scale = ctx.get("scale", 1)
        self.out.write(f"{ctx['condition']}/{ctx['replicate']}".encode())
        ctx.metrics.add("total", sum(data) * scale)
        if self.fail == (ctx["condition"], ctx["replicate"]):
            raise RuntimeError("planned failure")
        return data

    @property
    def params(self) -> dict[str, Any]:
        return {"fail": self.fail}


def _outcome(condition: str, replicate: int, records: tuple[ArtifactRecord, ...] = (), **metrics: Any) -> Any:
    seed = 1000 + replicate
    return ReplicateOutcome(condition, replicate, {k: [v] for k, v in metrics.items()}, None, records, seed)


def _failure(condition: str, replicate: int) -> Any:
    error = ReplicateError(condition, replicate, "Step", "RuntimeError", "planned", "")
    return ReplicateOutcome(condition, replicate, {}, error)


class RunStoreContract:
    """What every storage plugin's stores do; subclass as ``Test<Something>`` and implement :meth:`make_storage`."""

    #: Set ``False`` for a store that lives in one process's memory: then the
    #: contract checks that pickling it fails with a clear ``TypeError``.
    travels_to_processes = True
    #: The algorithm your store's artifact digests use (``"blake3"``, ``"sha256"``), to check
    #: that every record names it; ``None`` accepts any known one. Either way each digest is
    #: checked by rehashing the bytes with the algorithm the record names.
    digest_algorithm: str | None = None

    def make_storage(self, tmp_path: Path) -> Any:
        """A fresh storage plugin (with ``open_store`` and ``locate_run``), keeping its runs under ``tmp_path``."""
        raise NotImplementedError("subclass RunStoreContract and implement make_storage(tmp_path)")

    # -- helpers ----------------------------------------------------------------------

    def experiment(self, storage: Any, fail: tuple[str, int] | None = None) -> Experiment:
        """The experiment the contract stores: two conditions, one artifact and one metric per replicate."""
        from crystallize._artifact import Artifact

        out = Artifact("out.txt")
        return Experiment(
            _contract_numbers(),
            Pipeline([_ContractStep(out, fail)]),
            plugins=[storage],
            outputs=[out],
            name="contract",
            treatments=[Treatment("double", {"scale": 2})],
            replicates=2,
        )

    def open(self, storage: Any, strategy: str = "rerun") -> RunStore:
        """Open a store the way the core does (``open_store`` for a new run of :meth:`experiment`)."""
        exp = self.experiment(storage)
        run = new_run(exp, strategy, 2, exp.treatments, exp.datasource)
        store = exp._plugins().hooks.open_store(experiment=exp, run=run)
        assert store is not None, "open_store returned None for an experiment the storage should store"
        return store  # type: ignore[no-any-return]

    def rehashed(self, digest: str, data: bytes) -> str:
        """``data``'s digest by the algorithm ``digest`` names (each store chooses its own, and says which)."""
        algorithm, _ = parse_digest(digest)  # a malformed digest or an unknown algorithm fails here, naming it
        if self.digest_algorithm is not None:
            assert algorithm == self.digest_algorithm, f"{digest!r} is not a {self.digest_algorithm} digest"
        return hash_bytes(data, algorithm)

    def locate(self, storage: Any, version: int | None = None) -> RunStore | None:
        exp = self.experiment(storage)
        return exp._plugins().hooks.locate_run(experiment=exp, version=version)  # type: ignore[no-any-return]

    # -- the contract -----------------------------------------------------------------

    def test_a_new_store_describes_itself_and_is_a_run_store(self, tmp_path: Path) -> None:
        store = self.open(self.make_storage(tmp_path))
        assert isinstance(store, RunStore)
        assert isinstance(store.version, int) and store.version >= 0
        assert isinstance(store.location, str) and store.location
        assert store.resumed is False
        assert store.crashed is None  # a new run has no predecessor that could have died
        store.close("completed")

    def test_json_documents_round_trip_and_a_missing_one_is_none(self, tmp_path: Path) -> None:
        store = self.open(self.make_storage(tmp_path))
        assert store.read_json("metadata.json") is None
        document = {"replicates": 2, "nested": {"list": [1, 2.5, "x", None, True]}}
        store.write_json("metadata.json", document)
        store.write_json("deeper/notes.json", [1])
        assert store.read_json("metadata.json") == document
        store.write_json("metadata.json", {"replaced": True})
        assert store.read_json("metadata.json") == {"replaced": True}
        assert store.read_json("deeper/notes.json") == [1]
        store.close("completed")

    def test_a_document_that_is_not_json_is_refused_naming_it(self, tmp_path: Path) -> None:
        import pytest

        store = self.open(self.make_storage(tmp_path))
        with pytest.raises(ValueError, match="notes.json"):
            store.write_json("notes.json", {"value": object()})
        store.close("failed")

    def test_an_artifact_write_is_committed_and_described(self, tmp_path: Path) -> None:
        store = self.open(self.make_storage(tmp_path))
        data = b"\x00model bytes\xff"
        record = store.write_artifact("baseline", 1, "Train", "model.bin", data)
        assert isinstance(record, ArtifactRecord)
        assert (record.name, record.step, record.condition, record.replicate) == ("model.bin", "Train", "baseline", 1)
        assert record.size == len(data) and record.digest == self.rehashed(record.digest, data)
        again = store.write_artifact("baseline", 1, "Train", "model.bin", b"new")
        assert again.path == record.path and again.size == 3
        store.close("completed")

    def test_a_streamed_artifact_appears_whole_when_closed(self, tmp_path: Path) -> None:
        store = self.open(self.make_storage(tmp_path))
        chunks = [bytes([i]) * 70_000 for i in range(40)] + [b"tail"]  # ~2.7 MB in uneven writes
        with store.open_artifact("baseline", 0, "Train", "model.bin") as sink:
            for chunk in chunks:
                sink.write(chunk)
                sink.write(memoryview(b"|"))
        expected = b"".join(chunk + b"|" for chunk in chunks)
        record = sink.record
        assert isinstance(record, ArtifactRecord)
        assert record.size == len(expected) and record.digest == self.rehashed(record.digest, expected)
        with store.read_artifact(record.path) as f:
            assert f.read() == expected
        same = store.write_artifact("baseline", 0, "Train", "bytes.bin", expected)
        assert same.digest == record.digest  # streamed and whole writes describe bytes alike
        store.close("completed")

    def test_a_streamed_artifact_is_dropped_when_its_writer_fails(self, tmp_path: Path) -> None:
        import pytest

        store = self.open(self.make_storage(tmp_path))
        record = store.write_artifact("baseline", 0, "Train", "model.bin", b"the old one")
        with (
            pytest.raises(RuntimeError, match="writer failed"),
            store.open_artifact("baseline", 0, "Train", "model.bin") as sink,
        ):
            sink.write(b"half of a new one")
            raise RuntimeError("writer failed")
        assert sink.record is None
        with store.read_artifact(record.path) as f:
            assert f.read() == b"the old one"  # never a partial artifact
        with pytest.raises(FileNotFoundError):
            store.read_artifact("replicate_0/baseline/Train/never.bin")
        store.close("completed")

    def test_an_existing_file_is_stored_by_copy_or_by_move(self, tmp_path: Path) -> None:
        store = self.open(self.make_storage(tmp_path))
        source = tmp_path / "checkpoint.pt"
        source.write_bytes(b"weights" * 1000)
        copied = store.write_artifact_file("baseline", 0, "Train", "copy.pt", source)
        assert source.exists() and copied.size == 7000
        moved = store.write_artifact_file("baseline", 0, "Train", "moved.pt", str(source), move=True)
        assert not source.exists()
        assert moved.digest == copied.digest == self.rehashed(copied.digest, b"weights" * 1000)
        with store.read_artifact(moved.path) as f:
            assert f.read() == b"weights" * 1000
        store.close("completed")

    def test_recorded_replicates_are_finished_and_failed_ones_are_not(self, tmp_path: Path) -> None:
        storage = self.make_storage(tmp_path)
        store = self.open(storage)
        record = store.write_artifact("double", 0, "Step", "out.txt", b"x")
        store.record_replicate(_outcome("double", 0, (record,), total=6), "fp-double")
        store.record_replicate(_failure("double", 1), "fp-double")
        store.close("failed")
        resumed = self.open(storage, strategy="resume")
        assert resumed.resumed is True and resumed.version == store.version
        finished = resumed.finished_replicates("double")
        assert list(finished) == [0]
        assert finished[0].metrics == {"total": [6]} and finished[0].fingerprint == "fp-double"
        assert finished[0].seed == 1000  # the seed it ran with, so a resumed result keeps it
        assert [a.path for a in finished[0].artifacts] == [record.path]
        assert resumed.completed_condition("double") is None
        resumed.close("failed")

    def test_metrics_that_cannot_be_stored_reject_the_replicate(self, tmp_path: Path) -> None:
        import pytest

        store = self.open(self.make_storage(tmp_path))
        with pytest.raises(ReplicateRejected, match="replicate 0"):
            store.record_replicate(_outcome("baseline", 0, weights=object()), None)
        deep: list[Any] = []
        for _ in range(100_000):  # deeper than any recursion limit: a RecursionError must not escape
            deep = [deep]
        with pytest.raises(ReplicateRejected, match="replicate 2"):
            store.record_replicate(_outcome("baseline", 2, nested=deep), None)
        store.record_replicate(_outcome("baseline", 1, total=1), None)  # the others are unaffected
        store.close("failed")

    def test_a_completed_condition_is_reported_with_its_metrics(self, tmp_path: Path) -> None:
        storage = self.make_storage(tmp_path)
        store = self.open(storage)
        for replicate in (0, 1):
            record = store.write_artifact("baseline", replicate, "Step", "out.txt", b"x")
            store.record_replicate(_outcome("baseline", replicate, (record,), total=replicate), "fp")
        store.complete_condition("baseline", 2, "fp", {"total": [0, 1]})
        store.close("completed")
        located = self.locate(storage)
        assert located is not None and located.version == store.version
        done = located.completed_condition("baseline")
        assert done is not None
        assert (done.condition, done.replicates, done.fingerprint) == ("baseline", 2, "fp")
        assert done.metrics == {"total": [0, 1]}
        assert dict(done.replicate_metrics or {}) == {0: {"total": [0]}, 1: {"total": [1]}}
        assert dict(done.seeds or {}) == {0: 1000, 1: 1001}
        assert located.completed_condition("double") is None

    def test_prepare_resume_withdraws_what_is_not_reused(self, tmp_path: Path) -> None:
        storage = self.make_storage(tmp_path)
        store = self.open(storage)
        for condition in CONDITIONS:
            for replicate in (0, 1):
                record = store.write_artifact(condition, replicate, "Step", "out.txt", b"x")
                store.record_replicate(_outcome(condition, replicate, (record,), total=replicate), condition)
            store.complete_condition(condition, 2, condition, {"total": [0, 1]})
        store.close("completed")
        resumed = self.open(storage, strategy="resume")
        for condition in CONDITIONS:  # what a resume plugin reads (on_resume) before the core calls prepare_resume
            resumed.completed_condition(condition)
            resumed.finished_replicates(condition)
        reuse = CompletedWork(conditions={"baseline": {"total": [0, 1]}}, replicates={"double": {0: {"total": [0]}}})
        resumed.prepare_resume(CONDITIONS, reuse, replicates=2, fingerprints={c: c for c in CONDITIONS})
        assert resumed.completed_condition("double") is None  # withdrawn before anything reruns
        resumed.close("interrupted")
        again = self.open(storage, strategy="resume")
        assert again.completed_condition("baseline") is not None
        assert again.completed_condition("double") is None
        assert list(again.finished_replicates("double")) == [0]
        again.close("interrupted")

    def test_a_rerun_starts_from_nothing(self, tmp_path: Path) -> None:
        storage = self.make_storage(tmp_path)
        first = self.open(storage)
        first.write_json("metadata.json", {"run": 1})
        first.complete_condition("baseline", 2, None, {})
        first.close("completed")
        second = self.open(storage)
        assert second.resumed is False
        assert second.read_json("metadata.json") is None and second.completed_condition("baseline") is None
        assert second.version >= first.version
        second.close("completed")

    def test_resuming_with_nothing_to_resume_starts_a_new_run(self, tmp_path: Path) -> None:
        store = self.open(self.make_storage(tmp_path), strategy="resume")
        assert store.resumed is False
        store.close("completed")

    def test_locate_run_reads_a_given_or_the_latest_version_and_refuses_writes(self, tmp_path: Path) -> None:
        import pytest

        storage = self.make_storage(tmp_path)
        assert self.locate(storage) is None
        store = self.open(storage)
        store.write_json("metadata.json", {"v": store.version})
        store.close("completed")
        latest = self.locate(storage)
        assert latest is not None and latest.version == store.version
        assert latest.read_json("metadata.json") == {"v": store.version}
        assert self.locate(storage, store.version) is not None
        assert self.locate(storage, store.version + 100) is None
        with pytest.raises(Exception):  # noqa: B017 - any error: read-only stores refuse writes
            latest.write_json("metadata.json", {})

    def test_artifacts_are_written_from_many_threads_at_once(self, tmp_path: Path) -> None:
        store = self.open(self.make_storage(tmp_path))

        def write(replicate: int) -> ArtifactRecord:
            return store.write_artifact("baseline", replicate, "Step", "out.txt", str(replicate).encode())

        with ThreadPoolExecutor(8) as pool:
            records = list(pool.map(write, range(64)))
        assert len({r.path for r in records}) == 64
        for record in records:
            store.record_replicate(_outcome("baseline", record.replicate, (record,), total=1), None)
        store.close("failed")

    def test_a_store_travels_to_worker_processes_or_says_it_cannot(self, tmp_path: Path) -> None:
        import cloudpickle
        import pytest

        store = self.open(self.make_storage(tmp_path))
        if self.travels_to_processes:
            copy = pickle.loads(cloudpickle.dumps(store))
            assert (copy.version, copy.location) == (store.version, store.location)
            record = copy.write_artifact("baseline", 0, "Step", "out.txt", b"from a worker")
            assert record.size == len(b"from a worker")
        else:
            with pytest.raises(TypeError, match="worker processes"):
                cloudpickle.dumps(store)
        store.close("completed")

    def test_an_experiment_runs_and_is_stored_through_it(self, tmp_path: Path) -> None:
        storage = self.make_storage(tmp_path)
        exp = self.experiment(storage, fail=("double", 1))
        result = exp.run()
        assert [(e.condition, e.replicate) for e in result.error_list()] == [("double", 1)]
        assert len(result.artifacts) == 3 and all(isinstance(a, ArtifactRecord) for a in result.artifacts)
        located = self.locate(storage)
        assert located is not None and located.version == result.run.version
        baseline = located.completed_condition("baseline")
        assert baseline is not None and baseline.metrics == result.metrics.baseline.metrics
        assert located.completed_condition("double") is None
        assert list(located.finished_replicates("double")) == [0]
