"""The :class:`ResumePlugin`: what an earlier run already completed."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

from crystallize.errors import ResumeError
from crystallize.hooks import hookimpl
from crystallize.run import CompletedWork

if TYPE_CHECKING:
    from crystallize.experiment import Experiment
    from crystallize.run import Run
    from crystallize.store import RunStore

__all__ = ["ResumePlugin"]

log = logging.getLogger("crystallize.resume")


class ResumePlugin:
    """Report completed work of the run being resumed.

    Reads only through the run's :class:`~crystallize.store.RunStore`, so it
    works with any storage plugin. Rules:

    - the run's recorded pipeline id must equal the experiment's, else
      :class:`~crystallize.errors.ResumeError` (resuming would mix two
      pipelines' results; use ``strategy="rerun"`` for a new version);
    - a condition with a completion marker for the same replicate count and
      treatment is complete: its metrics come from ``results.json`` (a marker
      written by crystallize-ml, which records no count, is trusted only when
      every metric has a value per replicate of ``metadata.json``'s count);
    - otherwise each journaled replicate of the same treatment is complete,
      and so is each replicate of a condition completed for another replicate
      count; the rest (failed, interrupted, never started) runs again;
    - a condition whose treatment changed since it ran is rerun whole.
    """

    plugin_name = "resume"

    @hookimpl
    def on_resume(self, experiment: Experiment, run: Run) -> CompletedWork | None:
        store = run.store
        if store is None:
            warnings.warn(
                f"strategy='resume' for experiment {experiment.key_label}, but no plugin stores its runs "
                "(configure ArtifactPlugin); everything runs",
                stacklevel=2,
            )
            return None
        if not store.resumed:
            log.info("no earlier run of %s to resume; starting %s", experiment.key_label, store.location)
            return None
        metadata = self._check_identity(experiment, run, store)
        conditions: dict[str, Any] = {}
        replicates: dict[str, dict[int, Any]] = {}
        seeds: dict[str, dict[int, int | None]] = {}
        for condition in run.conditions:
            fingerprint = run.fingerprints.get(condition)
            record = store.completed_condition(condition)
            if record is not None and record.fingerprint not in (None, fingerprint):
                log.warning("condition %r changed since it ran; it runs again from scratch", condition)
                continue
            if record is not None and (
                record.replicates == run.replicates
                or (record.replicates is None and _legacy_complete(record.metrics, metadata, run.replicates))
            ):
                conditions[condition] = record.metrics
                if record.replicate_metrics is not None:  # its split by replicate, for Result
                    replicates[condition] = dict(record.replicate_metrics)
                if record.seeds:
                    seeds[condition] = dict(record.seeds)
                continue
            finished = {
                r: rec
                for r, rec in store.finished_replicates(condition).items()
                if rec.fingerprint in (None, fingerprint) and r < run.replicates
            }
            done = {r: rec.metrics for r, rec in finished.items()}
            known = {r: rec.seed for r, rec in finished.items() if rec.seed is not None}
            if record is not None and record.replicate_metrics:  # complete for another replicate count
                for r, metrics in record.replicate_metrics.items():
                    if r < run.replicates and r not in done:
                        done[r] = metrics
                        if record.seeds and record.seeds.get(r) is not None:
                            known[r] = record.seeds[r]
            if done:
                replicates[condition] = done
            if known:
                seeds[condition] = known
        run.facts["resume"] = {
            "from": store.location,
            "complete_conditions": sorted(conditions),
            "finished_replicates": sum(len(v) for c, v in replicates.items() if c not in conditions),
        }
        log.info(
            "resuming %s: %d condition(s) complete, %d replicate(s) finished elsewhere",
            experiment.key_label,
            len(conditions),
            sum(len(v) for c, v in replicates.items() if c not in conditions),
        )
        return CompletedWork(conditions=conditions, replicates=replicates, seeds=seeds)

    @staticmethod
    def _check_identity(experiment: Experiment, run: Run, store: RunStore) -> dict[str, Any]:
        try:
            document = store.read_json("metadata.json")
        except ValueError as exc:
            raise ResumeError(
                f"cannot resume {store.location}: {exc}. Run with strategy='rerun' to start afresh"
            ) from None
        if not isinstance(document, dict):
            return {}
        recorded = document.get("id")
        if recorded and recorded != run.experiment_id:
            raise ResumeError(
                f"cannot resume experiment {experiment.key_label} in {store.location}: its pipeline "
                f"changed since that run (recorded id {recorded}, now {run.experiment_id}). Resuming "
                "would mix results of two different pipelines; use strategy='rerun' to start a new run"
            )
        return document

    def __repr__(self) -> str:
        return "ResumePlugin()"


def _legacy_complete(metrics: Any, metadata: dict[str, Any], replicates: int) -> bool:
    """Trust a crystallize-ml marker (it records no count, and was written even
    over failed replicates) only if every metric has a value per replicate."""
    if metadata.get("replicates") != replicates or not isinstance(metrics, dict) or not metrics:
        return False
    return all(isinstance(v, list) and v and len(v) % replicates == 0 for v in metrics.values())
