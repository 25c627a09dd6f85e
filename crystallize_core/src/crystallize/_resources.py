"""Expensive shared objects created once per thread: :func:`resource_factory`.

A model, a database connection or an API client is often costly to build
and cannot be pickled to worker processes. Put a *factory* for it in the
context instead (``Experiment(initial_ctx={"db": resource_factory(connect)})``
or a treatment); a step parameter of that name receives the object, built on
first use and reused by every later replicate in the same thread::

    def connect(ctx):
        import sqlite3

        return sqlite3.connect(":memory:")

    @pipeline_step()
    def query(data, ctx, db):  # db is the connection, not the factory
        return db.execute("select 1").fetchone()

Only factories made by :func:`resource_factory` are called when injected; any
other value in the context (a function included) is passed as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["ResourceFactory", "resource_factory"]

_cache = threading.local()


class ResourceFactory:
    """Builds a resource with ``fn(ctx)`` once per thread and process, then returns the same one.

    It pickles as the function and key only, so a worker process builds its
    own resource on first use.

    :param fn: ``fn(ctx) -> resource`` (or ``fn() -> resource``).
    :param key: what identifies the resource in the per-thread cache; by
        default the function itself (two factories of one function share it).
    """

    __slots__ = ("fn", "key", "takes_ctx")

    def __init__(self, fn: Callable[..., Any], key: Hashable | None = None, takes_ctx: bool | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"resource_factory(fn) takes a callable(ctx), got {fn!r}")
        if takes_ctx is None:
            import inspect

            try:
                takes_ctx = bool(inspect.signature(fn).parameters)
            except (TypeError, ValueError):  # builtins without a signature
                takes_ctx = True
        self.fn = fn
        self.key = key
        self.takes_ctx = takes_ctx

    def __call__(self, ctx: Any = None) -> Any:
        cache = getattr(_cache, "resources", None)
        if cache is None:
            cache = _cache.resources = {}
        key = self.key if self.key is not None else self.fn
        try:
            return cache[key]
        except KeyError:
            pass
        resource = self.fn(ctx) if self.takes_ctx else self.fn()
        cache[key] = resource
        return resource

    def __reduce__(self) -> tuple[Any, ...]:
        from crystallize._portable import portable

        return (ResourceFactory, (portable(self.fn), self.key, self.takes_ctx))

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"resource_factory({name}{'' if self.key is None else f', key={self.key!r}'})"


def resource_factory(fn: Callable[..., Any], *, key: Hashable | None = None) -> ResourceFactory:
    """Wrap ``fn(ctx)`` so the resource it builds is created once per thread and reused.

    See the module documentation for how steps receive it.
    """
    return ResourceFactory(fn, key)
