"""The :class:`ResumePlugin`: what an earlier run already completed."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

from crystallize.plugin import (
    RESUME_FACT,
    CompletedWork,
    ReplicateColumns,
    ResumeError,
    crystallize_ml_ids,
    hookimpl,
    identity_changes,
)
from crystallize.plugin import documents as d

if TYPE_CHECKING:
    from crystallize import Experiment
    from crystallize.plugin import Run, RunStore

__all__ = ["ResumePlugin", "LegacyRunWarning"]

log = logging.getLogger("crystallize.resume")


class LegacyRunWarning(UserWarning):
    """A run written by crystallize-ml 0.27 is resumed without proof that its code is this code."""


class ResumePlugin:
    """Report completed work of the run being resumed.

    Reads only through the run's :class:`~crystallize.plugin.RunStore`, so it
    works with any storage plugin. Rules:

    - the run's recorded pipeline id must equal the experiment's, else
      :class:`~crystallize.plugin.ResumeError` naming what changed (which
      step or datasource, its code or its parameters, with the old and new
      fingerprints) — resuming would return results of code that no longer
      exists; nothing on disk is touched. A missing or malformed
      ``metadata.json`` is refused the same way when the folder holds work
      to reuse;
    - a run written by crystallize-ml 0.27 (a 64-hex ``id``, no signature)
      resumes when the id 0.27 would give this pipeline matches; when 0.27's
      id cannot be recomputed (a parameter's ``repr`` held a memory address)
      it resumes with a :class:`LegacyRunWarning`; otherwise it is refused;
    - a condition completed for more replicates than this run has is reused
      for the replicates this run has, with a warning; the others stay on
      disk, so resuming with the larger count again reuses them;
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
        if getattr(store, "crashed", None):  # stores written before the attribute existed
            log.warning(
                "%s was left unfinished by %s, which died (recorded as crashed); resuming it",
                store.location,
                store.crashed,
            )
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
                split = record.replicate_metrics
                if split is not None:  # its split by replicate, for Result (columns are read-only: no copy)
                    replicates[condition] = split if type(split) is ReplicateColumns else dict(split)
                if record.seeds:
                    seeds[condition] = dict(record.seeds)
                continue
            journaled = store.finished_replicates(condition).items()
            finished = {r: rec for r, rec in journaled if rec.fingerprint in (None, fingerprint)}
            found = {r: rec.metrics for r, rec in finished.items()}
            known = {r: rec.seed for r, rec in finished.items() if rec.seed is not None}
            if record is not None and record.replicate_metrics:  # complete for another replicate count
                for r, metrics in record.replicate_metrics.items():
                    if r not in found:
                        found[r] = metrics
                        if record.seeds and record.seeds.get(r) is not None:
                            known[r] = record.seeds[r]
            done = {r: metrics for r, metrics in found.items() if r < run.replicates}
            known = {r: seed for r, seed in known.items() if r < run.replicates}
            beyond = sorted(r for r in found if r >= run.replicates)
            if beyond:
                warnings.warn(
                    f"resuming {experiment.key_label} with replicates={run.replicates}: condition {condition!r} "
                    f"has {len(beyond)} finished replicate(s) beyond that ({_spans(beyond)}). They are kept on "
                    "disk, not in this result, and reused when you resume with more replicates again",
                    stacklevel=2,
                )
            if done:
                replicates[condition] = done
            if known:
                seeds[condition] = known
        run.facts[RESUME_FACT] = {
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
    def _check_identity(experiment: Experiment, run: Run, store: RunStore) -> RecordedRun:
        """The folder's recorded pipeline must be this one, provably.

        ``metadata.json`` missing, unreadable or of the wrong shape is a
        :class:`~crystallize.plugin.ResumeError` whenever the folder holds
        work resume would reuse — without the recorded id, reusing it could
        mix two pipelines' results. A folder holding nothing reusable, or one
        written by crystallize-ml 0.27 (its ``_manifest.json`` and empty markers,
        which resume trusts only with a recorded replicate count), resumes as
        a fresh run.
        """
        source = f"{store.location}/metadata.json"
        try:
            recorded = parse_recorded_run(store.read_json("metadata.json"), source)
        except ValueError as exc:
            raise ResumeError(
                f"cannot resume {store.location}: {exc}. Resume needs the pipeline id recorded in metadata.json "
                "to make sure the folder holds this pipeline's results; restore the file, or run with "
                "strategy='rerun' to start afresh"
            ) from None
        if recorded is None:
            held = _held_work(store, run)
            if held and not _written_by_crystallize_ml(store, run):
                raise ResumeError(
                    f"cannot resume {store.location}: it holds finished work ({held}) but no metadata.json, so "
                    "resume cannot make sure that work comes from this pipeline. Restore metadata.json, or run "
                    "with strategy='rerun' to start afresh"
                )
            return RecordedRun(None, None)
        if recorded.id == run.experiment_id:
            return recorded
        if recorded.legacy:
            _check_legacy(experiment, store, recorded)
            return recorded
        raise ResumeError(_changed_message(experiment, store, recorded, run.experiment_id))

    @hookimpl
    def stale_reason(self, experiment: Experiment) -> str | None:
        """A graph reruns an experiment whose code or parameters changed since its latest run."""
        store = experiment.locate_run()
        if store is None:
            return None
        try:
            recorded = parse_recorded_run(store.read_json("metadata.json"), f"{store.location}/metadata.json")
        except ValueError:
            return None  # the metadata plugin reports unreadable metadata
        if recorded is None or recorded.legacy or recorded.id == experiment.id:
            return None
        changes = identity_changes(recorded.signature or {}, experiment.signature())
        what = "; ".join(map(str, changes)) if changes else f"id {recorded.id} -> {experiment.id}"
        return f"its code or parameters changed since v{store.version} ran: {what}"

    def __repr__(self) -> str:
        return "ResumePlugin()"


class RecordedRun(NamedTuple):
    """What resume reads from ``metadata.json``: the pipeline id and signature, the replicate count.

    A named tuple: an attrs class costs ~0.6 ms to create, paid when the
    plugin is imported on a process's first run.

    :ivar legacy: written by crystallize-ml 0.27 (a 64-hex ``id``, nothing of ours).
    """

    id: str | None
    replicates: int | None
    signature: Any = None
    legacy: bool = False


_HEX64 = frozenset("0123456789abcdef")


def parse_recorded_run(document: Any, source: str) -> RecordedRun | None:
    """``None`` for a missing file; :class:`~crystallize.plugin.DocumentError` for a wrong shape."""
    if document is None:
        return None
    obj = d.expect_object(document, source)
    recorded_id = d.get(obj, "id", d.string, source)
    signature = d.get(obj, "signature", d.nullable(d.mapping_of(d.anything)), source, default=None)
    legacy = len(recorded_id) == 64 and set(recorded_id) <= _HEX64 and signature is None and "run_id" not in obj
    return RecordedRun(
        id=recorded_id,
        replicates=d.get(obj, "replicates", d.nullable(d.integer(minimum=1)), source, default=None),
        signature=signature,
        legacy=legacy,
    )


def _changed_message(experiment: Experiment, store: RunStore, recorded: RecordedRun, current_id: str) -> str:
    changes = identity_changes(recorded.signature or {}, experiment.signature()) if recorded.signature else []
    if changes:
        listed = "".join(f"\n  - {change}" for change in changes)
        what = f"its code or parameters changed since that run:{listed}\n"
    else:
        what = "its pipeline changed since that run "
    return (
        f"cannot resume experiment {experiment.key_label} in {store.location}: {what}"
        f"(recorded id {recorded.id}, now {current_id}). Resuming would return results computed by code "
        "that no longer exists as if they were current, so nothing was run and nothing on disk was changed. "
        "To run the new code, use strategy='rerun' (a versioned store, ArtifactPlugin(versioned=True), keeps "
        f"v{store.version} beside the new run; an unversioned one replaces it); to continue that run, restore "
        "the code it ran"
    )


def _check_legacy(experiment: Experiment, store: RunStore, recorded: RecordedRun) -> None:
    """A crystallize-ml 0.27 run: check what 0.27 recorded, a hash of step names and parameter reprs."""
    steps = [] if experiment.pipeline is None else experiment.pipeline.steps
    ids, text, reproducible = crystallize_ml_ids(steps)
    if recorded.id in ids:
        log.info("%s was written by crystallize-ml 0.27; its step names and parameters match", store.location)
        return
    if reproducible:
        raise ResumeError(
            f"cannot resume experiment {experiment.key_label} in {store.location}: crystallize-ml 0.27 wrote it "
            f"for other steps or parameters (its id {recorded.id} is not the hash of this pipeline's {text!r}, "
            "as 0.27 computed it). Resuming would mix results of two pipelines; use strategy='rerun' to start "
            "afresh"
        )
    warnings.warn(
        f"resuming {store.location}, written by crystallize-ml 0.27, on trust: 0.27 recorded no code "
        "fingerprints, and the id it recorded cannot be recomputed (a parameter's repr held a memory address: "
        f"{text!r}). Its completed conditions are reused as they are; if the code changed since, run with "
        "strategy='rerun'",
        LegacyRunWarning,
        stacklevel=2,
    )


def _spans(numbers: list[int]) -> str:
    """``[2, 3, 4, 7]`` -> ``"replicates 2-4, 7"``."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return "replicates " + ", ".join(parts)


def _held_work(store: RunStore, run: Run) -> str:
    """A description of what resume would reuse from ``store`` ("" when nothing)."""
    complete = [c for c in run.conditions if store.completed_condition(c) is not None]
    if complete:
        return f"completed condition(s) {', '.join(map(repr, complete))}"
    started = sum(len(store.finished_replicates(c)) for c in run.conditions)
    return f"{started} finished replicate(s)" if started else ""


def _written_by_crystallize_ml(store: RunStore, run: Run) -> bool:
    """crystallize-ml 0.27 wrote ``_manifest.json`` and empty markers, and no journal."""
    try:
        if not isinstance(store.read_json("_manifest.json"), dict):
            return False
    except ValueError:
        return False
    for condition in run.conditions:
        record = store.completed_condition(condition)
        if (record is not None and record.replicates is not None) or store.finished_replicates(condition):
            return False
    return True


def _legacy_complete(metrics: Any, metadata: RecordedRun, replicates: int) -> bool:
    """Trust a crystallize-ml marker (it records no count, and was written even
    over failed replicates) only if every metric has a value per replicate."""
    if metadata.replicates != replicates or not isinstance(metrics, dict) or not metrics:
        return False
    return all(isinstance(v, list) and v and len(v) % replicates == 0 for v in metrics.values())
