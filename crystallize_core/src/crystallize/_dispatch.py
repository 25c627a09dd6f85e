"""Hook markers and the per-run table of hook callers.

Plugins mark their implementations with :data:`hookimpl`::

    from crystallize import hookimpl

    class Timer:
        @hookimpl
        def after_step(self, step, ctx):
            ...

The core calls hooks through :class:`HookCallers`, which holds ``None`` for
every hook that no active plugin implements. Call sites test for ``None``
first, so an unused hook costs one attribute load on the hot path instead of
a pluggy dispatch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pluggy import HookCaller

__all__ = ["PROJECT", "hookimpl", "hookspec", "HookCallers", "HOOK_NAMES"]

PROJECT = "crystallize"

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks a hook specification (used in :mod:`crystallize.hookspecs`)."""

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a hook implementation in a plugin; accepts pluggy's options
(``tryfirst``, ``trylast``, ``wrapper``, ``specname``)."""


def _hook_names() -> tuple[str, ...]:
    from crystallize import hookspecs

    return tuple(name for name, obj in vars(hookspecs).items() if callable(obj) and hasattr(obj, f"{PROJECT}_spec"))


HOOK_NAMES: tuple[str, ...] = _hook_names()


class HookCallers:
    """Callers for every hook of one plugin manager; ``None`` where unused.

    Built once per run, so plugins registered later are not seen by that run.

    A hook with exactly one implementation that is not a wrapper is called
    directly (``impl.function(*args)``, with the arguments it asks for) instead
    of through pluggy's general multi-call loop; results follow pluggy's rules
    (a list for ordinary hooks, the value for ``firstresult`` ones). That
    removes most of the dispatch cost from the per-replicate hooks storage
    plugins implement. When hook calls are monitored or traced
    (``crystallize.testing.record_hooks``, ``CRYSTALLIZE_TRACE_HOOKS``), every
    hook goes through pluggy.
    """

    __slots__ = (*HOOK_NAMES, "manager")

    # Declared for type checkers; the values are set in __init__.
    if TYPE_CHECKING:  # pragma: no cover

        def __getattr__(self, name: str) -> HookCaller | None: ...

    def __init__(self, manager: pluggy.PluginManager, *, direct: bool = True) -> None:
        self.manager = manager
        relay = manager.hook
        for name in HOOK_NAMES:
            caller = getattr(relay, name)
            impls = caller.get_hookimpls()
            if not impls:
                setattr(self, name, None)
            elif direct and len(impls) == 1 and not (impls[0].wrapper or impls[0].hookwrapper):
                setattr(self, name, _direct(impls[0], caller_is_firstresult(manager, name)))
            else:
                setattr(self, name, caller)


def _direct(impl: pluggy.HookImpl, firstresult: bool) -> Any:
    """A caller for a hook with one plain implementation."""
    function = impl.function
    argnames = impl.argnames

    if firstresult:

        def call_first(**kwargs: Any) -> Any:
            return function(*[kwargs[name] for name in argnames])

        call_first.get_hookimpls = lambda: [impl]  # type: ignore[attr-defined]
        return call_first

    def call_all(**kwargs: Any) -> list[Any]:
        result = function(*[kwargs[name] for name in argnames])
        return [] if result is None else [result]

    call_all.get_hookimpls = lambda: [impl]  # type: ignore[attr-defined]
    return call_all


def caller_is_firstresult(manager: pluggy.PluginManager, name: str) -> bool:
    caller = getattr(manager.hook, name)
    opts = caller.spec.opts if caller.spec is not None else {}
    return bool(opts.get("firstresult"))
