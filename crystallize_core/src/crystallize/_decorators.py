"""Factories and decorators of crystallize-ml 0.27: :func:`treatment`, :func:`verifier`,
:func:`pipeline`, :func:`inject_from_ctx`.

``@pipeline_step()``, ``@data_source`` and ``@hypothesis`` live with the
classes they build (:mod:`crystallize._steps`, :mod:`crystallize._datasource`,
:mod:`crystallize._hypothesis`); :func:`~crystallize.resource_factory` in
:mod:`crystallize._resources`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crystallize._resources import ResourceFactory

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._steps import Pipeline, PipelineStep
    from crystallize._treatment import Treatment

__all__ = ["treatment", "verifier", "Verifier", "pipeline", "inject_from_ctx"]

_MISSING = inspect.Parameter.empty


def treatment(name: str, apply: Mapping[str, Any] | Callable[[Any], Any] | None = None) -> Any:
    """A :class:`~crystallize.Treatment`, or a decorator making treatment factories.

    ``treatment("fast", {"lr": 0.1})`` is ``Treatment("fast", {"lr": 0.1})``.
    Without ``apply`` it decorates ``fn(ctx)``; calling the decorated name
    returns the treatment::

        @treatment("warm")
        def warm(ctx):
            ctx.add("temperature", 0.9)

        experiment.run(treatments=[warm()])
    """
    from crystallize._treatment import Treatment

    if apply is not None:
        return Treatment(name, apply)
    Treatment(name, {})  # checks the name now, where the decorator is written

    def decorate(fn: Callable[[FrozenContext], Any]) -> Callable[[], Treatment]:
        if not callable(fn):
            raise TypeError(f"@treatment({name!r}) decorates fn(ctx), got {fn!r}")

        @functools.wraps(fn)
        def factory() -> Treatment:
            return Treatment(name, fn)

        return factory

    return decorate


class Verifier:
    """A verifier function with its parameters bound: ``verifier(baseline, treatment) -> mapping``.

    Made by calling a :func:`verifier`-decorated function; it pickles when the
    function is importable by name.
    """

    __slots__ = ("fn", "params")

    def __init__(self, fn: Callable[..., Any], params: dict[str, Any]) -> None:
        self.fn = fn
        self.params = params

    def __call__(self, baseline: Mapping[str, Sequence[Any]], treatment: Mapping[str, Sequence[Any]]) -> Any:
        return self.fn(baseline, treatment, **self.params)

    @property
    def __name__(self) -> str:
        return getattr(self.fn, "__name__", "verifier")

    def __reduce__(self) -> tuple[Any, ...]:
        from crystallize._portable import portable

        return (Verifier, (portable(self.fn), self.params))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.__name__}({args})"


def verifier(fn: Callable[..., Any]) -> Callable[..., Verifier]:
    """Turn ``fn(baseline, treatment, **params)`` into a factory of verifiers.

    ::

        @verifier
        def mean_gain(baseline, treatment, *, threshold=0.0):
            gain = sum(treatment["score"]) / len(treatment["score"]) - sum(baseline["score"]) / len(baseline["score"])
            return {"gain": gain, "accepted": gain > threshold}

        Hypothesis(verifier=mean_gain(threshold=0.1), metrics="score")

    Calling the factory binds the parameters (checked against ``fn``'s
    signature: a missing or unknown one is a ``TypeError``).
    """
    if not callable(fn):
        raise TypeError(f"@verifier decorates fn(baseline, treatment, **params), got {fn!r}")
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    if len(params) < 2:
        raise TypeError(f"@verifier: {fn.__qualname__}{signature} must take (baseline, treatment) first")
    own = signature.replace(parameters=params[2:])

    @functools.wraps(fn)
    def factory(*args: Any, **kwargs: Any) -> Verifier:
        try:
            bound = own.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{fn.__name__}(...): {exc}") from None
        bound.apply_defaults()
        return Verifier(fn, dict(bound.arguments))

    return factory


def pipeline(*steps: PipelineStep) -> Pipeline:
    """``Pipeline([*steps])``."""
    from crystallize._steps import Pipeline

    return Pipeline(list(steps))


def inject_from_ctx(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Fill ``fn``'s parameters that the caller leaves out from the context, by name.

    The decorated function is called as ``fn(data, ctx, ...)``; ``ctx`` (a
    :class:`~crystallize.FrozenContext`) is the argument named ``ctx`` or the
    second positional one. Each other parameter not passed takes the context
    value of the same name, else its default, else ``TypeError``. A
    :func:`~crystallize.resource_factory` found in the context is called to
    build the value; any other value, functions included, is passed as it is.
    ``@pipeline_step()`` does this by itself.
    """
    from crystallize._context import FrozenContext

    signature = inspect.signature(fn)
    has_ctx = "ctx" in signature.parameters

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_ctx:
            bound = signature.bind_partial(*args, **kwargs)
            if "ctx" not in bound.arguments:
                raise TypeError(f"{fn.__name__}() needs a ctx argument (a FrozenContext)")
            ctx = bound.arguments["ctx"]
        else:
            if "ctx" in kwargs:
                ctx = kwargs.pop("ctx")
            elif len(args) >= 2:
                ctx, args = args[1], args[:1] + args[2:]
            else:
                raise TypeError(f"{fn.__name__}() needs a ctx argument (a FrozenContext)")
            bound = signature.bind_partial(*args, **kwargs)
        if not isinstance(ctx, FrozenContext):
            raise TypeError(f"{fn.__name__}(): ctx must be a FrozenContext, got {type(ctx).__name__}")
        for name, param in signature.parameters.items():
            if (
                name in bound.arguments
                or name in ("ctx", "data")
                or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
            ):
                continue
            value = ctx._data.get(name, _MISSING)
            if value is _MISSING:
                if param.default is _MISSING:
                    raise TypeError(
                        f"{fn.__name__}(): parameter {name!r} was not passed, is not in the context "
                        f"(keys: {', '.join(map(repr, ctx)) or 'none'}) and has no default"
                    )
                value = param.default
            elif type(value) is ResourceFactory:
                value = value(ctx)
            bound.arguments[name] = value
        return fn(*bound.args, **bound.kwargs)

    return wrapper
