"""Runs one (condition, replicate): the framework's hot path.

A :class:`ReplicateRunner` is built once per run (and once per worker
process) and then called for every unit. Everything that can be decided
once is decided in ``__init__``: which hooks are implemented (``None``
otherwise), each step's name and the cheapest callable for it. The per-step
loop then costs two attribute stores and the call itself when no plugin
implements ``before_step``/``after_step``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

import attrs

from crystallize._artifact import _SCOPE, ReplicateScope
from crystallize._context import CONDITION_KEY, REPLICATE_KEY, SEED_KEY, FrozenContext
from crystallize._dispatch import hookimpl
from crystallize._failures import NEVER_CAPTURED, capture, text, type_name
from crystallize._records import ReplicateError, ReplicateOutcome
from crystallize._steps import step_call

if TYPE_CHECKING:
    from crystallize._datasource import DataSource
    from crystallize._dispatch import Hooks
    from crystallize._experiment import Experiment
    from crystallize._records import ReplicateError, Run
    from crystallize._treatment import Treatment

__all__ = ["ReplicateRunner", "ReplicateBody", "USER_CODE"]

log = logging.getLogger("crystallize")


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
        record = experiment.pipeline.cache_recorder()  # None unless a step is cacheable
        self.steps = tuple(
            (index, step, step.step_name, step_call(step, index, record))
            for index, step in enumerate(experiment.pipeline.steps)
        )
        self.initial = dict(run.initial_ctx)
        self.hooks = hooks
        self.wrap = hooks.wrap_replicate
        self.before_replicate = hooks.before_replicate
        self.before_step = hooks.before_step
        self.after_step = hooks.after_step
        self.store = run.store
        self.on_write = hooks.on_artifact_write
        self.on_error = hooks.on_replicate_error
        self.portable_errors = portable_errors

    def start(self) -> Callable[[str, int], ReplicateOutcome]:
        """Call ``on_worker_start`` in this process; returns what runs units here from now on.

        That is this runner, or — when the hook raised — a function failing
        every unit with that error, blamed on the plugin.
        """
        hook = self.hooks.on_worker_start
        if hook is None:
            return self
        try:
            hook(experiment=self.experiment, run=self.run)
        except NEVER_CAPTURED:
            raise
        except BaseException as exc:  # noqa: BLE001 - reported on every unit this process would run
            plugin, name = self.hooks.culprit(exc) or (None, "on_worker_start")
            log.error("on_worker_start of plugin %r raised %s: %s", plugin, type_name(exc), text(exc))
            return functools.partial(self._not_started, exc, plugin, name)
        return self

    def __call__(self, condition: str, replicate: int) -> ReplicateOutcome:
        initial = self.initial
        ctx = FrozenContext._adopt(
            {**initial, REPLICATE_KEY: replicate, CONDITION_KEY: condition}
            if initial
            else {REPLICATE_KEY: replicate, CONDITION_KEY: condition}
        )
        scope = ReplicateScope(self, ctx)
        token = _SCOPE.set(scope)
        started = perf_counter()
        error = None
        try:
            treatment = self.treatments.get(condition)
            if treatment is not None:
                treatment.apply(ctx)
                ctx._watch(treatment.values if treatment.values is not None else _added(ctx))
            if self.wrap is None:
                self._replicate(ctx, scope)
            else:
                self.wrap(experiment=self.experiment, run=self.run, ctx=ctx)
                if scope.failure is not None:  # a wrapper swallowed it; it is recorded all the same
                    raise scope.failure
        except NEVER_CAPTURED:  # Ctrl-C stops the run
            raise
        except BaseException as exc:  # noqa: BLE001 - whatever a replicate raises fails it alone
            error = self._failed(exc, ctx, condition, replicate, scope)
        finally:
            _SCOPE.reset(token)
        records = scope.records
        unread = ctx._unread
        return ReplicateOutcome(
            condition,
            replicate,
            ctx.metrics._values,
            error,
            () if records is None else tuple(records),
            ctx._data.get(SEED_KEY),
            perf_counter() - started,
            tuple(sorted(unread)) if unread and error is None else (),
        )

    def _replicate(self, ctx: FrozenContext, scope: ReplicateScope) -> Any:
        """The replicate itself: ``before_replicate``, the datasource, every step; returns the last step's output.

        ``scope.step_name`` is set while a user's step runs and cleared around
        step hooks, so a failure knows whether a step or the code around it
        raised. (Without step hooks it stays set between steps and after the
        last one: nothing else runs there.)
        """
        try:
            experiment = self.experiment
            if self.before_replicate is not None:
                self.before_replicate(experiment=experiment, run=self.run, ctx=ctx)
            data = self.source.fetch(ctx)
            before, after = self.before_step, self.after_step
            if before is None and after is None:
                for index, _, name, call in self.steps:
                    scope.step_name = name
                    scope.step_index = index
                    data = call(data, ctx)
            else:
                run = self.run
                for index, step, name, call in self.steps:
                    if before is not None:
                        before(experiment=experiment, run=run, step=step, ctx=ctx)
                    scope.step_name = name
                    scope.step_index = index
                    data = call(data, ctx)
                    scope.step_name = None
                    if after is not None:
                        after(experiment=experiment, run=run, step=step, data=data, ctx=ctx)
        except BaseException as exc:
            scope.failure = exc
            raise
        return data

    def _failed(
        self, exc: BaseException, ctx: FrozenContext, condition: str, replicate: int, scope: ReplicateScope
    ) -> ReplicateError:
        # A step raised if the replicate body failed while a step's name was set (the body
        # clears it around hooks); a failure outside the body (treatment, wrapper) is no step's.
        step = self.steps[scope.step_index][1] if scope.failure is not None and scope.step_name is not None else None
        plugin, hook = self.hooks.culprit(exc, USER_CODE) or (None, None)
        error = capture(
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
            except NEVER_CAPTURED:
                raise
            except BaseException as hook_exc:  # noqa: BLE001 - never mask the original failure
                log.warning(
                    "on_replicate_error hook raised %s: %s while handling %s",
                    type_name(hook_exc),
                    text(hook_exc),
                    error,
                )
        return error

    def _not_started(
        self, exc: BaseException, plugin: str | None, hook: str, condition: str, replicate: int
    ) -> ReplicateOutcome:
        error = capture(exc, condition, replicate, None, portable=self.portable_errors, plugin=plugin, hook=hook)
        error = attrs.evolve(
            error, message=f"{hook} failed in this process, so the replicate could not run: {error.message}"
        )
        return ReplicateOutcome(condition, replicate, {}, error)


def _added(ctx: FrozenContext) -> list[str]:
    """The keys a callable treatment added: all but the two the core set."""
    return [k for k in ctx._data if k not in _CORE_KEYS]


_CORE_KEYS = frozenset({REPLICATE_KEY, CONDITION_KEY})


class ReplicateBody:
    """The replicate itself, as the innermost ``wrap_replicate`` implementation.

    Registered by the core next to plugins that wrap replicates (and only
    then), so their wrappers run around it through pluggy.
    """

    plugin_name = "crystallize-replicate"

    @hookimpl(trylast=True)
    def wrap_replicate(self, ctx: FrozenContext) -> None:
        scope = _SCOPE.get()
        scope.binding._replicate(ctx, scope)  # type: ignore[union-attr]

    def __repr__(self) -> str:
        return "ReplicateBody()"


#: Where user code starts below a hook implementation: an exception raised
#: under one of these frames is the user's, not the plugin's that called it.
USER_CODE = frozenset({ReplicateRunner.__call__.__code__, ReplicateRunner._replicate.__code__})
