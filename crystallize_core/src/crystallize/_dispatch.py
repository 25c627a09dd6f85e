"""Hook markers and the one place the core calls hooks.

Plugins mark their implementations with :data:`hookimpl`::

    from crystallize.plugin import hookimpl

    class Timer:
        @hookimpl
        def after_step(self, step, ctx):
            ...

The core calls hooks through a :class:`Hooks` table built once per plugin
set. It holds ``None`` for every hook no active plugin implements, so call
sites test for ``None`` first and an unused hook costs one attribute load.
Three ways of calling, all here:

- **direct** — a hook whose implementations are all plain (no wrapper) is
  called as ``impl.function(*arguments it asks for)`` for each, in pluggy's
  order, without pluggy's general loop; results follow pluggy's rules (a
  list of the non-``None`` results for ordinary hooks; the first non-``None``
  one for ``firstresult`` hooks, which stop there) and an exception
  propagates at once. Measured: it removes most of the dispatch cost from
  per-replicate hooks. A hook with a wrapper, and every hook while calls are
  monitored or traced (``crystallize.testing.record_hooks``,
  ``CRYSTALLIZE_TRACE_HOOKS``), goes through pluggy. A parity test runs the
  hook tests both ways.
- **isolated** (:meth:`Hooks.call_isolated`) — for hooks where plugins release
  what they hold (``after_run``): every implementation runs even when one
  raises; the first error is re-raised afterwards, with a note naming its
  plugin.
- **blame** (:meth:`Hooks.culprit`, :meth:`Hooks.blame`) — which plugin's hook
  implementation raised an exception, read from its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from operator import itemgetter
from types import CodeType
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pluggy import HookCaller, HookImpl

__all__ = [
    "PROJECT",
    "hookimpl",
    "hookspec",
    "Hooks",
    "HOOK_NAMES",
    "ISOLATED_HOOKS",
    "WRAPPER_ONLY_HOOKS",
    "implementation_problems",
]

PROJECT = "crystallize"

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks a hook specification (used in :mod:`crystallize.hookspecs`)."""

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a hook implementation in a plugin; accepts pluggy's options
(``tryfirst``, ``trylast``, ``wrapper``, ``specname``)."""

log = logging.getLogger("crystallize.hooks")

#: A hook ready to call with keyword arguments; ``None`` in a table when unimplemented.
HookCall = Callable[..., Any]


def _hook_names() -> tuple[str, ...]:
    from crystallize import hookspecs

    return tuple(name for name, obj in vars(hookspecs).items() if callable(obj) and hasattr(obj, f"{PROJECT}_spec"))


HOOK_NAMES: tuple[str, ...] = _hook_names()

#: Hooks called with :meth:`Hooks.call_isolated`: no implementation may be a wrapper.
ISOLATED_HOOKS = frozenset({"after_run", "after_graph_run"})
#: Hooks whose implementations must be wrappers (``@hookimpl(wrapper=True)``); the
#: core adds the one plain implementation, the replicate itself.
WRAPPER_ONLY_HOOKS = frozenset({"wrap_replicate"})


def implementation_problems(manager: pluggy.PluginManager) -> list[str]:
    """What is wrong with how registered plugins implement the isolated and wrapper-only hooks."""
    from crystallize._execution.runner import ReplicateBody

    problems = []
    for name in ISOLATED_HOOKS | WRAPPER_ONLY_HOOKS:
        for impl in getattr(manager.hook, name).get_hookimpls():
            wrapper = impl.wrapper or impl.hookwrapper
            if name in ISOLATED_HOOKS and wrapper:
                problems.append(
                    f"plugin {impl.plugin_name!r} implements {name!r} as a wrapper; every {name} "
                    "implementation runs even when another raises, so it must be a plain @hookimpl"
                )
            elif name in WRAPPER_ONLY_HOOKS and not impl.wrapper and not isinstance(impl.plugin, ReplicateBody):
                problems.append(
                    f"plugin {impl.plugin_name!r} implements {name!r} without wrapper=True; mark it "
                    f"@hookimpl(wrapper=True) and yield once where the replicate runs"
                )
    return problems


class Hooks:
    """Every hook of one plugin manager, ready to call; ``None`` where unimplemented.

    Built once per plugin set (and once per worker process), so plugins
    registered later are not seen by it. Call a hook with keyword arguments:
    ``hooks.before_run(experiment=..., run=...)``.

    :param manager: the plugin manager holding the plugins.
    :param direct: call hooks without wrappers directly (the default);
        ``False`` sends every call through pluggy.
    :param observers: ``before(hook_name, hook_impls, kwargs)`` callables told
        of every isolated call (monitored runs; pluggy tells them of the rest).
    """

    # One attribute per hook of crystallize.hookspecs (a test keeps them in step).
    validate_experiment: HookCall | None
    open_store: HookCall | None
    locate_run: HookCall | None
    on_resume: HookCall | None
    before_run: HookCall | None
    execute_replicates: HookCall | None
    on_worker_start: HookCall | None
    wrap_replicate: HookCaller | None
    before_replicate: HookCall | None
    before_step: HookCall | None
    after_step: HookCall | None
    on_artifact_write: HookCall | None
    on_replicate_error: HookCall | None
    on_replicate_outcome: HookCall | None
    on_condition_complete: HookCall | None
    after_run: HookCall | None
    artifact_datasource: HookCall | None
    stale_reason: HookCall | None
    before_graph_run: HookCall | None
    after_graph_run: HookCall | None

    __slots__ = (*HOOK_NAMES, "manager", "direct", "_observers", "_codes")

    def __init__(
        self,
        manager: pluggy.PluginManager,
        *,
        direct: bool = True,
        observers: Iterable[Callable[[str, list[HookImpl], dict[str, Any]], None]] = (),
    ) -> None:
        self.manager = manager
        self.direct = direct
        self._observers = tuple(observers)
        self._codes: dict[CodeType, tuple[str, str]] | None = None
        relay = manager.hook
        for name in HOOK_NAMES:
            caller = getattr(relay, name)
            impls = caller.get_hookimpls()
            if not impls:
                setattr(self, name, None)
            elif direct and not any(impl.wrapper or impl.hookwrapper for impl in impls):
                firstresult = bool(caller.spec is not None and caller.spec.opts.get("firstresult"))
                setattr(self, name, _direct(impls, firstresult))
            else:
                setattr(self, name, caller)

    def implementations(self, name: str) -> list[HookImpl]:
        """The implementations of hook ``name``, in pluggy's calling order."""
        return list(reversed(getattr(self.manager.hook, name).get_hookimpls()))

    # -- isolated calls ---------------------------------------------------------------

    def call_isolated(self, name: str, **kwargs: Any) -> None:
        """Call every implementation of ``name``, even when one raises.

        Implementations run in pluggy's order. Each failure is logged; once
        all have run, the first is raised with a note naming its plugin.
        """
        if getattr(self, name) is None:
            return
        impls = self.implementations(name)
        for observer in self._observers:
            observer(name, impls, kwargs)
        first: Exception | None = None
        for impl in impls:
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:  # noqa: BLE001 - reported below, after the other plugins ran
                log.error("%s of plugin %r raised %s: %s", name, impl.plugin_name, type(exc).__name__, exc)
                if first is None:
                    _note(exc, impl.plugin_name, name)
                    first = exc
        if first is not None:
            raise first

    # -- blame ---------------------------------------------------------------------------

    def culprit(self, exc: BaseException, boundaries: Iterable[CodeType] = ()) -> tuple[str, str] | None:
        """``(plugin name, hook name)`` of the hook implementation that raised ``exc``, if one did.

        The innermost hook implementation on the traceback is the culprit,
        unless code listed in ``boundaries`` (where user code starts, such as
        the replicate body) ran below it: then user code raised.
        """
        codes = self._codes
        if codes is None:
            codes = {}
            for name in HOOK_NAMES:
                for impl in getattr(self.manager.hook, name).get_hookimpls():
                    code = getattr(impl.function, "__code__", None)
                    if code is not None:
                        codes[code] = (impl.plugin_name, name)
            self._codes = codes
        stops = set(boundaries)
        found = None
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            found = None if code in stops else codes.get(code, found)
            tb = tb.tb_next
        return found

    def blame(self, exc: BaseException, boundaries: Iterable[CodeType] = ()) -> None:
        """Add a note to ``exc`` naming the plugin whose hook implementation raised it (once)."""
        if getattr(exc, "_crystallize_blamed", False):
            return
        found = self.culprit(exc, boundaries)
        if found is not None:
            _note(exc, *found)


def _note(exc: BaseException, plugin: str, hook: str) -> None:
    if hasattr(exc, "add_note") and not getattr(exc, "_crystallize_blamed", False):
        exc.add_note(f"(raised by plugin {plugin!r} in hook {hook!r})")
        exc._crystallize_blamed = True  # type: ignore[attr-defined]


def _arguments(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """What picks an implementation's arguments (``argnames``) out of the call's keyword arguments."""
    if not names:

        def none(kwargs: dict[str, Any]) -> tuple[Any, ...]:
            return ()

        return none
    if len(names) == 1:
        only = names[0]

        def one(kwargs: dict[str, Any]) -> tuple[Any, ...]:
            return (kwargs[only],)

        return one
    return itemgetter(*names)  # type: ignore[return-value]


def _direct(impls: list[HookImpl], firstresult: bool) -> HookCall:
    """A caller for a hook whose implementations are all plain, with pluggy's semantics.

    ``impls`` is pluggy's list (``get_hookimpls()``); they are called in
    pluggy's order, the reverse of that list (last registered first, then
    ``tryfirst`` before and ``trylast`` after the others). Results follow
    pluggy's rules: ``None`` results are dropped; an ordinary hook returns the
    list of the others, a ``firstresult`` hook the first one and stops
    there. An exception propagates at once, and later implementations do not
    run — as in pluggy, which has no wrappers to tell here.
    """
    if len(impls) == 1:
        return _direct_one(impls[0], firstresult)
    calls = tuple((impl.function, _arguments(tuple(impl.argnames))) for impl in reversed(impls))

    if firstresult:

        def call_first(**kwargs: Any) -> Any:
            for function, arguments in calls:
                result = function(*arguments(kwargs))
                if result is not None:
                    return result
            return None

        return call_first

    def call_all(**kwargs: Any) -> list[Any]:
        results = []
        for function, arguments in calls:
            result = function(*arguments(kwargs))
            if result is not None:
                results.append(result)
        return results

    return call_all


def _direct_one(impl: HookImpl, firstresult: bool) -> HookCall:
    """A caller for a hook with one plain implementation (the common case, kept to one call)."""
    function = impl.function
    arguments = _arguments(tuple(impl.argnames))

    if firstresult:

        def call_first(**kwargs: Any) -> Any:
            return function(*arguments(kwargs))

        return call_first

    def call_all(**kwargs: Any) -> list[Any]:
        result = function(*arguments(kwargs))
        return [] if result is None else [result]

    return call_all
