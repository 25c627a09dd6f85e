"""Helpers for testing plugins (and experiments that use them).

- :func:`plugin_registered`, :func:`record_hooks`, :func:`installed_plugins_only`:
  activate a plugin for a test, record hook calls, pin what autoloads.
- :class:`MemoryStorage` (with :class:`MemoryRunStore`): a complete storage
  plugin keeping runs in memory — the reference implementation of the store
  contract, and a store for tests.
- :class:`RunStoreContract`: the conformance tests every store passes;
  subclass it with your storage plugin.

Register a plugin for the duration of a test, and record which hooks were
called with which arguments::

    from crystallize.testing import plugin_registered, record_hooks

    def test_my_plugin_sees_every_step():
        with plugin_registered(MyPlugin()), record_hooks() as calls:
            experiment.run()
        assert len(calls.named("after_step")) == 3
        calls.assert_called("after_run")

Hooks that run where the replicate runs are recorded only when replicates run
in this process (serial or thread execution).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from crystallize import _registry
from crystallize._memory_store import MemoryRunStore, MemoryStorage
from crystallize._store_contract import RunStoreContract

__all__ = [
    "HookCall",
    "HookRecorder",
    "installed_plugins_only",
    "plugin_registered",
    "record_hooks",
    "MemoryStorage",
    "MemoryRunStore",
    "RunStoreContract",
]


@attrs.frozen
class HookCall:
    """One hook call: its name and keyword arguments."""

    name: str
    kwargs: dict[str, Any]

    def __getattr__(self, item: str) -> Any:
        try:
            return self.kwargs[item]
        except KeyError:
            raise AttributeError(f"hook {self.name!r} was not called with {item!r}") from None


class HookRecorder:
    """Collects :class:`HookCall` records from every experiment run while active."""

    def __init__(self) -> None:
        self.calls: list[HookCall] = []
        self._lock = threading.Lock()

    def _before(self, hook_name: str, hook_impls: Any, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(HookCall(hook_name, dict(kwargs)))

    def named(self, *names: str) -> list[HookCall]:
        """Calls of the given hooks, in call order."""
        return [c for c in self.calls if c.name in names]

    def names(self) -> list[str]:
        """Every recorded hook name, in call order."""
        return [c.name for c in self.calls]

    def assert_called(self, name: str, **match: Any) -> HookCall:
        """Return the first call of ``name`` whose arguments equal ``match``; fail otherwise."""
        for call in self.named(name):
            if all(call.kwargs.get(k) == v for k, v in match.items()):
                return call
        seen = sorted(set(self.names()))
        raise AssertionError(f"hook {name!r} was not called with {match!r}; hooks called: {seen}")

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


@contextmanager
def plugin_registered(plugin: Any, name: str | None = None) -> Iterator[Any]:
    """Activate ``plugin`` for every experiment inside the ``with`` block."""
    _registry.register_plugin(plugin, name)
    try:
        yield plugin
    finally:
        _registry.unregister_plugin(plugin)


@contextmanager
def installed_plugins_only(*names: str) -> Iterator[None]:
    """Inside the block, autoload only these installed plugins (none without names).

    Names are entry-point or distribution names, as for
    ``CRYSTALLIZE_LOAD_PLUGINS``. Installed plugins are loaded afresh on entry
    and again after the block, so a test suite can pin exactly what is active::

        @pytest.fixture(autouse=True)
        def only_mine():
            with installed_plugins_only("my-plugin"):
                yield
    """
    saved = {key: os.environ.get(key) for key in (_registry.ENV_ALLOW, _registry.ENV_DISABLE_AUTOLOAD)}
    os.environ.pop(_registry.ENV_DISABLE_AUTOLOAD, None)
    os.environ[_registry.ENV_ALLOW] = ",".join(names)
    _registry.reset_autoload()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _registry.reset_autoload()


@contextmanager
def record_hooks() -> Iterator[HookRecorder]:
    """Record every hook call made inside the ``with`` block."""
    recorder = HookRecorder()
    monitor = recorder._before
    _registry.add_monitor(monitor)
    try:
        yield recorder
    finally:
        _registry.remove_monitor(monitor)
