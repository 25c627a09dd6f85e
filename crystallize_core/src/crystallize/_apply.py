"""One pass of the pipeline for inference (:meth:`Experiment.apply`) and a quick check (:meth:`Experiment.debug`).

``apply`` runs the replicate machinery once, in this thread: the treatment,
``before_run``, steps' ``setup``, ``before_replicate``, the datasource (or
the data given), every step with ``before_step``/``after_step``, then
``teardown`` and ``after_run``. It is not a run of the experiment: nothing
is stored (artifacts go to a throwaway in-memory store), resume and
versions are untouched, and a step's exception propagates to the caller.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crystallize._artifact import _SCOPE, ReplicateScope, pin_inputs
from crystallize._context import BASELINE, CONDITION_KEY, REPLICATE_KEY, SEED_KEY, FrozenContext
from crystallize._datasource import DataSource
from crystallize._dispatch import PROJECT, hookimpl
from crystallize._execution.serial import SerialExecution

if TYPE_CHECKING:
    from crystallize._execution.batch import ReplicateBatch
    from crystallize._experiment import Experiment
    from crystallize._result import Result
    from crystallize._treatment import Treatment

__all__ = ["apply", "debug"]

log = logging.getLogger("crystallize")


class _Given(DataSource):
    """The data passed to ``apply(data=...)``, in place of the datasource."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def fetch(self, ctx: FrozenContext) -> Any:
        return self.data


def _seed_with(plugin: Any, seed: int) -> None:
    """Seed this thread's generators with ``seed`` as ``plugin`` (a SeedPlugin, or ``None``) would."""
    seed_fn = getattr(plugin, "seed_fn", None)
    if seed_fn is not None:
        seed_fn(seed)
        return
    import random

    from crystallize._seeding import _seed_numpy

    random.seed(seed)
    _seed_numpy(seed % (2**32 - 1))


def apply(experiment: Experiment, treatment: Treatment | None, *, data: Any, seed: int | None) -> Any:
    """See :meth:`Experiment.apply <crystallize.Experiment.apply>`."""
    from crystallize import _registry
    from crystallize._execution.runner import ReplicateRunner
    from crystallize._experiment import _NO_DATA
    from crystallize._lifecycle import new_run, setup_steps, teardown_steps
    from crystallize._memory_store import MemoryStorage
    from crystallize._result import ConditionMetrics, ExperimentMetrics, Result
    from crystallize._seeding import SeedPlugin
    from crystallize._treatment import Treatment
    from crystallize._validation import validate

    if treatment is not None and not isinstance(treatment, Treatment):
        raise TypeError(f"apply(treatment=...) takes a Treatment, got {treatment!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"apply(seed=...) takes an int, got {seed!r}")
    treatments = [] if treatment is None else [treatment]
    state = experiment._plugins()
    validate(experiment, treatments, [], state.hooks)
    seeder = experiment.get_plugin(SeedPlugin)
    hooks = state.hooks
    if seed is not None and seeder is not None:  # this call's seed replaces the plugin's
        infos = [info for info in state.infos if info.plugin is not seeder]
        hooks = _registry.hooks_for(_registry.manager_for(infos))

    source = experiment.datasource.resolve() if data is _NO_DATA else _Given(data)
    run = new_run(experiment, "rerun", 1, treatments, source)
    pin_inputs(experiment, run)
    condition = BASELINE if treatment is None else treatment.name
    run.store = MemoryStorage().open_store(experiment, run)
    result: Result | None = None
    setup_ctx = FrozenContext._adopt(dict(experiment.initial_ctx))
    output = None
    try:
        if hooks.before_run is not None:
            hooks.before_run(experiment=experiment, run=run)
        setup_steps(experiment, setup_ctx)
        run.initial_ctx = setup_ctx._data
        runner = ReplicateRunner(experiment, run, source, {t.name: t for t in treatments}, hooks)
        ctx = FrozenContext._adopt({**run.initial_ctx, REPLICATE_KEY: 0, CONDITION_KEY: condition})
        if treatment is not None:
            treatment.apply(ctx)
        if seed is not None:
            _seed_with(seeder, seed)
            ctx[SEED_KEY] = seed
        scope = ReplicateScope(runner, ctx)
        token = _SCOPE.set(scope)
        try:
            output = runner._replicate(ctx, scope)
        finally:
            _SCOPE.reset(token)
        metrics = ConditionMetrics.from_replicates(1, {0: ctx.metrics._values}, {0: ctx._data.get(SEED_KEY)})
        empty = ConditionMetrics.from_replicates(1, {}, missing=[0])
        if treatment is None:
            per_condition = ExperimentMetrics(baseline=metrics, treatments={})
        else:
            per_condition = ExperimentMetrics(baseline=empty, treatments={condition: metrics})
        result = Result(metrics=per_condition, run=run)
        run.status = "completed"
    except BaseException:
        run.status = "failed"
        raise
    finally:
        errors = teardown_steps(experiment, setup_ctx)
        if result is None:
            result = Result(metrics=ExperimentMetrics(baseline=ConditionMetrics(), treatments={}), run=run)
        try:
            hooks.call_isolated("after_run", experiment=experiment, run=run, result=result)
        finally:
            run.store.close(run.status)
        if errors and run.status == "completed":
            raise errors[0]
    return output


def debug(experiment: Experiment, treatment: str | Treatment | None, *, verbose: bool) -> Result:
    """See :meth:`Experiment.debug <crystallize.Experiment.debug>`."""
    from crystallize._logging_plugin import LoggingPlugin
    from crystallize._treatment import Treatment

    chosen: list[Treatment] = []
    if isinstance(treatment, str):
        found = next((t for t in experiment.treatments if t.name == treatment), None)
        chosen = [found if found is not None else Treatment(treatment, {})]
    elif isinstance(treatment, Treatment):
        chosen = [treatment]
    elif treatment is not None:
        raise TypeError(f"debug(treatment=...) takes a Treatment or a treatment name, got {treatment!r}")
    plugins = list(experiment.plugins)
    experiment.plugins = [p for p in plugins if not _runs_replicates(p)]
    experiment.plugins.append(_DebugSerial())
    if verbose and not any(isinstance(p, LoggingPlugin) for p in plugins):
        experiment.plugins.append(LoggingPlugin(verbose=True))
    try:
        return experiment.run(treatments=chosen, hypotheses=[], replicates=1)
    finally:
        experiment.plugins = plugins


def _runs_replicates(plugin: Any) -> bool:
    """Whether ``plugin`` is an execution engine (it implements ``execute_replicates``)."""
    for name in ("execute_replicates", "_crystallize_execute_replicates"):
        method = getattr(plugin, name, None)
        if method is not None and hasattr(getattr(method, "__func__", method), f"{PROJECT}_impl"):
            return True
    return False


class _DebugSerial(SerialExecution):
    """Runs replicates serially, ahead of any installed engine, for ``debug()``."""

    plugin_name = "debug-serial-execution"

    @hookimpl(tryfirst=True)
    def execute_replicates(self, batch: ReplicateBatch) -> bool:
        return super().execute_replicates(batch)
