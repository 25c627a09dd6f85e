"""crystallize-ml 0.27's engine method, ``run_experiment_loop``, on the built-in engines.

In 0.27 an execution plugin ran a run's replicates with
``run_experiment_loop(experiment, replicate_fn)``: ``replicate_fn(rep)`` for
every ``rep in range(experiment.replicates)``. Runs here go through the
``execute_replicates`` hook instead, but 0.27 code also drives an engine
itself — most often a :class:`~crystallize.BasePlugin` whose own
``run_experiment_loop`` hands the ``replicate_fn`` it received to
``ParallelExecution(...).run_experiment_loop``. These functions give the
built-in engines that method, with 0.27's meaning: serial and async loops
are coroutines, the parallel one returns the list. They draw no progress
bars (``progress=`` applies to runs).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["count_of", "run_serially", "run_concurrently", "run_in_pool"]


def count_of(experiment: Any) -> int:
    """``experiment.replicates``, checked: the number of times to call ``replicate_fn``."""
    count = getattr(experiment, "replicates", None)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"run_experiment_loop needs experiment.replicates to be a positive int, got {count!r}")
    return count


async def run_serially(experiment: Any, replicate_fn: Callable[[int], Any]) -> list[Any]:
    """``replicate_fn(rep)`` for each replicate in order, awaiting what it returns when awaitable."""
    results = []
    for rep in range(count_of(experiment)):
        value = replicate_fn(rep)
        results.append(await value if inspect.isawaitable(value) else value)
    return results


async def run_concurrently(experiment: Any, replicate_fn: Callable[[int], Any], limit: int) -> list[Any]:
    """``replicate_fn(rep)`` for every replicate, at most ``limit`` in flight, their awaitables gathered."""
    import asyncio

    gate = asyncio.Semaphore(limit)

    async def one(rep: int) -> Any:
        async with gate:
            value = replicate_fn(rep)
            return await value if inspect.isawaitable(value) else value

    return list(await asyncio.gather(*(one(rep) for rep in range(count_of(experiment)))))


def run_in_pool(
    experiment: Any, replicate_fn: Callable[[int], Any], executor_type: str, workers: int, mp_context: str | None
) -> list[Any]:
    """``replicate_fn(rep)`` for every replicate in a thread or process pool; results in replicate order.

    :raises TypeError: for an ``async def`` function (a pool would only
        create its coroutines): ``AsyncExecution`` awaits them.
    :raises ConfigurationError: when a process pool cannot be sent ``replicate_fn``.
    """
    if inspect.iscoroutinefunction(replicate_fn):
        raise TypeError(
            "ParallelExecution.run_experiment_loop calls replicate_fn in a pool, which would only create the "
            "coroutines of an async def function; use AsyncExecution().run_experiment_loop(...), which awaits them"
        )
    count = count_of(experiment)
    size = max(1, min(workers, count))
    if executor_type == "thread":
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="crystallize") as pool:
            return list(pool.map(replicate_fn, range(count)))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from crystallize._execution.worker import _unpicklable
    from crystallize._portable import portable

    label = getattr(experiment, "key_label", None) or "the experiment"
    problem = _unpicklable(f"the replicate function of {label}", replicate_fn)
    if problem is not None:
        raise problem
    with ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context(mp_context)) as pool:
        return list(pool.map(portable(replicate_fn), range(count)))
