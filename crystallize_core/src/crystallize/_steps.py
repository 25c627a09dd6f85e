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
to the function's defaults; a :func:`~crystallize.resource_factory` found
there is called to build the value. A function may leave out ``ctx``
(``def scale(data, *, factor=2)``): its parameters are injected all the same.

Steps may be ``async def`` (a coroutine function given to ``@pipeline_step()``,
or a class whose ``__call__`` is ``async def``): every replicate awaits them
before the next step runs (see :mod:`crystallize._async`).

``cacheable`` steps (``cacheable = True`` on the class, or
``@pipeline_step(cacheable=True)``) reuse results stored on disk for the same
code, parameters and input (see ``crystallize._cache``).
"""

from __future__ import annotations

import enum
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from crystallize._resources import ResourceFactory

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

    Subclasses implement ``__call__`` (plain or ``async def``) and usually
    ``params``, the values that define what the step computes. ``params``
    feeds the experiment's identity (its id is a hash of every step's class
    name, code and parameters), so two processes that build the same pipeline
    get the same id. The default ``params`` is the step's public instance
    attributes.

    The step's name — the ``<step>`` folder its artifacts are stored in — is
    its class name.

    :cvar cacheable: ``True`` to reuse results stored on disk for the same
        code, parameters and input instead of calling the step again.
    """

    cacheable: bool = False

    @abstractmethod
    def __call__(self, data: Any, ctx: FrozenContext) -> Any:
        """Transform ``data``; read settings from and record metrics on ``ctx``."""

    async def __acall__(self, data: Any, ctx: FrozenContext) -> Any:
        """Call the step and await its result if it is awaitable (``async def`` steps)."""
        result = self(data, ctx)
        if hasattr(result, "__await__"):
            result = await result
        return result

    def setup(self, ctx: FrozenContext) -> None:  # noqa: B027 - optional, overridden when needed
        """Called once per run, in the main process, before the first replicate.

        ``ctx`` holds the experiment's ``initial_ctx``. Override to load what
        every replicate shares; pair it with :meth:`teardown`.
        """

    def teardown(self, ctx: FrozenContext) -> None:  # noqa: B027 - optional, overridden when needed
        """Called once per run, after the last replicate — also when the run failed or setup raised."""

    @property
    def params(self) -> dict[str, Any]:
        """The values that define this step (used for the experiment id)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    @property
    def step_name(self) -> str:
        """The folder name of this step's artifacts."""
        return type(self).__name__

    @property
    def step_hash(self) -> str:
        """A hash of the step's code and parameters: what its cached results are keyed by."""
        from crystallize._cache import step_hash

        return step_hash(self)

    def __repr__(self) -> str:
        return f"<step {self.step_name}>"


class FunctionStep(PipelineStep):
    """A step made by :func:`pipeline_step` from a plain function."""

    __slots__ = (
        "cacheable",
        "defaults",
        "direct",
        "explicit",
        "factory",
        "fn",
        "injected",
        "is_async",
        "takes_ctx",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        explicit: dict[str, Any],
        defaults: dict[str, Any],
        injected: tuple[tuple[str, Any], ...],
        factory: Callable[..., FunctionStep] | None = None,
        *,
        takes_ctx: bool = True,
        cacheable: bool = False,
    ) -> None:
        self.fn = fn
        # The decorated name refers to the factory, not to ``fn``, so pickle
        # rebuilds the step through the factory (found by module and name).
        self.factory = factory
        self.explicit = explicit
        self.defaults = defaults
        # (name, default or _MISSING) for parameters read from the context.
        self.injected = injected
        self.takes_ctx = takes_ctx
        self.cacheable = cacheable
        self.is_async = _is_coroutine_function(fn)
        # A C-level callable taking (data, ctx) when nothing needs injecting:
        # the runner calls it directly, saving a Python frame per step.
        self.direct: Callable[[Any, Any], Any] | None = None
        if not injected and takes_ctx:
            self.direct = functools.partial(fn, **explicit) if explicit else fn

    def __call__(self, data: Any, ctx: FrozenContext) -> Any:
        if self.direct is not None:
            return self.direct(data, ctx)
        kwargs = inject(ctx, self.explicit, self.injected, f"step {self.step_name!r}")
        if self.takes_ctx:
            return self.fn(data, ctx, **kwargs)
        return self.fn(data, **kwargs)

    @property
    def params(self) -> dict[str, Any]:
        return {**self.defaults, **self.explicit}

    @property
    def step_name(self) -> str:
        return self.fn.__name__

    def __reduce__(self) -> tuple[Any, ...]:
        if self.factory is not None:
            return (_rebuild, (self.factory, self.explicit))
        return (
            _rebuild_plain,
            (self.fn, self.explicit, self.defaults, self.injected, self.takes_ctx, self.cacheable),
        )

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
        if type(value) is ResourceFactory:
            value = value(ctx)
        kwargs[name] = value
    return kwargs


def check_required(factory_name: str, parameters: list[Any], explicit: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` when a parameter without a default was not passed to a factory.

    Caught when the step or datasource is made, not in every replicate: a
    treatment reaches a parameter that has a default (and was not passed).
    """
    missing = [p.name for p in parameters if p.default is p.empty and p.name not in explicit]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        example = ", ".join(f"{n}=..." for n in missing)
        raise TypeError(
            f"{factory_name}() is missing parameter(s) {names}, which have no default: pass them "
            f"({factory_name}({example})), or give them a default, which a treatment's key of that name overrides"
        )


def _rebuild(factory: Callable[..., FunctionStep], explicit: dict[str, Any]) -> FunctionStep:
    return factory(**explicit)


def _rebuild_plain(
    fn: Callable[..., Any],
    explicit: dict[str, Any],
    defaults: dict[str, Any],
    injected: tuple[tuple[str, Any], ...],
    takes_ctx: bool,
    cacheable: bool,
) -> FunctionStep:
    return FunctionStep(fn, explicit, defaults, injected, takes_ctx=takes_ctx, cacheable=cacheable)


def _is_coroutine_function(fn: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)


def _takes_ctx(params: list[Any]) -> bool:
    """Whether the parameter after ``data`` is the context.

    It is when it is named ``ctx``, or is positional without a default
    (``def step(data, context, ...)``). ``def step(data, *, factor=2)`` and
    ``def step(data, factor=2)`` take no context.
    """
    if len(params) < 2:
        return False
    second = params[1]
    if second.name == "ctx":
        return True
    positional = second.kind in (second.POSITIONAL_ONLY, second.POSITIONAL_OR_KEYWORD)
    return positional and second.default is second.empty


def _make_factory(fn: Callable[..., Any], cacheable: bool = False) -> Callable[..., FunctionStep]:
    import inspect

    if not callable(fn) or isinstance(fn, bool):
        raise TypeError(f"@pipeline_step() decorates a function, got {fn!r}")
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise TypeError(
            f"@pipeline_step(): {fn.__qualname__}{sig} must take data as its first positional "
            "parameter (then ctx, then its own parameters)"
        )
    takes_ctx = _takes_ctx(params)
    if takes_ctx and params[1].kind not in (params[1].POSITIONAL_ONLY, params[1].POSITIONAL_OR_KEYWORD):
        raise TypeError(f"@pipeline_step(): {fn.__qualname__}{sig}: ctx must be the second positional parameter")
    skip = 2 if takes_ctx else 1
    own = [p for p in params[skip:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    own_sig = sig.replace(parameters=own)
    defaults = {p.name: p.default for p in own if p.default is not p.empty}

    @functools.wraps(fn)
    def factory(*args: Any, **kwargs: Any) -> FunctionStep:
        try:
            bound = own_sig.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{fn.__name__}(...): {exc}") from None
        explicit = dict(bound.arguments)
        check_required(fn.__name__, own, explicit)
        injected = tuple((p.name, defaults.get(p.name, _MISSING)) for p in own if p.name not in explicit)
        return FunctionStep(fn, explicit, defaults, injected, factory, takes_ctx=takes_ctx, cacheable=cacheable)

    factory.__crystallize_factory__ = "step"  # type: ignore[attr-defined]
    return factory


def pipeline_step(fn: Callable[..., Any] | None = None, /, *, cacheable: bool = False) -> Any:
    """Turn ``fn(data, ctx, **params)`` into a step factory.

    Use as ``@pipeline_step()`` (or bare ``@pipeline_step``). Calling the
    decorated function with parameters returns a :class:`PipelineStep`::

        @pipeline_step()
        def add(data, ctx, amount=1):
            return data + amount

        Pipeline([add(amount=5)])

    ``fn`` may be ``async def``, and may leave out ``ctx``.

    :param cacheable: reuse results stored on disk for the same code,
        parameters and input (see ``crystallize._cache``).
    """
    if not isinstance(cacheable, bool):
        raise TypeError(f"@pipeline_step(cacheable=...) takes True or False, got {cacheable!r}")
    if fn is None:
        return functools.partial(_make_factory, cacheable=cacheable)
    return _make_factory(fn, cacheable)


def is_async_step(step: Any) -> bool:
    """Whether calling ``step(data, ctx)`` returns something to await (``async def`` steps)."""
    if isinstance(step, FunctionStep):
        return step.is_async
    return _is_coroutine_function(type(step).__call__)


def step_call(
    step: PipelineStep, index: int = 0, on_lookup: Callable[[int, bool], None] | None = None
) -> Callable[[Any, Any], Any]:
    """The cheapest ``call(data, ctx)`` that runs ``step`` as a replicate must.

    A plain step is called as it is (a function step without injected
    parameters, as its bare function); an ``async def`` step is awaited; a
    cacheable step goes through the step cache (``on_lookup(index, hit)``
    hears of each lookup).
    """
    call: Callable[[Any, Any], Any] = step
    if is_async_step(step):
        from crystallize._async import sync_step  # asyncio is imported only for async steps

        call = sync_step(step)
    elif isinstance(step, FunctionStep) and step.direct is not None:
        call = step.direct
    if getattr(step, "cacheable", False):
        from crystallize._cache import CachedStep

        call = CachedStep(step, call, index, on_lookup)
    return call


class Pipeline:
    """Steps run in order for every replicate; each gets the previous one's output.

    Outside an experiment, :meth:`run` (or ``await`` :meth:`arun`) runs the
    steps once on given data and records what each did
    (:meth:`get_provenance`).

    :param steps: :class:`PipelineStep` instances (call a ``@pipeline_step``
        factory to get one).
    """

    def __init__(self, steps: Iterable[PipelineStep]) -> None:
        self.steps: list[PipelineStep] = list(steps)
        self._provenance: list[dict[str, Any]] = []
        for i, step in enumerate(self.steps):
            if isinstance(step, PipelineStep):
                continue
            hint = ""
            if getattr(step, "__crystallize_factory__", None) == "step":
                hint = f" (did you mean {step.__name__}()? @pipeline_step functions are factories)"
            elif isinstance(step, type) and issubclass(step, PipelineStep):
                hint = f" (did you mean {step.__name__}(...)? pass an instance, not the class)"
            raise TypeError(f"Pipeline step {i} is {step!r}, not a PipelineStep{hint}")

    def signature(self) -> str:
        """Every step's canonical description — name, parameters by value, code fingerprint — as JSON text.

        A string, as crystallize-ml's was (it joined the steps' reprs,
        memory addresses included); this one is the same in every process.
        ``json.loads`` gives the list of descriptions: the steps part of
        :meth:`Experiment.signature <crystallize.Experiment.signature>`.
        """
        import json

        from crystallize._identity import describe

        return json.dumps([describe(step) for step in self.steps], separators=(",", ":"))

    def run(
        self,
        data: Any,
        ctx: FrozenContext | None = None,
        *,
        verbose: bool = False,
        logger: Any = None,
        return_provenance: bool = False,
    ) -> Any:
        """Run every step once on ``data``, outside an experiment, and return the output.

        ``async def`` steps are awaited; cacheable steps use the step cache.

        :param ctx: the context the steps see (an empty one when ``None``).
        :param verbose: also record, per step, the context keys it read (and
            log them at DEBUG level).
        :param logger: where ``verbose`` logs; the ``crystallize`` logger by default.
        :param return_provenance: return ``(output, provenance)``.
        :raises PipelineExecutionError: naming the step that raised (its
            exception is the cause). Step cache errors are raised as they are.
        """
        from crystallize._standalone import run_pipeline

        return run_pipeline(self, data, ctx, verbose=verbose, logger=logger, return_provenance=return_provenance)

    async def arun(
        self,
        data: Any,
        ctx: FrozenContext | None = None,
        *,
        verbose: bool = False,
        logger: Any = None,
        return_provenance: bool = False,
    ) -> Any:
        """:meth:`run` from async code: ``await pipeline.arun(data, ctx)``.

        The steps run in a worker thread; ``async def`` steps run on the
        caller's event loop, so they can use clients bound to it.
        """
        from crystallize._standalone import arun_pipeline

        return await arun_pipeline(self, data, ctx, verbose=verbose, logger=logger, return_provenance=return_provenance)

    def get_provenance(self) -> list[dict[str, Any]]:
        """What each step did in the latest execution in this process.

        One record per step: ``step`` (name), ``params``, ``step_hash``,
        ``cache_hit`` and, after :meth:`run`, ``ctx_changes`` (``reads``,
        ``wrote``, ``metrics``). An experiment run updates ``cache_hit`` for
        cacheable steps as its replicates run in this process.
        """
        return [dict(record) for record in self._provenance]

    def cache_recorder(self) -> Callable[[int, bool], None] | None:
        """A fresh provenance record for an experiment run, and the callback cache lookups report to.

        ``None`` (and nothing recorded) when no step is cacheable.
        """
        if not any(getattr(step, "cacheable", False) for step in self.steps):
            return None
        records = [{"step": step.step_name, "params": step.params, "cache_hit": False} for step in self.steps]
        for record, step in zip(records, self.steps):
            if getattr(step, "cacheable", False):
                record["step_hash"] = step.step_hash
        self._provenance = records

        def record(index: int, hit: bool) -> None:
            records[index]["cache_hit"] = hit

        return record

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_provenance"] = []  # what ran here stays here
        return state

    def __iter__(self) -> Iterator[PipelineStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"
