"""One run of an experiment, from validation to ``after_run``.

This module is the lifecycle described at the top of
:mod:`crystallize.hookspecs`, written out: it decides the replicate count,
builds the :class:`~crystallize._records.Run`, lets storage and resume plugins
speak, hands the pending units to the execution engine, gathers outcomes per
condition as they arrive and assembles the :class:`~crystallize.Result`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from crystallize._artifact import pin_inputs
from crystallize._context import BASELINE, FrozenContext
from crystallize._execution.batch import ReplicateBatch, Units
from crystallize._execution.runner import USER_CODE, ReplicateRunner
from crystallize._execution.worker import refuse_while_starting_a_worker
from crystallize._records import STRATEGIES, CompletedWork, ReplicateColumns, ReplicateError, ReplicateOutcome, Run
from crystallize._result import ConditionMetrics, ExperimentMetrics, ReplicateErrors, Result
from crystallize._treatment import warn_unread
from crystallize._validation import check_replicates, validate
from crystallize.errors import ArtifactStoreError, PluginError, ReplicateRejected, ResumeError

if TYPE_CHECKING:
    from crystallize._datasource import DataSource
    from crystallize._dispatch import Hooks
    from crystallize._experiment import Experiment
    from crystallize._hypothesis import Hypothesis
    from crystallize._treatment import Treatment

__all__ = ["execute"]

log = logging.getLogger("crystallize")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def decide_replicates(experiment: Experiment, requested: int | None, source: DataSource) -> int:
    """The replicate count: the datasource's requirement, else the request, else the default."""
    required = source.replicates
    if required is not None:
        check_replicates(required, "the datasource's replicate count")
        if requested is not None and requested != required:
            producers = ", ".join(sorted({repr(u.experiment) for u in source.upstream})) or "its producer"
            raise ValueError(
                f"run(replicates={requested}) disagrees with the datasource, which has {required} "
                f"replicates (as recorded by upstream experiment {producers}): drop replicates= to use "
                f"{required}, or rerun the upstream experiment with replicates={requested}"
            )
        return required
    if requested is not None:
        return check_replicates(requested, "run(replicates=...)")
    return experiment.replicates


class ConditionTracker:
    """Collects outcomes per condition: records them in the store, then tells the plugins.

    For each outcome, in the main process: ``store.record_replicate`` (which
    may reject it), then ``on_replicate_outcome``. When a condition's last
    outcome is in: ``store.complete_condition`` if none failed, then
    ``on_condition_complete``. Per replicate it keeps a reference to the
    outcome's metrics (when there are any) and its seed; per-replicate views
    are built once, at the end.
    """

    def __init__(
        self,
        experiment: Experiment,
        run: Run,
        hooks: Hooks,
        pending: Mapping[str, int],
        completed: CompletedWork,
    ) -> None:
        self.experiment = experiment
        self.run = run
        self.store = run.store
        self.on_outcome = hooks.on_replicate_outcome
        self.on_condition_complete = hooks.on_condition_complete
        self.remaining = dict(pending)
        self.values: dict[str, dict[int, Mapping[str, list[Any]]]] = {c: {} for c in run.conditions}
        # {condition: {replicate: seed}} of every replicate reported (or resumed), failed or not
        self.seeds: dict[str, dict[int, int | None]] = {c: {} for c in run.conditions}
        self.errors: dict[str, dict[int, ReplicateError]] = {}
        self.artifacts: list[Any] = []
        # {condition: {treatment key: replicates in which nothing read it}}
        self.unread: dict[str, dict[str, int]] = {}
        self.completed = completed
        self.complete = dict(completed.conditions)
        for condition, reps in completed.replicates.items():
            if condition in self.values and condition not in self.complete:
                self.values[condition].update(reps)
                known = completed.seeds.get(condition, {})
                self.seeds[condition].update((r, known.get(r)) for r in reps)

    def complete_finished(self) -> None:
        """Close conditions resume found fully finished.

        Every replicate of such a condition finished in an earlier run (the
        store says so) but the condition was never completed — the process
        died in between. Nothing needs to run; it only needs closing.
        """
        for condition, remaining in self.remaining.items():
            if remaining == 0:
                self._finish(condition)

    def report(self, outcome: ReplicateOutcome) -> None:
        condition = outcome.condition
        if self.store is not None:
            try:
                self.store.record_replicate(outcome, self.run.fingerprints.get(condition))
            except ReplicateRejected as rejected:
                outcome = _rejected(outcome, rejected)
        if self.on_outcome is not None:
            self.on_outcome(experiment=self.experiment, run=self.run, outcome=outcome)
        if outcome.error is not None:
            self.errors.setdefault(condition, {})[outcome.replicate] = outcome.error
        else:
            if outcome.metrics:  # replicates without metrics cost no memory
                self.values[condition][outcome.replicate] = outcome.metrics
            if outcome.artifacts:
                self.artifacts.extend(outcome.artifacts)
            if outcome.unread:
                counts = self.unread.setdefault(condition, {})
                for key in outcome.unread:
                    counts[key] = counts.get(key, 0) + 1
        self.seeds[condition][outcome.replicate] = outcome.seed
        self.remaining[condition] -= 1
        if self.remaining[condition] == 0:
            self._finish(condition)

    def _finish(self, condition: str) -> None:
        errors = dict(sorted(self.errors.get(condition, {}).items()))
        if self.store is None and self.on_condition_complete is None:
            return
        metrics = self.metrics(condition)
        if self.store is not None:
            if not errors:
                self.store.complete_condition(
                    condition, self.run.replicates, self.run.fingerprints.get(condition), metrics
                )
            else:
                log.warning(
                    "condition %r of %s: %d replicate(s) failed, so it is not marked complete; "
                    "strategy='resume' reruns them",
                    condition,
                    self.run.key,
                    len(errors),
                )
        if self.on_condition_complete is not None:
            self.on_condition_complete(
                experiment=self.experiment, run=self.run, condition=condition, metrics=metrics, errors=errors
            )

    def metrics(self, condition: str) -> dict[str, list[Any]]:
        """``{metric: values}`` over successful replicates, in replicate order."""
        if condition in self.complete:
            return {k: list(v) for k, v in self.complete[condition].items()}
        merged: dict[str, list[Any]] = {}
        per_replicate = self.values[condition]
        for replicate in sorted(per_replicate):
            for name, values in per_replicate[replicate].items():
                merged.setdefault(name, []).extend(values)
        return merged

    def condition_metrics(self, condition: str) -> ConditionMetrics:
        """The condition's metrics as ``Result`` shows them: flattened and per replicate."""
        if condition in self.complete:
            return _resumed_condition(self.run.replicates, condition, self.completed)
        seeds = self.seeds[condition]
        failed = self.errors.get(condition, {})
        missing = [r for r in range(self.run.replicates) if r not in seeds or r in failed]
        return ConditionMetrics.from_replicates(self.run.replicates, self.values[condition], seeds, missing)


def _resumed_condition(replicates: int, condition: str, completed: CompletedWork) -> ConditionMetrics:
    """A condition resume found complete, as if it had run now."""
    seeds = completed.seeds.get(condition)
    split = completed.replicates.get(condition)
    flat = completed.conditions[condition]
    if split is None:
        return ConditionMetrics.from_flat(replicates, flat, seeds)
    built = ConditionMetrics.from_replicates(replicates, split, seeds)
    if not (type(split) is ReplicateColumns and split.columns is flat):  # columns of these very values: done
        built.metrics = {name: list(values) for name, values in flat.items()}  # as recorded (the two agree)
    return built


def _rejected(outcome: ReplicateOutcome, rejected: ReplicateRejected) -> ReplicateOutcome:
    """``outcome`` turned into a failure because the store could not record it."""
    error = ReplicateError.capture(rejected, outcome.condition, outcome.replicate, None)
    return ReplicateOutcome(outcome.condition, outcome.replicate, {}, error, (), outcome.seed, outcome.duration)


def _plan(run: Run, completed: CompletedWork) -> tuple[Units, dict[str, int]]:
    parts: list[tuple[str, Sequence[int]]] = []
    pending: dict[str, int] = {}
    for condition in run.conditions:
        if condition in completed.conditions:
            continue
        done = completed.replicates.get(condition, {})
        todo: Sequence[int] = range(run.replicates) if not done else [r for r in range(run.replicates) if r not in done]
        parts.append((condition, todo))
        pending[condition] = len(todo)
    return Units(parts), pending


def _resume(experiment: Experiment, run: Run, hooks: Hooks) -> CompletedWork:
    if hooks.on_resume is None:
        raise ResumeError(
            "strategy='resume' needs a plugin that reports what earlier runs completed (the on_resume "
            "hook), and none is active; install one (crystallize-resume does this) and pass a storage "
            "plugin such as crystallize_artifacts.ArtifactPlugin in plugins=[...]"
        )
    merged: CompletedWork | None = None
    for report in hooks.on_resume(experiment=experiment, run=run):
        if report is not None:
            merged = report if merged is None else merged.merge(report)
    if merged is None:
        return CompletedWork()
    ours, count = frozenset(run.conditions), run.replicates
    conditions = {c: m for c, m in merged.conditions.items() if c in ours}
    replicates = {
        # columns of n <= count replicates hold only replicates 0 .. n-1: nothing to filter
        c: reps
        if type(reps) is ReplicateColumns and reps.replicates <= count
        else {r: m for r, m in reps.items() if 0 <= r < count}
        for c, reps in merged.replicates.items()
        if c in ours
    }
    seeds = {c: dict(known) for c, known in merged.seeds.items() if c in ours}
    return CompletedWork(conditions=conditions, replicates=replicates, seeds=seeds)


def _build_result(
    run: Run,
    tracker: ConditionTracker | None,
    completed: CompletedWork,
    hypotheses: list[Hypothesis],
    verify: bool,
    signature: list[Any] | None = None,
) -> Result:
    def metrics_of(condition: str) -> ConditionMetrics:
        if tracker is not None:
            return tracker.condition_metrics(condition)
        if condition in completed.conditions:
            return _resumed_condition(run.replicates, condition, completed)
        return ConditionMetrics.from_replicates(run.replicates, {}, missing=range(run.replicates))

    per_condition = {c: metrics_of(c) for c in run.conditions}
    baseline = per_condition[BASELINE]
    treatments = {c: m for c, m in per_condition.items() if c != BASELINE}
    verified = []
    if verify and hypotheses:
        comparable = {c: m for c, m in treatments.items() if m.metrics}
        if not baseline.metrics:
            log.warning("hypotheses were not verified: no baseline replicate succeeded")
        else:
            verified = [h.evaluate(baseline, comparable) for h in hypotheses]
    return Result(
        metrics=ExperimentMetrics(baseline=baseline, treatments=treatments, hypotheses=verified),
        errors=ReplicateErrors(
            () if tracker is None else ((c, dict(sorted(e.items()))) for c, e in tracker.errors.items())
        ),
        artifacts=[] if tracker is None else list(tracker.artifacts),
        run=run,
        provenance={
            "experiment_id": run.experiment_id,
            "version": run.version,
            "pipeline_signature": signature,
            "replicates": run.replicates,
            "seeds": {c: list(m.seeds) for c, m in per_condition.items()},
            "ctx_changes": {},
        },
    )


def new_run(
    experiment: Experiment, strategy: str, replicates: int, treatments: Sequence[Treatment], source: DataSource
) -> Run:
    """The :class:`Run` describing one execution, before any plugin saw it."""
    from crystallize._graph import RERUN_FACT, RERUN_REASONS

    by_condition = {t.name: t for t in treatments}
    conditions = (BASELINE, *(t.name for t in treatments if t.name != BASELINE))
    run = Run(
        experiment_id=experiment.id,
        experiment_name=experiment.name,
        key=experiment.key,
        run_id=os.urandom(16).hex(),  # what secrets.token_hex(16) does
        strategy=strategy,
        replicates=replicates,
        conditions=conditions,
        fingerprints={c: by_condition[c].fingerprint() if c in by_condition else "" for c in conditions},
        upstream=tuple(source.upstream),
        started_at=_now(),
    )
    reasons = RERUN_REASONS.get()
    if reasons:
        run.facts[RERUN_FACT] = {"reasons": list(reasons)}
    return run


def execute(
    experiment: Experiment,
    *,
    treatments: list[Treatment],
    hypotheses: list[Hypothesis],
    replicates: int | None,
    strategy: str,
) -> Result:
    """Run ``experiment`` once; see :meth:`Experiment.run`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(map(repr, STRATEGIES))}, got {strategy!r}")
    refuse_while_starting_a_worker()  # before anything is allocated: a worker re-importing a script has no run
    plugins = experiment._plugins()
    hooks = plugins.hooks
    validate(experiment, treatments, hypotheses, hooks)

    signature = experiment.pipeline_signature()
    source = experiment.datasource.resolve()
    run = new_run(experiment, strategy, decide_replicates(experiment, replicates, source), treatments, source)
    by_condition = {t.name: t for t in treatments}

    completed = CompletedWork()
    tracker: ConditionTracker | None = None
    setup_ctx: FrozenContext | None = None
    source.prepare(run)
    pin_inputs(experiment, run)
    try:
        if hooks.open_store is not None:
            run.store = hooks.open_store(experiment=experiment, run=run)
        if run.store is None and experiment.outputs:
            raise ArtifactStoreError(
                f"Experiment {experiment.key_label} declares outputs "
                f"({', '.join(map(repr, experiment.outputs))}) but no active plugin provides storage; "
                "pass a storage plugin such as crystallize_artifacts.ArtifactPlugin(root_dir='artifacts') "
                "in plugins=[...]"
            )
        if strategy == "resume":
            completed = _resume(experiment, run, hooks)
            run.completed = completed
            if run.store is not None and run.store.resumed:
                run.store.prepare_resume(
                    run.conditions, completed, replicates=run.replicates, fingerprints=run.fingerprints
                )
        if hooks.before_run is not None:
            hooks.before_run(experiment=experiment, run=run)
        setup_ctx = FrozenContext._adopt(dict(experiment.initial_ctx))
        setup_steps(experiment, setup_ctx)
        run.initial_ctx = setup_ctx._data
        units, pending = _plan(run, completed)
        tracker = ConditionTracker(experiment, run, hooks, pending, completed)
        tracker.complete_finished()
        if units:
            runner = ReplicateRunner(experiment, run, source, by_condition, hooks)

            def spec() -> Any:
                from crystallize._execution.worker import make_spec

                implemented = {id(i.plugin): set(plugins.hooks_of(i.plugin)) for i in plugins.infos}
                return make_spec(experiment, run, source, by_condition, plugins.infos, implemented)

            batch = ReplicateBatch(units, runner, spec, tracker.report)
            engine = hooks.execute_replicates
            handled = None if engine is None else engine(experiment=experiment, run=run, batch=batch)
            if not handled:
                raise PluginError("no execution plugin ran the replicates (execute_replicates returned None)")
            if batch.remaining:
                raise PluginError(
                    f"the execution plugin returned without reporting {batch.remaining} unit(s), "
                    f"e.g. {batch.pending[0]}"
                )
        result = _build_result(run, tracker, completed, hypotheses, verify=True, signature=signature)
        run.status = "failed" if result.errors else "completed"
    except BaseException as exc:
        run.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        hooks.blame(exc, USER_CODE)
        result = _build_result(run, tracker, completed, hypotheses, verify=False, signature=signature)
        _end(hooks, experiment, run, result, exc, setup_ctx)
        raise
    _end(hooks, experiment, run, result, None, setup_ctx)
    if tracker is not None and tracker.unread:
        from crystallize._graph import INHERITED

        inherited = INHERITED.get()
        unread = {c: keys for c, keys in tracker.unread.items() if c not in inherited}
        if unread:
            warn_unread(experiment, unread, stacklevel=3)
    if result.errors:
        count_failed = sum(len(e) for e in result.errors.values())
        log.warning(
            "%d replicate(s) of experiment %s failed; see result.errors (first: %s)",
            count_failed,
            experiment.key_label,
            result.error_list()[0],
        )
    return result


def setup_steps(experiment: Experiment, ctx: FrozenContext) -> None:
    """Call ``setup(ctx)`` on every step that defines it, in pipeline order."""
    from crystallize._steps import PipelineStep

    for step in experiment.pipeline.steps:
        if type(step).setup is not PipelineStep.setup:
            step.setup(ctx)


def teardown_steps(experiment: Experiment, ctx: FrozenContext) -> list[Exception]:
    """Call ``teardown(ctx)`` on every step that defines it; returns what they raised."""
    from crystallize._steps import PipelineStep

    errors: list[Exception] = []
    for step in experiment.pipeline.steps:
        if type(step).teardown is not PipelineStep.teardown:
            try:
                step.teardown(ctx)
            except Exception as exc:  # noqa: BLE001 - every step is torn down
                errors.append(exc)
    return errors


def _end(
    hooks: Hooks,
    experiment: Experiment,
    run: Run,
    result: Result,
    failure: BaseException | None,
    setup_ctx: FrozenContext | None = None,
) -> None:
    """Steps' ``teardown`` (once setup began), ``after_run`` on every plugin, then
    ``run.store.close(status)`` — all of them always.

    The first error among them is raised, unless the run already failed with
    ``failure``: then they are logged and ``failure`` propagates.
    """
    errors: list[Exception] = [] if setup_ctx is None else teardown_steps(experiment, setup_ctx)
    if errors and run.status == "completed":
        run.status = "failed"
    try:
        hooks.call_isolated("after_run", experiment=experiment, run=run, result=result)
    except Exception as exc:  # noqa: BLE001 - the store is closed all the same
        errors.append(exc)
    if run.store is not None:
        try:
            run.store.close(run.status)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    for error in errors[1:] if failure is None else errors:
        log.error("%r while ending the run of %s", error, experiment.key_label)
    if errors and failure is None:
        raise errors[0]
