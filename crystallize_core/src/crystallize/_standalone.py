"""Running a pipeline once, outside an experiment: :meth:`Pipeline.run <crystallize.Pipeline.run>`.

For trying steps in a notebook or a test: the steps run in order on the data
given, ``async def`` steps are awaited, cacheable steps use the step cache,
and a provenance record per step says what it did — whether the cache
answered, which context keys it added, which metrics it recorded and (with
``verbose=True``) which keys it read, through a :class:`LoggingContext`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from crystallize._context import FrozenContext
from crystallize.errors import CacheError, PipelineExecutionError

if TYPE_CHECKING:
    from crystallize._steps import Pipeline

__all__ = ["LoggingContext", "run_pipeline", "arun_pipeline"]

_MISSING = object()


class LoggingContext(FrozenContext):
    """A view of another context that records every key read (and logs it at DEBUG level).

    Reads go to the wrapped context and are kept in :attr:`reads`; writes
    go to the wrapped context too (so its rule — new keys only — holds), and
    ``metrics`` and ``artifacts`` are the wrapped context's own objects.
    """

    __slots__ = ("_inner", "reads")

    def __init__(self, ctx: FrozenContext, logger: logging.Logger | None = None) -> None:
        self._inner = ctx
        self._data = ctx._data
        self.metrics = ctx.metrics
        self._artifacts = ctx.artifacts
        self._logger = logger or ctx.logger
        self.reads: dict[str, Any] = {}

    def _read(self, key: str, value: Any) -> Any:
        self.reads[key] = value
        self._logger.debug("Read %s -> %r", key, value)
        return value

    def __getitem__(self, key: str) -> Any:
        return self._read(key, self._inner[key])

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return default
        return self._read(key, value)

    def __setitem__(self, key: str, value: Any) -> None:
        self._inner[key] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner)

    def __repr__(self) -> str:
        return f"LoggingContext({self._inner!r})"


def _changes(
    ctx: FrozenContext, keys_before: set[str], metrics_before: Mapping[str, int], reads: Mapping[str, Any]
) -> dict[str, Any]:
    wrote = {k: {"before": None, "after": v} for k, v in ctx._data.items() if k not in keys_before}
    metrics = {}
    for name, values in ctx.metrics._values.items():
        count = metrics_before.get(name, 0)
        if len(values) != count:
            metrics[name] = {"before": tuple(values[:count]), "after": tuple(values)}
    return {"reads": dict(reads), "wrote": wrote, "metrics": metrics}


def run_pipeline(
    pipeline: Pipeline,
    data: Any,
    ctx: FrozenContext | None = None,
    *,
    verbose: bool = False,
    logger: logging.Logger | None = None,
    return_provenance: bool = False,
) -> Any:
    """See :meth:`Pipeline.run <crystallize.Pipeline.run>`."""
    from crystallize._steps import step_call

    if ctx is None:
        ctx = FrozenContext()
    elif not isinstance(ctx, FrozenContext):
        raise TypeError(f"Pipeline.run(data, ctx): ctx must be a FrozenContext, got {type(ctx).__name__}")
    logger = logger or logging.getLogger("crystallize")
    provenance: list[dict[str, Any]] = []
    hits: dict[int, bool] = {}
    for index, step in enumerate(pipeline.steps):
        record = {"step": step.step_name, "params": step.params, "step_hash": step.step_hash, "cache_hit": False}
        target = LoggingContext(ctx, logger) if verbose else ctx
        keys_before = set(ctx._data)
        metrics_before = {name: len(values) for name, values in ctx.metrics._values.items()}
        call = step_call(step, index, hits.__setitem__)
        try:
            data = call(data, target)
        except CacheError:
            raise
        except Exception as exc:
            raise PipelineExecutionError(step.step_name, exc) from exc
        record["cache_hit"] = hits.get(index, False)
        record["ctx_changes"] = _changes(ctx, keys_before, metrics_before, getattr(target, "reads", {}))
        provenance.append(record)
    pipeline._provenance = provenance
    cached = [r for r in provenance if r["cache_hit"]]
    if cached:
        logger.info("step cache answered %d of %d steps", len(cached), len(provenance))
    if return_provenance:
        return data, [dict(r) for r in provenance]
    return data


async def arun_pipeline(
    pipeline: Pipeline,
    data: Any,
    ctx: FrozenContext | None = None,
    **options: Any,
) -> Any:
    """:func:`run_pipeline` from async code; async steps run on the caller's loop."""
    from crystallize._async import target_loop

    loop = asyncio.get_running_loop()

    def run() -> Any:
        with target_loop(loop):
            return run_pipeline(pipeline, data, ctx, **options)

    return await asyncio.to_thread(run)
