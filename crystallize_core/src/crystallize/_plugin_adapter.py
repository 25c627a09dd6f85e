"""crystallize-ml 0.27 plugin classes on the hooks: :class:`BasePlugin`.

A 0.27 plugin subclassed ``BasePlugin`` and overrode some of ``init_hook``,
``before_run``, ``before_replicate``, ``before_step``, ``after_step``,
``after_run`` and ``run_experiment_loop``, with 0.27's arguments. Such a class
keeps working: for every method it overrides, :class:`BasePlugin` gives it a
hook implementation (marked with :data:`~crystallize.plugin.hookimpl`, named
after the hook) that calls the method with the arguments it expects. The
plugin is then an ordinary pluggy plugin — registered, listed, blamed for its
errors and shipped to workers like any other — and a method it does not
override costs nothing.

=========================  ==========================================
0.27 method                hook
=========================  ==========================================
``init_hook(experiment)``  ``validate_experiment`` (once per experiment)
``before_run(e)``          ``before_run``
``before_replicate(e, c)`` ``before_replicate``
``before_step(e, step)``   ``before_step``
``after_step(e, s, d, c)`` ``after_step``
``after_run(e, result)``   ``after_run``
``run_experiment_loop``    ``execute_replicates`` (see below)
=========================  ==========================================

``run_experiment_loop(experiment, replicate_fn)`` receives a
``replicate_fn(rep)`` that runs every pending condition of replicate ``rep``
in the calling process and returns their outcomes; ``experiment.replicates``
is the run's count. Returning ``NotImplemented`` lets the next engine run
the replicates. ``replicate_fn`` cannot be sent to another process: an
engine that runs replicates elsewhere implements ``execute_replicates``
(see the plugin authors' guide).
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crystallize._dispatch import hookimpl

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._execution.batch import ReplicateBatch
    from crystallize._experiment import Experiment
    from crystallize._records import ReplicateOutcome, Run
    from crystallize._result import Result
    from crystallize._steps import PipelineStep

__all__ = ["BasePlugin"]


# -- the hook implementations given to subclasses -----------------------------------------


#: ``{experiment: ids of the plugins whose init_hook ran for it}``
_INITIALISED: weakref.WeakKeyDictionary[Any, set[int]] = weakref.WeakKeyDictionary()
_INIT_LOCK = threading.Lock()


def _validate_experiment(self: BasePlugin, experiment: Experiment) -> None:
    with _INIT_LOCK:
        done = _INITIALISED.setdefault(experiment, set())
        if id(self) in done:
            return
        done.add(id(self))
    self.init_hook(experiment)


def _before_run(self: BasePlugin, experiment: Experiment) -> None:
    self.before_run(experiment)


def _before_replicate(self: BasePlugin, experiment: Experiment, ctx: FrozenContext) -> None:
    self.before_replicate(experiment, ctx)


def _before_step(self: BasePlugin, experiment: Experiment, step: PipelineStep) -> None:
    self.before_step(experiment, step)


def _after_step(self: BasePlugin, experiment: Experiment, step: PipelineStep, data: Any, ctx: FrozenContext) -> None:
    self.after_step(experiment, step, data, ctx)


def _after_run(self: BasePlugin, experiment: Experiment, result: Result) -> None:
    self.after_run(experiment, result)


def _execute_replicates(self: BasePlugin, experiment: Experiment, run: Run, batch: ReplicateBatch) -> bool | None:
    replicate_fn = LegacyReplicates(batch)
    view = RunView(experiment, run)
    if inspect.iscoroutinefunction(self.run_experiment_loop):
        from crystallize._async import run_coroutine

        returned = run_coroutine(self.run_experiment_loop(view, replicate_fn.awaitable))
    else:
        returned = self.run_experiment_loop(view, replicate_fn)
        if inspect.isawaitable(returned):
            from crystallize._async import run_coroutine

            returned = run_coroutine(returned)
    replicate_fn.flush()
    if returned is NotImplemented and replicate_fn.calls == 0:
        return None
    return True


#: ``{0.27 method: (hook, implementation)}``
_ADAPTERS: dict[str, tuple[str, Callable[..., Any]]] = {
    "init_hook": ("validate_experiment", _validate_experiment),
    "before_run": ("before_run", _before_run),
    "before_replicate": ("before_replicate", _before_replicate),
    "before_step": ("before_step", _before_step),
    "after_step": ("after_step", _after_step),
    "after_run": ("after_run", _after_run),
    "run_experiment_loop": ("execute_replicates", _execute_replicates),
}


class BasePlugin:
    """Base class of crystallize-ml 0.27 plugins; subclasses run on the hooks unchanged.

    Override any of the methods below with 0.27's arguments (see the module
    documentation for the hook each one becomes). New plugins implement the
    hooks of :mod:`crystallize.hookspecs` directly instead.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method, (hook, implementation) in _ADAPTERS.items():
            attribute = f"_crystallize_{hook}"
            if getattr(cls, method) is not getattr(BasePlugin, method):
                setattr(cls, attribute, hookimpl(specname=hook)(implementation))
            elif attribute in cls.__dict__:  # pragma: no cover - a subclass resetting a method
                delattr(cls, attribute)

    def init_hook(self, experiment: Experiment) -> None:
        """Called once per experiment, when it is first validated (0.27: at construction)."""

    def before_run(self, experiment: Experiment) -> None:
        """Called before each run's first replicate."""

    def before_replicate(self, experiment: Experiment, ctx: FrozenContext) -> None:
        """Called before each (condition, replicate), where it runs."""

    def before_step(self, experiment: Experiment, step: PipelineStep) -> None:
        """Called before each step of each replicate."""

    def after_step(self, experiment: Experiment, step: PipelineStep, data: Any, ctx: FrozenContext) -> None:
        """Called after each step of each replicate returned."""

    def after_run(self, experiment: Experiment, result: Result) -> None:
        """Called once after each run, also when it failed."""

    def run_experiment_loop(self, experiment: Any, replicate_fn: Callable[[int], Any]) -> Any:
        """Run ``replicate_fn(rep)`` for every ``rep in range(experiment.replicates)``.

        Return ``NotImplemented`` (the default) to leave execution to another plugin.
        """
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RunView:
    """The experiment as a 0.27 execution loop sees it: ``replicates`` is this run's count."""

    def __init__(self, experiment: Experiment, run: Run) -> None:
        self._experiment = experiment
        self._run = run

    @property
    def replicates(self) -> int:
        return self._run.replicates

    def __getattr__(self, name: str) -> Any:
        return getattr(self._experiment, name)

    def __repr__(self) -> str:
        return f"RunView({self._experiment!r}, replicates={self.replicates})"


class LegacyReplicates:
    """``replicate_fn(rep)`` for a 0.27 ``run_experiment_loop``: runs replicate ``rep``'s pending units here.

    Outcomes are reported to the batch at once when called from the engine's
    thread, else when the loop returns (:meth:`flush`).
    """

    def __init__(self, batch: ReplicateBatch) -> None:
        self.batch = batch
        self.thread = threading.get_ident()
        self.calls = 0
        self._by_replicate: dict[int, list[str]] = {}
        for condition, replicate in batch.units:
            self._by_replicate.setdefault(replicate, []).append(condition)
        self._deferred: list[ReplicateOutcome] = []
        self._lock = threading.Lock()

    def __call__(self, rep: int) -> list[ReplicateOutcome]:
        with self._lock:
            self.calls += 1
            conditions = self._by_replicate.pop(rep, [])
        outcomes = [self.batch.run_here(condition, rep) for condition in conditions]
        if threading.get_ident() == self.thread:
            for outcome in outcomes:
                self.batch.report(outcome)
        else:
            with self._lock:
                self._deferred.extend(outcomes)
        return outcomes

    async def awaitable(self, rep: int) -> list[ReplicateOutcome]:
        """The same, for an ``async`` loop: runs in a worker thread; async steps use the loop's."""
        import asyncio  # already imported by the running loop

        from crystallize._async import target_loop

        loop = asyncio.get_running_loop()

        def call() -> list[ReplicateOutcome]:
            with target_loop(loop):
                return self(rep)

        return await asyncio.to_thread(call)

    def flush(self) -> None:
        """Report the outcomes of calls made from other threads."""
        with self._lock:
            deferred, self._deferred = self._deferred, []
        for outcome in deferred:
            self.batch.report(outcome)

    def __reduce__(self) -> Any:
        raise TypeError(
            "a crystallize-ml 0.27 run_experiment_loop cannot send replicate_fn to another process; "
            "implement the execute_replicates hook instead (crystallize.plugin.run_unit runs a unit anywhere)"
        )
