"""Runs one (condition, replicate): the framework's hot path.

A :class:`ReplicateRunner` is built once per run (and once per worker
process) and then called for every unit. Everything that can be decided
once is decided in ``__init__``: which hooks are implemented (``None``
otherwise), each step's name and the cheapest callable for it. The per-step
loop then costs two attribute stores and the call itself when no plugin
implements ``before_step``/``after_step``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

from crystallize._artifact import _SCOPE, ReplicateScope
from crystallize._context import CONDITION_KEY, REPLICATE_KEY, SEED_KEY, FrozenContext
from crystallize._records import ReplicateError, ReplicateOutcome
from crystallize._steps import FunctionStep

if TYPE_CHECKING:
    from crystallize._datasource import DataSource
    from crystallize._dispatch import Hooks
    from crystallize._experiment import Experiment
    from crystallize._records import Run
    from crystallize._treatment import Treatment

__all__ = ["ReplicateRunner", "USER_CODE"]

log = logging.getLogger("crystallize")


def _fast_call(step: Any) -> Any:
    if isinstance(step, FunctionStep) and step.direct is not None:
        return step.direct
    return step


class ReplicateRunner:
    """Runs units of one run; safe to call from several threads at once."""

    def __init__(
        self,
        experiment: Experiment,
        run: Run,
        source: DataSource,
        treatments: Mapping[str, Treatment],
        hooks: Hooks,
        *,
        portable_errors: bool = False,
    ) -> None:
        self.experiment = experiment
        self.run = run
        self.source = source
        self.treatments = dict(treatments)
        self.outputs = frozenset(experiment.outputs)
        self.steps = tuple(
            (index, step, step.step_name, _fast_call(step)) for index, step in enumerate(experiment.pipeline.steps)
        )
        self.hooks = hooks
        self.before_replicate = hooks.before_replicate
        self.before_step = hooks.before_step
        self.after_step = hooks.after_step
        self.writer = hooks.on_artifact_write
        self.on_error = hooks.on_replicate_error
        self.portable_errors = portable_errors

    def __call__(self, condition: str, replicate: int) -> ReplicateOutcome:
        experiment = self.experiment
        ctx = FrozenContext._adopt({REPLICATE_KEY: replicate, CONDITION_KEY: condition})
        scope = ReplicateScope(self, ctx)
        token = _SCOPE.set(scope)
        started = perf_counter()
        step = None  # the user's step while it runs; None around it (hooks, datasource, treatment)
        error = None
        try:
            treatment = self.treatments.get(condition)
            if treatment is not None:
                treatment.apply(ctx)
            if self.before_replicate is not None:
                self.before_replicate(experiment=experiment, run=self.run, ctx=ctx)
            data = self.source.fetch(ctx)
            before, after = self.before_step, self.after_step
            if before is None and after is None:
                for index, step, name, call in self.steps:  # noqa: B007 - `step` names the failing step
                    scope.step_name = name
                    scope.step_index = index
                    data = call(data, ctx)
            else:
                run = self.run
                for index, current, name, call in self.steps:
                    if before is not None:
                        before(experiment=experiment, run=run, step=current, ctx=ctx)
                    step = current
                    scope.step_name = name
                    scope.step_index = index
                    data = call(data, ctx)
                    step = scope.step_name = None
                    if after is not None:
                        after(experiment=experiment, run=run, step=current, data=data, ctx=ctx)
        except Exception as exc:  # noqa: BLE001 - a failing replicate must not stop the others
            error = self._failed(exc, ctx, condition, replicate, step)
        finally:
            _SCOPE.reset(token)
        records = scope.records
        return ReplicateOutcome(
            condition,
            replicate,
            ctx.metrics._values,
            error,
            () if records is None else tuple(records),
            ctx._data.get(SEED_KEY),
            perf_counter() - started,
        )

    def _failed(self, exc: Exception, ctx: FrozenContext, condition: str, replicate: int, step: Any) -> ReplicateError:
        plugin, hook = self.hooks.culprit(exc, USER_CODE) or (None, None)
        error = ReplicateError.capture(
            exc,
            condition,
            replicate,
            None if step is None else step.step_name,
            portable=self.portable_errors,
            plugin=plugin,
            hook=hook,
        )
        if self.on_error is not None:
            try:
                self.on_error(experiment=self.experiment, run=self.run, ctx=ctx, step=step, error=exc)
            except Exception as hook_exc:  # noqa: BLE001 - never mask the original failure
                log.warning("on_replicate_error hook raised %r while handling %s", hook_exc, error)
        return error


#: Where user code starts below a hook implementation: an exception raised
#: under one of these frames is the user's, not the plugin's that called it.
USER_CODE = frozenset({ReplicateRunner.__call__.__code__})
