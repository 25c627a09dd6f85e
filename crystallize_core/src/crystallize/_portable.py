"""Make callables survive pickling, lambdas and local functions included.

Standard :mod:`pickle` stores functions by reference (module + name), so a
lambda or a function defined inside another function cannot be sent to a
worker process. :class:`PortableCallable` pickles the function by value with
:mod:`cloudpickle` instead. Artifact loaders and writers are wrapped
automatically; wrap your own callables with :func:`portable`.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

__all__ = ["PortableCallable", "portable"]


class PortableCallable:
    """A callable wrapper that pickles its function with cloudpickle."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"expected a callable, got {type(fn).__name__}: {fn!r}")
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        import cloudpickle

        return (_restore, (cloudpickle.dumps(self.fn),))

    def __repr__(self) -> str:
        return f"portable({self.fn!r})"


def _restore(payload: bytes) -> PortableCallable:
    return PortableCallable(pickle.loads(payload))


def portable(fn: Callable[..., Any]) -> PortableCallable:
    """Wrap ``fn`` so it pickles by value (no-op if already wrapped)."""
    return fn if isinstance(fn, PortableCallable) else PortableCallable(fn)
