"""The :class:`MetadataPlugin`."""

from __future__ import annotations

import logging
import platform
from datetime import datetime, timezone
from functools import cache
from typing import TYPE_CHECKING, Any

from crystallize.hooks import hookimpl

if TYPE_CHECKING:
    from collections.abc import Mapping

    from crystallize.experiment import Experiment
    from crystallize.result import Result
    from crystallize.run import ReplicateError, Run

__all__ = ["MetadataPlugin", "METADATA_FILE"]

METADATA_FILE = "metadata.json"
log = logging.getLogger("crystallize.metadata")

_CORE_DISTRIBUTIONS = ("crystallize-core", "crystallize-artifacts", "crystallize-metadata", "crystallize-resume")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@cache
def _version_of(distribution: str) -> str | None:
    from crystallize._compat import dist_version

    try:
        return dist_version(distribution)
    except Exception:  # noqa: BLE001 - not installed, or broken metadata
        return None


class MetadataPlugin:
    """Write ``metadata.json`` into every run folder a storage plugin opens.

    The keys crystallize-ml 0.27 wrote (``replicates``, ``id``, ``name``) are
    kept, so its readers work; the rest is added. The file is written when
    the run starts (status ``running``) and when it ends (``completed``,
    ``failed`` or ``interrupted``, with the conditions completed by then; the
    completion markers show progress in between). A resumed run keeps its
    ``run_id`` and ``created_at`` and appends to ``resumed_at``.

    Does nothing for runs no storage plugin stores.
    """

    plugin_name = "metadata"

    def __init__(self) -> None:
        self._documents: dict[str, dict[str, Any]] = {}

    def _packages(self, experiment: Experiment) -> dict[str, str | None]:
        packages = {name: _version_of(name) for name in _CORE_DISTRIBUTIONS}
        for info in experiment.plugin_state().infos:
            if info.distribution:
                packages[info.distribution] = info.version
        return {k: v for k, v in sorted(packages.items()) if v is not None}

    @hookimpl(trylast=True)
    def before_run(self, experiment: Experiment, run: Run) -> None:
        store = run.store
        if store is None:
            return
        previous = store.read_json(METADATA_FILE) if store.resumed else None
        previous = previous if isinstance(previous, dict) else {}
        document = {
            "replicates": run.replicates,
            "id": run.experiment_id,
            "name": run.experiment_name,
            "version": run.version,
            "run_id": previous.get("run_id", run.run_id),
            "status": "running",
            "strategy": run.strategy,
            "description": experiment.description,
            # A resumed folder keeps conditions this invocation left out.
            "conditions": list(dict.fromkeys([*previous.get("conditions", ()), *run.conditions])),
            "fingerprints": {**previous.get("fingerprints", {}), **run.fingerprints},
            "outputs": sorted(experiment.outputs),
            "completed_conditions": [
                *(c for c in previous.get("completed_conditions", ()) if c not in run.conditions),
                *(c for c in run.conditions if run.completed and c in run.completed.conditions),
            ],
            "upstream": [u.to_json() for u in run.upstream],
            "seeds": run.facts.get("seed"),
            "facts": dict(run.facts),
            "signature": {"steps": experiment.pipeline.signature()},
            "packages": self._packages(experiment),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "created_at": previous.get("created_at", run.started_at),
            "resumed_at": [*previous.get("resumed_at", ()), run.started_at] if store.resumed else [],
            "updated_at": _now(),
            "finished_at": None,
        }
        self._documents[run.run_id] = document
        nothing_to_run = run.completed is not None and set(run.conditions) <= set(run.completed.conditions)
        if not nothing_to_run:  # a resume with nothing left only gets its final write
            store.write_json(METADATA_FILE, document)

    @hookimpl
    def on_condition_complete(self, run: Run, condition: str, errors: Mapping[int, ReplicateError]) -> None:
        # Noted in memory only; written with the rest when the run ends.
        document = self._documents.get(run.run_id)
        if document is not None and not errors and condition not in document["completed_conditions"]:
            document["completed_conditions"].append(condition)

    @hookimpl
    def after_run(self, run: Run, result: Result) -> None:
        document = self._documents.pop(run.run_id, None)
        if document is None or run.store is None:
            return  # before_run never wrote it: leave whatever is on disk alone
        now = _now()
        document.update(
            status=run.status,
            facts=dict(run.facts),
            seeds=run.facts.get("seed"),
            failed_replicates=sum(len(e) for e in result.errors.values()),
            updated_at=now,
            finished_at=now,
        )
        run.store.write_json(METADATA_FILE, document)

    @hookimpl
    def stale_reason(self, experiment: Experiment) -> str | None:
        store = experiment.locate_run()
        if store is None:
            return None
        try:
            document = store.read_json(METADATA_FILE)
        except ValueError as exc:
            return f"its metadata is unreadable ({exc})"
        if not isinstance(document, dict) or not document.get("upstream"):
            return None
        recorded = {(u.get("experiment"), u.get("step"), u.get("artifact")): u for u in document["upstream"]}
        try:
            current = experiment.datasource.resolve().upstream
        except (OSError, ValueError) as exc:
            return f"its input cannot be read ({exc})"
        for upstream in current:
            before = recorded.get((upstream.experiment, upstream.step, upstream.artifact))
            if before is None:
                return f"it now reads {upstream.artifact!r} of {upstream.experiment!r}, which its last run did not"
            changed = (
                before.get("run_id") != upstream.run_id
                if before.get("run_id") and upstream.run_id
                else before.get("version") != upstream.version
            )
            if changed:
                return (
                    f"upstream {upstream.experiment!r} was rerun since its last run "
                    f"(it read v{before.get('version')}, the latest is v{upstream.version})"
                )
        return None

    def __repr__(self) -> str:
        return "MetadataPlugin()"
