"""Pipelines and their steps: :class:`Pipeline`, :class:`PipelineStep`, :func:`pipeline_step`.

A step is subclassed from :class:`PipelineStep` or made from a function.

Class steps::

    class Scale(PipelineStep):
        def __init__(self, factor):
            self.factor = factor

        def __call__(self, data, ctx):
            return [x * self.factor for x in data]

        @property
        def params(self):
            return {"factor": self.factor}

Function steps::

    @pipeline_step()
    def scale(data, ctx, factor=2):
        return [x * factor for x in data]

    Pipeline([scale(factor=3)])

A function step's parameters that are not passed to the factory are looked up
in the context by name (so a treatment's keys reach the step), then fall back
to the function's defaults.
"""

from __future__ import annotations

import enum
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crystallize._context import FrozenContext

__all__ = ["Pipeline", "PipelineStep", "FunctionStep", "pipeline_step"]


class _Missing(enum.Enum):
    """Marks a parameter with no default. An enum member keeps its identity when
    pickled (a bare ``object()`` would not, once a step travels by value)."""

    MISSING = "missing"


_MISSING: Any = _Missing.MISSING


class PipelineStep(ABC):
    """One stage of a pipeline: ``step(data, ctx) -> data``.

    Subclasses implement ``__call__`` and usually ``params``, the values that
    define what the step computes. ``params`` feeds the experiment's identity
    (its id is a hash of every step's class name, code and parameters), so
    two processes that build the same pipeline get the same id. The default
    ``params`` is the step's public instance attributes.

    The step's name — the ``<step>`` folder its artifacts are stored in — is
    its class name.
    """

    @abstractmethod
    def __call__(self, data: Any, ctx: FrozenContext) -> Any:
        """Transform ``data``; read settings from and record metrics on ``ctx``."""

    @property
    def params(self) -> dict[str, Any]:
        """The values that define this step (used for the experiment id)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    @property
    def step_name(self) -> str:
        """The folder name of this step's artifacts."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<step {self.step_name}>"


class FunctionStep(PipelineStep):
    """A step made by :func:`pipeline_step` from a plain function."""

    __slots__ = ("defaults", "direct", "explicit", "factory", "fn", "injected")

    def __init__(
        self,
        fn: Callable[..., Any],
        explicit: dict[str, Any],
        defaults: dict[str, Any],
        injected: tuple[tuple[str, Any], ...],
        factory: Callable[..., FunctionStep] | None = None,
    ) -> None:
        self.fn = fn
        # The decorated name refers to the factory, not to ``fn``, so pickle
        # rebuilds the step through the factory (found by module and name).
        self.factory = factory
        self.explicit = explicit
        self.defaults = defaults
        # (name, default or _MISSING) for parameters read from the context.
        self.injected = injected
        # A C-level callable taking (data, ctx) when nothing needs injecting:
        # the runner calls it directly, saving a Python frame per step.
        self.direct: Callable[[Any, Any], Any] | None = (
            None if injected else functools.partial(fn, **explicit) if explicit else fn
        )

    def __call__(self, data: Any, ctx: FrozenContext) -> Any:
        if self.direct is not None:
            return self.direct(data, ctx)
        return self.fn(data, ctx, **inject(ctx, self.explicit, self.injected, f"step {self.step_name!r}"))

    @property
    def params(self) -> dict[str, Any]:
        return {**self.defaults, **self.explicit}

    @property
    def step_name(self) -> str:
        return self.fn.__name__

    def __reduce__(self) -> tuple[Any, ...]:
        if self.factory is not None:
            return (_rebuild, (self.factory, self.explicit))
        return (FunctionStep, (self.fn, self.explicit, self.defaults, self.injected))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.explicit.items())
        return f"{self.step_name}({args})"


def inject(
    ctx: FrozenContext, explicit: dict[str, Any], injected: tuple[tuple[str, Any], ...], owner: str
) -> dict[str, Any]:
    """The keyword arguments of a call: ``explicit`` ones, then each of ``injected`` from the
    context by name (a treatment's key reaches the function this way), else its default."""
    kwargs = dict(explicit)
    values = ctx._data  # type: ignore[attr-defined]
    unread = ctx._unread  # type: ignore[attr-defined]
    for name, default in injected:
        value = values.get(name, default)
        if value is _MISSING:
            known = ", ".join(repr(k) for k in values) or "none"
            raise TypeError(
                f"{owner}: parameter {name!r} was not passed, has no default and is not in the context "
                f"(context keys: {known}); pass it, or set it with a treatment"
            )
        if unread:
            unread.discard(name)
        kwargs[name] = value
    return kwargs


def _rebuild(factory: Callable[..., FunctionStep], explicit: dict[str, Any]) -> FunctionStep:
    return factory(**explicit)


def _make_factory(fn: Callable[..., Any]) -> Callable[..., FunctionStep]:
    import inspect

    if not callable(fn):
        raise TypeError(f"@pipeline_step() decorates a function, got {fn!r}")
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if len(params) < 2 or any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params[:2]):
        raise TypeError(
            f"@pipeline_step(): {fn.__qualname__}{sig} must take (data, ctx) as its first "
            "two positional parameters, then its own parameters"
        )
    own = [p for p in params[2:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    own_sig = sig.replace(parameters=own)
    defaults = {p.name: p.default for p in own if p.default is not p.empty}

    @functools.wraps(fn)
    def factory(*args: Any, **kwargs: Any) -> FunctionStep:
        try:
            bound = own_sig.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{fn.__name__}(...): {exc}") from None
        explicit = dict(bound.arguments)
        injected = tuple((p.name, defaults.get(p.name, _MISSING)) for p in own if p.name not in explicit)
        return FunctionStep(fn, explicit, defaults, injected, factory)

    factory.__crystallize_factory__ = "step"  # type: ignore[attr-defined]
    return factory


def pipeline_step(fn: Callable[..., Any] | None = None, /) -> Any:
    """Turn ``fn(data, ctx, **params)`` into a step factory.

    Use as ``@pipeline_step()`` (or bare ``@pipeline_step``). Calling the
    decorated function with parameters returns a :class:`PipelineStep`::

        @pipeline_step()
        def add(data, ctx, amount=1):
            return data + amount

        Pipeline([add(amount=5)])
    """
    if fn is None:
        return _make_factory
    return _make_factory(fn)


class Pipeline:
    """Steps run in order for every replicate; each gets the previous one's output.

    :param steps: :class:`PipelineStep` instances (call a ``@pipeline_step``
        factory to get one).
    """

    def __init__(self, steps: Iterable[PipelineStep]) -> None:
        self.steps: list[PipelineStep] = list(steps)
        for i, step in enumerate(self.steps):
            if isinstance(step, PipelineStep):
                continue
            hint = ""
            if getattr(step, "__crystallize_factory__", None) == "step":
                hint = f" (did you mean {step.__name__}()? @pipeline_step functions are factories)"
            elif isinstance(step, type) and issubclass(step, PipelineStep):
                hint = f" (did you mean {step.__name__}(...)? pass an instance, not the class)"
            raise TypeError(f"Pipeline step {i} is {step!r}, not a PipelineStep{hint}")

    def signature(self) -> list[Any]:
        """The canonical description of every step, code fingerprints included (the steps
        part of :meth:`Experiment.signature <crystallize.Experiment.signature>`)."""
        from crystallize._identity import describe

        return [describe(step) for step in self.steps]

    def __iter__(self) -> Iterator[PipelineStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"
