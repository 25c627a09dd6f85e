"""Three plugins written against ``crystallize.plugin`` alone: storage, an execution engine, an observer.

This module imports the standard library and ``crystallize.plugin``, nothing
else (``test_public_plugin_api.py`` checks it): everything a third party
needs to extend Crystallize is public.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from crystallize.plugin import (
    EXECUTION_FACT,
    ArtifactRecord,
    CompletedWork,
    ConditionRecord,
    FactKey,
    ReplicateBatch,
    ReplicateOutcome,
    ReplicateRecord,
    ReplicateRejected,
    Run,
    check_name,
    decode_outcome,
    hash_bytes,
    hookimpl,
    lost_unit_outcome,
    prepare_worker,
    run_unit,
)

# -- storage: one folder per run, one JSON file per record ----------------------------------------


def _commit(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class FolderStore:
    """A RunStore keeping each record in a JSON file of the run's folder."""

    def __init__(self, folder: Path, version: int, resumed: bool = False, readonly: bool = False) -> None:
        self.folder = folder
        self.version = version
        self.location = str(folder)
        self.resumed = resumed
        self.readonly = readonly

    def read_json(self, path: str) -> Any | None:
        try:
            return json.loads((self.folder / path).read_bytes())
        except FileNotFoundError:
            return None

    def write_json(self, path: str, document: Any) -> None:
        self._writable()
        try:
            data = json.dumps(document).encode()
        except TypeError as exc:
            raise ValueError(f"{self.folder / path} cannot be written as JSON: {exc}") from None
        _commit(self.folder / path, data)

    def completed_condition(self, condition: str) -> ConditionRecord | None:
        doc = self.read_json(f"{condition}/complete.json")
        if doc is None:
            return None
        per_replicate = {int(r): m for r, m in doc["replicate_metrics"].items()}
        seeds = {int(r): seed for r, seed in doc["seeds"].items()}
        return ConditionRecord(condition, doc["replicates"], doc["fingerprint"], doc["metrics"], per_replicate, seeds)

    def finished_replicates(self, condition: str) -> Mapping[int, ReplicateRecord]:
        found = {}
        for entry in sorted((self.folder / condition / "journal").glob("*.json")):
            doc = json.loads(entry.read_bytes())
            artifacts = tuple(ArtifactRecord.from_json(a) for a in doc["artifacts"])
            if all((self.folder / a.path).is_file() for a in artifacts):
                found[doc["replicate"]] = ReplicateRecord(
                    condition, doc["replicate"], doc["metrics"], doc["fingerprint"], artifacts, doc["seed"]
                )
        return found

    def prepare_resume(self, conditions: tuple[str, ...], completed: CompletedWork) -> None:
        for condition in conditions:
            if condition in completed.conditions:
                continue
            (self.folder / condition / "complete.json").unlink(missing_ok=True)
            reused = completed.replicates.get(condition, {})
            for entry in (self.folder / condition / "journal").glob("*.json"):
                if int(entry.stem) not in reused:
                    entry.unlink()

    def write_artifact(self, condition: str, replicate: int, step: str, name: str, data: bytes) -> ArtifactRecord:
        self._writable()
        path = f"replicate_{replicate}/{condition}/{step}/{name}"
        _commit(self.folder / path, data)
        return ArtifactRecord(name, step, condition, replicate, path, len(data), hash_bytes(data, "sha512"))

    def record_replicate(self, outcome: ReplicateOutcome, fingerprint: str | None) -> None:
        if outcome.error is not None:
            return
        entry = {
            "replicate": outcome.replicate,
            "fingerprint": fingerprint,
            "metrics": outcome.metrics,
            "artifacts": [a.to_json() for a in outcome.artifacts],
            "seed": outcome.seed,
        }
        try:
            data = json.dumps(entry).encode()
        except TypeError as exc:
            raise ReplicateRejected(f"replicate {outcome.replicate}'s metrics are not JSON: {exc}") from None
        _commit(self.folder / outcome.condition / "journal" / f"{outcome.replicate}.json", data)

    def complete_condition(
        self, condition: str, replicates: int, fingerprint: str | None, metrics: Mapping[str, Any]
    ) -> None:
        finished = self.finished_replicates(condition)
        doc = {
            "replicates": replicates,
            "fingerprint": fingerprint,
            "metrics": metrics,
            "replicate_metrics": {str(r): rec.metrics for r, rec in finished.items()},
            "seeds": {str(r): rec.seed for r, rec in finished.items()},
        }
        _commit(self.folder / condition / "complete.json", json.dumps(doc).encode())  # the vouching file, last

    def close(self, status: str) -> None:
        if not self.readonly:
            self.write_json("status.json", {"status": status})

    def _writable(self) -> None:
        if self.readonly:
            raise RuntimeError(f"{self.folder} was opened read-only")


class FolderStorage:
    """The storage plugin: ``<root>/<experiment>/v<N>/``, versions claimed with ``os.mkdir``."""

    plugin_name = "folder-storage"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()

    def _versions(self, key: str) -> list[int]:
        folder = self.root / check_name(key, "experiment")
        return sorted(int(p.name[1:]) for p in folder.glob("v*") if p.name[1:].isdigit())

    @hookimpl
    def open_store(self, experiment: Any, run: Run) -> FolderStore:
        versions = self._versions(run.key)
        if run.strategy == "resume" and versions:
            return FolderStore(self.root / run.key / f"v{versions[-1]}", versions[-1], resumed=True)
        version = versions[-1] + 1 if versions else 0
        while True:
            try:
                (self.root / run.key).mkdir(parents=True, exist_ok=True)
                os.mkdir(self.root / run.key / f"v{version}")
                return FolderStore(self.root / run.key / f"v{version}", version)
            except FileExistsError:
                version += 1

    @hookimpl
    def locate_run(self, experiment: Any, version: int | None) -> FolderStore | None:
        versions = self._versions(experiment.key)
        version = versions[-1] if version is None and versions else version
        if version is None or version not in versions:
            return None
        return FolderStore(self.root / experiment.key / f"v{version}", version, readonly=True)


# -- an execution engine: a process pool driven through the worker helpers ---------------------------


class PoolEngine:
    """Runs every unit in worker processes with run_unit, reporting outcomes as they arrive."""

    plugin_name = "pool-engine"

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers

    @hookimpl
    def execute_replicates(self, run: Run, batch: ReplicateBatch) -> bool:
        run.facts[EXECUTION_FACT] = {"engine": "pool", "workers": self.workers}
        payload, token = batch.payload(), batch.token
        with ProcessPoolExecutor(self.workers, initializer=prepare_worker, initargs=(payload, token)) as pool:
            futures = {pool.submit(run_unit, payload, token, c, r): (c, r) for c, r in batch.units}
            for future in as_completed(futures):
                condition, replicate = futures[future]
                try:
                    outcome = decode_outcome(future.result())
                except Exception as exc:  # noqa: BLE001 - the unit is reported lost; resume reruns it
                    outcome = lost_unit_outcome(condition, replicate, f"its worker failed: {exc}")
                batch.report(outcome)
        return True


# -- an observer: what happened, where -------------------------------------------------------------------

#: What the observer tallied for a run: ``{"outcomes": n, "failed": n, "artifacts": n}``.
TALLY: FactKey[dict[str, int]] = FactKey("tally.counts", "outcomes, failures and artifacts of the run")


class Tally:
    """Observes replicates where they run and outcomes in the main process, per run."""

    plugin_name = "tally"

    def __init__(self) -> None:
        self.started_in: int | None = None
        self.counts: dict[str, dict[str, int]] = {}

    @hookimpl
    def on_worker_start(self) -> None:
        self.started_in = os.getpid()

    @hookimpl(wrapper=True)
    def wrap_replicate(self, ctx: Any) -> Any:
        ctx.metrics.add("worker", os.getpid())
        ctx.metrics.add("started_here", self.started_in == os.getpid())
        return (yield)

    @hookimpl
    def on_artifact_write(self, record: ArtifactRecord, ctx: Any) -> None:
        ctx.metrics.add("written", record.digest)

    @hookimpl
    def on_replicate_outcome(self, run: Run, outcome: ReplicateOutcome) -> None:
        counts = self.counts.setdefault(run.run_id, {"outcomes": 0, "failed": 0, "artifacts": 0})
        counts["outcomes"] += 1
        counts["failed"] += not outcome.ok
        counts["artifacts"] += len(outcome.artifacts)

    @hookimpl
    def after_run(self, run: Run) -> None:
        run.facts[TALLY] = self.counts.pop(run.run_id, {})
