"""Data sources: what feeds the first step of every replicate.

Subclass :class:`DataSource` or decorate a function with :func:`data_source`::

    @data_source
    def numbers(ctx, n=10):
        return list(range(n))

    Experiment(datasource=numbers(n=5), pipeline=...)

Parameters not passed to the factory are read from the context by name, so
``Treatment("big", {"n": 100})`` reaches ``numbers()`` (not ``numbers(n=5)``:
a value passed explicitly wins).

A datasource can also constrain the run: artifact datasources (see
:meth:`Experiment.artifact_datasource <crystallize.Experiment.artifact_datasource>`)
dictate the replicate count and report the experiments they read from as
``upstream``.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crystallize._names import check_name

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._records import Run, Upstream

__all__ = [
    "DataSource",
    "FunctionDataSource",
    "CallableDataSource",
    "ExperimentInput",
    "FixedCondition",
    "data_source",
]


class DataSource(ABC):
    """Provides the input data of each replicate.

    Subclasses implement :meth:`fetch`. The optional members let a
    datasource take part in chaining:

    - :attr:`params` — values that define it (part of the experiment id).
    - :attr:`replicates` — a replicate count the run must use, or ``None``.
    - :attr:`upstream` — the other experiments' outputs it reads.
    - :meth:`resolve` — called once at the start of each run; returns the
      datasource to use for that run (for example with the producer's
      latest version pinned).
    - :meth:`prepare` — called on that datasource, in the main process, once
      the run's conditions are known and before any replicate runs.
    """

    @abstractmethod
    def fetch(self, ctx: FrozenContext) -> Any:
        """Return the data for the replicate described by ``ctx``."""

    @property
    def params(self) -> dict[str, Any]:
        """The values that define this datasource (used for the experiment id)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    @property
    def replicates(self) -> int | None:
        """The replicate count this datasource requires, or ``None``."""
        return None

    @property
    def upstream(self) -> tuple[Upstream, ...]:
        """Outputs of other experiments this datasource reads."""
        return ()

    def resolve(self) -> DataSource:
        """The datasource to use for one run (default: ``self``)."""
        return self

    def prepare(self, run: Run) -> None:
        """Called in the main process before the run's first replicate (default: nothing).

        Decide and report here what depends on the whole run — warnings go to
        the user once, instead of once per worker process.
        """
        return None  # nothing to prepare by default (an intentional no-op, not a stub)


class FunctionDataSource(DataSource):
    """A datasource made by :func:`data_source` from ``fn(ctx, **params)``.

    Parameters passed to the factory are fixed; the others are looked up in
    the context by name — so a treatment's keys reach them, as they reach a
    ``@pipeline_step`` — and fall back to the function's defaults.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        params: dict[str, Any],
        factory: Callable[..., Any] | None = None,
        defaults: dict[str, Any] | None = None,
        injected: tuple[tuple[str, Any], ...] = (),
    ) -> None:
        self.fn = fn
        self._params = params  # passed explicitly
        self._defaults = defaults or {}
        self._injected = injected  # (name, default or missing) looked up in the context
        self._factory = factory  # pickling goes through the decorated (module-level) name

    def __reduce__(self) -> tuple[Any, ...]:
        if self._factory is not None:
            return (_rebuild, (self._factory, self._params))
        return (FunctionDataSource, (self.fn, self._params, None, self._defaults, self._injected))

    def fetch(self, ctx: FrozenContext) -> Any:
        if not self._injected:
            return self.fn(ctx, **self._params)
        from crystallize._steps import inject

        return self.fn(ctx, **inject(ctx, self._params, self._injected, f"datasource {self.fn.__name__!r}"))

    @property
    def params(self) -> dict[str, Any]:
        return {**self._defaults, **self._params}

    @property
    def explicit(self) -> dict[str, Any]:
        """The parameters passed to the factory (a treatment cannot change these)."""
        return dict(self._params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{self.fn.__name__}({args})"


class CallableDataSource(DataSource):
    """Wraps a plain ``callable(ctx)`` passed as ``Experiment(datasource=...)``."""

    def __init__(self, fn: Callable[[FrozenContext], Any]) -> None:
        self.fn = fn

    def fetch(self, ctx: FrozenContext) -> Any:
        return self.fn(ctx)

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"CallableDataSource({self.fn!r})"


class ExperimentInput(DataSource):
    """Several named datasources at once; ``fetch`` returns ``{name: data}``.

    Combine artifacts of several upstream experiments (or an artifact and a
    plain source). Their replicate counts, where set, must agree.
    """

    def __init__(self, **inputs: DataSource) -> None:
        if not inputs:
            raise ValueError("ExperimentInput needs at least one named datasource")
        for name, source in inputs.items():
            check_name(name, "input")
            if not isinstance(source, DataSource):
                raise TypeError(f"ExperimentInput input {name!r} is {source!r}, not a DataSource")
        self.inputs = dict(inputs)
        # Counts known without reading storage (set on an Artifact by hand) are checked now.
        _check_counts({n: s._replicates for n, s in inputs.items() if getattr(s, "_replicates", None) is not None})

    def fetch(self, ctx: FrozenContext) -> dict[str, Any]:
        return {name: source.fetch(ctx) for name, source in self.inputs.items()}

    @property
    def replicates(self) -> int | None:
        counts = {name: s.replicates for name, s in self.inputs.items() if s.replicates is not None}
        _check_counts(counts)
        return next(iter(counts.values()), None)

    @property
    def upstream(self) -> tuple[Upstream, ...]:
        return tuple(u for s in self.inputs.values() for u in s.upstream)

    def prepare(self, run: Run) -> None:
        for source in self.inputs.values():
            source.prepare(run)

    def resolve(self) -> ExperimentInput:
        resolved = ExperimentInput.__new__(ExperimentInput)
        resolved.inputs = {name: s.resolve() for name, s in self.inputs.items()}
        return resolved


class FixedCondition(DataSource):
    """Another datasource read as if every replicate were of one ``condition``.

    What ``artifact_datasource(..., condition="baseline")`` returns: each
    consumer condition reads the producer's files of that one condition.
    """

    def __init__(self, source: DataSource, condition: str) -> None:
        self.source = source
        self.condition = condition

    @property
    def params(self) -> dict[str, Any]:
        return {"source": self.source.params, "condition": self.condition}

    @property
    def replicates(self) -> int | None:
        return self.source.replicates

    @property
    def upstream(self) -> tuple[Upstream, ...]:
        return self.source.upstream

    def resolve(self) -> FixedCondition:
        return FixedCondition(self.source.resolve(), self.condition)

    def prepare(self, run: Run) -> None:
        self.source.prepare(run)

    def fetch(self, ctx: FrozenContext) -> Any:
        from crystallize._context import CONDITION_KEY, FrozenContext

        values = dict(ctx._data)  # type: ignore[attr-defined]
        values[CONDITION_KEY] = self.condition
        return self.source.fetch(FrozenContext._adopt(values))

    def __repr__(self) -> str:
        return f"FixedCondition({self.source!r}, {self.condition!r})"


def _check_counts(counts: dict[str, int]) -> None:
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{n}={c}" for n, c in sorted(counts.items()))
        raise ValueError(f"ExperimentInput: Conflicting replicates across inputs ({detail}); they must agree")


def _rebuild(factory: Callable[..., DataSource], params: dict[str, Any]) -> DataSource:
    return factory(**params)


def _make_source_factory(fn: Callable[..., Any]) -> Callable[..., FunctionDataSource]:
    import inspect

    from crystallize._steps import _MISSING, check_required

    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if not params:
        raise TypeError(f"@data_source: {fn.__qualname__}{sig} must take ctx as its first parameter")
    own = params[1:]
    own_sig = sig.replace(parameters=own)
    named = [p for p in own if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    defaults = {p.name: p.default for p in named if p.default is not p.empty}

    @functools.wraps(fn)
    def factory(*args: Any, **kwargs: Any) -> FunctionDataSource:
        try:
            bound = own_sig.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{fn.__name__}(...): {exc}") from None
        explicit = dict(bound.arguments)
        check_required(fn.__name__, named, explicit)
        injected = tuple((p.name, defaults.get(p.name, _MISSING)) for p in named if p.name not in explicit)
        return FunctionDataSource(fn, explicit, factory, defaults, injected)

    factory.__crystallize_factory__ = "datasource"  # type: ignore[attr-defined]
    return factory


def data_source(fn_or_name: Callable[..., Any] | str | None = None, /, *, register: bool = False) -> Any:
    """Turn ``fn(ctx, **params)`` into a datasource factory.

    Use as ``@data_source`` or ``@data_source()``; call the result to get a
    :class:`DataSource`: ``numbers(n=5)``. ``@data_source(register=True)``
    also registers the factory under the function's name, and
    ``@data_source("name", register=True)`` under ``"name"`` (see
    :func:`~crystallize.get_datasource`).
    """
    name = fn_or_name if isinstance(fn_or_name, str) else None

    def decorate(fn: Callable[..., Any]) -> Callable[..., FunctionDataSource]:
        factory = _make_source_factory(fn)
        if register:
            from crystallize._source_registry import register_datasource

            register_datasource(name or fn.__name__, factory)
        return factory

    if fn_or_name is None or isinstance(fn_or_name, str):
        return decorate
    return decorate(fn_or_name)
