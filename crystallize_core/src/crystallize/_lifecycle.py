"""One run of an experiment, from validation to ``after_run``.

This module is the lifecycle described at the top of
:mod:`crystallize.hookspecs`, written out: it decides the replicate count,
builds the :class:`~crystallize._records.Run`, lets storage and resume plugins
speak, hands the pending units to the execution engine, gathers outcomes per
condition as they arrive and assembles the :class:`~crystallize.Result`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pluggy import HookCaller

from crystallize import _registry as manager
from crystallize._context import BASELINE
from crystallize._dispatch import HOOK_NAMES
from crystallize._execution.batch import ReplicateBatch, Units
from crystallize._execution.runner import ReplicateRunner
from crystallize._records import STRATEGIES, CompletedWork, ReplicateError, ReplicateOutcome, Run
from crystallize._result import ConditionMetrics, ExperimentMetrics, Result
from crystallize._validation import check_replicates, validate
from crystallize.errors import ArtifactStoreError, PluginError, ReplicateRejected, ResumeError

if TYPE_CHECKING:
    from crystallize._datasource import DataSource
    from crystallize._dispatch import HookCallers
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
    """Collects outcomes per condition and fires the per-condition hooks.

    Per replicate it keeps a reference to the outcome's metrics (when there
    are any) and its seed; per-replicate views are built once, at the end.
    """

    def __init__(
        self,
        experiment: Experiment,
        run: Run,
        callers: HookCallers,
        pending: Mapping[str, int],
        completed: CompletedWork,
    ) -> None:
        self.experiment = experiment
        self.run = run
        self.after_replicate = callers.after_replicate
        self.on_condition_complete = callers.on_condition_complete
        self.remaining = dict(pending)
        self.values: dict[str, dict[int, Mapping[str, list[Any]]]] = {c: {} for c in run.conditions}
        # {condition: {replicate: seed}} of every replicate reported (or resumed), failed or not
        self.seeds: dict[str, dict[int, int | None]] = {c: {} for c in run.conditions}
        self.errors: dict[str, dict[int, ReplicateError]] = {}
        self.artifacts: list[Any] = []
        self.completed = completed
        self.complete = dict(completed.conditions)
        for condition, reps in completed.replicates.items():
            if condition in self.values and condition not in self.complete:
                self.values[condition].update(reps)
                known = completed.seeds.get(condition, {})
                self.seeds[condition].update((r, known.get(r)) for r in reps)

    def complete_finished(self) -> None:
        """Fire ``on_condition_complete`` for conditions resume found fully finished.

        Every replicate of such a condition finished in an earlier run (its
        journal says so) but the condition was never marked complete — the
        process died in between. Nothing needs to run; it only needs closing.
        """
        for condition, remaining in self.remaining.items():
            if remaining == 0 and self.on_condition_complete is not None:
                self.on_condition_complete(
                    experiment=self.experiment,
                    run=self.run,
                    condition=condition,
                    metrics=self.metrics(condition),
                    errors={},
                )

    def report(self, outcome: ReplicateOutcome) -> None:
        condition = outcome.condition
        if self.after_replicate is not None:
            try:
                self.after_replicate(experiment=self.experiment, run=self.run, outcome=outcome)
            except ReplicateRejected as rejected:
                outcome = _rejected(outcome, rejected)
        if outcome.error is not None:
            self.errors.setdefault(condition, {})[outcome.replicate] = outcome.error
        else:
            if outcome.metrics:  # replicates without metrics cost no memory
                self.values[condition][outcome.replicate] = outcome.metrics
            if outcome.artifacts:
                self.artifacts.extend(outcome.artifacts)
        self.seeds[condition][outcome.replicate] = outcome.seed
        self.remaining[condition] -= 1
        if self.remaining[condition] == 0 and self.on_condition_complete is not None:
            self.on_condition_complete(
                experiment=self.experiment,
                run=self.run,
                condition=condition,
                metrics=self.metrics(condition),
                errors=dict(sorted(self.errors.get(condition, {}).items())),
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
    built.metrics = {name: list(values) for name, values in flat.items()}  # as recorded (the two agree)
    return built


def _rejected(outcome: ReplicateOutcome, rejected: ReplicateRejected) -> ReplicateOutcome:
    """``outcome`` turned into a failure because a plugin could not accept it."""
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


def _resume(experiment: Experiment, run: Run, callers: HookCallers) -> CompletedWork:
    if callers.on_resume is None:
        raise ResumeError(
            "strategy='resume' needs a plugin that reports what earlier runs completed (the on_resume "
            "hook), and none is active; install one (crystallize-resume does this) and pass a storage "
            "plugin such as crystallize_artifacts.ArtifactPlugin in plugins=[...]"
        )
    merged = CompletedWork()
    for report in callers.on_resume(experiment=experiment, run=run):
        if report is not None:
            merged = merged.merge(report)
    conditions = {c: m for c, m in merged.conditions.items() if c in run.conditions}
    replicates = {
        c: {r: m for r, m in reps.items() if 0 <= r < run.replicates}
        for c, reps in merged.replicates.items()
        if c in run.conditions
    }
    seeds = {c: dict(known) for c, known in merged.seeds.items() if c in run.conditions}
    return CompletedWork(conditions=conditions, replicates=replicates, seeds=seeds)


def _blame(exc: BaseException, callers: HookCallers) -> None:
    """Add a note naming the plugin whose hook implementation raised ``exc``."""
    if not hasattr(exc, "add_note") or getattr(exc, "_crystallize_blamed", False):
        return
    codes: dict[Any, tuple[str, str]] = {}
    for hook in HOOK_NAMES:
        caller = getattr(callers, hook)
        for impl in caller.get_hookimpls() if caller is not None else ():
            code = getattr(impl.function, "__code__", None)
            if code is not None:
                codes[code] = (impl.plugin_name.split("#")[0], hook)
    found = None
    replicate_code = ReplicateRunner.__call__.__code__
    tb = exc.__traceback__
    while tb is not None:  # the innermost hook implementation on the stack raised it...
        code = tb.tb_frame.f_code
        # ...unless a replicate (user code) ran below it
        found = None if code is replicate_code else codes.get(code, found)
        tb = tb.tb_next
    if found is not None:
        exc.add_note(f"(raised by plugin {found[0]!r} in hook {found[1]!r})")
        exc._crystallize_blamed = True  # type: ignore[attr-defined]


def _after_run(callers: HookCallers, **kwargs: Any) -> None:
    """Call every ``after_run`` implementation, even when one raises.

    ``after_run`` is where plugins release what they hold (storage closes its
    run and its lock); one failing plugin must not stop the others. Each
    failure is logged; the first is raised once all have run, with a note
    naming its plugin. Monitored runs (the testing kit) go through pluggy.
    """
    caller = callers.after_run
    if caller is None:
        return
    impls = caller.get_hookimpls()
    if isinstance(caller, HookCaller) and (manager.observed() or any(i.wrapper or i.hookwrapper for i in impls)):
        caller(**kwargs)
        return
    first: Exception | None = None
    for impl in reversed(impls):  # pluggy's calling order
        try:
            impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:  # noqa: BLE001 - reported below, after the other plugins ran
            name = impl.plugin_name.split("#")[0]
            log.error("after_run of plugin %r raised %s: %s", name, type(exc).__name__, exc)
            if first is None:
                if hasattr(exc, "add_note"):
                    exc.add_note(f"(raised by plugin {name!r} in hook 'after_run')")
                    exc._crystallize_blamed = True  # type: ignore[attr-defined]
                first = exc
    if first is not None:
        raise first


def _call(callers: HookCallers, hook: str, **kwargs: Any) -> Any:
    caller = getattr(callers, hook)
    return None if caller is None else caller(**kwargs)


def _build_result(
    run: Run,
    tracker: ConditionTracker | None,
    completed: CompletedWork,
    hypotheses: list[Hypothesis],
    verify: bool,
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
        errors={} if tracker is None else {c: dict(sorted(e.items())) for c, e in tracker.errors.items()},
        artifacts=[] if tracker is None else list(tracker.artifacts),
        run=run,
    )


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
    plugins = experiment._plugins()
    callers = plugins.callers
    validate(experiment, treatments, hypotheses, callers)

    source = experiment.datasource.resolve()
    count = decide_replicates(experiment, replicates, source)
    by_condition = {t.name: t for t in treatments}
    conditions = (BASELINE, *(t.name for t in treatments if t.name != BASELINE))
    run = Run(
        experiment_id=experiment.id,
        experiment_name=experiment.name,
        key=experiment.key,
        run_id=secrets.token_hex(16),
        strategy=strategy,
        replicates=count,
        conditions=conditions,
        fingerprints={c: by_condition[c].fingerprint() if c in by_condition else "" for c in conditions},
        upstream=tuple(source.upstream),
        started_at=_now(),
    )

    completed = CompletedWork()
    tracker: ConditionTracker | None = None
    source.prepare(run)
    try:
        run.store = _call(callers, "open_store", experiment=experiment, run=run)
        if run.store is None and experiment.outputs:
            raise ArtifactStoreError(
                f"Experiment {experiment.key_label} declares outputs "
                f"({', '.join(map(repr, experiment.outputs))}) but no active plugin provides storage; "
                "pass a storage plugin such as crystallize_artifacts.ArtifactPlugin(root_dir='artifacts') "
                "in plugins=[...]"
            )
        if strategy == "resume":
            completed = _resume(experiment, run, callers)
            run.completed = completed
        _call(callers, "before_run", experiment=experiment, run=run)
        units, pending = _plan(run, completed)
        tracker = ConditionTracker(experiment, run, callers, pending, completed)
        tracker.complete_finished()
        if units:
            runner = ReplicateRunner(experiment, run, source, by_condition, callers)

            def spec() -> Any:
                from crystallize._execution.worker import make_spec

                hooks = {id(i.plugin): set(plugins.hooks_of(i.plugin)) for i in plugins.infos}
                return make_spec(experiment, run, source, by_condition, plugins.infos, hooks)

            batch = ReplicateBatch(units, runner, spec, tracker.report)
            handled = _call(callers, "execute_replicates", experiment=experiment, run=run, batch=batch)
            if not handled:
                raise PluginError("no execution plugin ran the replicates (execute_replicates returned None)")
            if batch.remaining:
                raise PluginError(
                    f"the execution plugin returned without reporting {batch.remaining} unit(s), "
                    f"e.g. {batch.pending[0]}"
                )
        result = _build_result(run, tracker, completed, hypotheses, verify=True)
        run.status = "failed" if result.errors else "completed"
    except BaseException as exc:
        run.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        _blame(exc, callers)
        partial = _build_result(run, tracker, completed, hypotheses, verify=False)
        try:
            _after_run(callers, experiment=experiment, run=run, result=partial)
        except Exception as after_exc:  # noqa: BLE001 - keep the original error
            log.error("after_run raised %r while handling %r", after_exc, exc)
        raise
    _after_run(callers, experiment=experiment, run=run, result=result)
    if result.errors:
        count_failed = sum(len(e) for e in result.errors.values())
        log.warning(
            "%d replicate(s) of experiment %s failed; see result.errors (first: %s)",
            count_failed,
            experiment.key_label,
            result.error_list()[0],
        )
    return result
