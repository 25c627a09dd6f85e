"""Helpers for trying things before writing an experiment: :func:`standalone_context`, :func:`quick_experiment`."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from crystallize._context import CONDITION_KEY, REPLICATE_KEY, SEED_KEY, FrozenContext

__all__ = ["standalone_context", "quick_experiment"]


def standalone_context(
    initial: Mapping[str, Any] | None = None, *, logger: logging.Logger | None = None
) -> FrozenContext:
    """A context for calling steps by hand (in a notebook or a test): ``step(data, standalone_context({...}))``."""
    return FrozenContext(initial or {}, logger=logger)


def quick_experiment(
    fn: Callable[..., Any],
    configs: Mapping[str, Any] | None = None,
    replicates: int = 1,
    *,
    seed: int | None = None,
    verbose: bool = False,
) -> dict[str, list[Any]]:
    """Call ``fn`` ``replicates`` times per config and collect what it returns.

    The on-ramp: when you need treatments as data, hypotheses, artifacts,
    resume or parallel execution, write an :class:`~crystallize.Experiment`.
    Exceptions propagate.

    :param fn: ``fn(config)``, ``fn(config, ctx)``, ``fn(ctx)`` or ``fn()``.
    :param configs: ``{name: config}``; ``None`` runs one config named ``"baseline"`` and
        calls ``fn`` without one.
    :param seed: seed :mod:`random` (and NumPy, when installed) before each call; replicate
        ``i`` gets the same seed in every config, so configs are compared on the same draws.
    :param verbose: print each call and ``Done!``.
    :returns: ``{name: [what fn returned, per replicate]}``.
    """
    from crystallize._apply import _seed_with
    from crystallize._seeding import derive_seed

    if not callable(fn):
        raise TypeError(f"quick_experiment(fn=...) takes a callable, got {fn!r}")
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise ValueError(f"quick_experiment: replicates must be a positive int, got {replicates!r}")
    params = list(inspect.signature(fn).parameters)
    accepts_ctx = "ctx" in params or len(params) >= 2
    chosen: Mapping[str, Any] = {"baseline": None} if configs is None else configs
    results: dict[str, list[Any]] = {}
    for name, config in chosen.items():
        outputs = results[name] = []
        for replicate in range(replicates):
            values = {REPLICATE_KEY: replicate, CONDITION_KEY: name}
            if seed is not None:
                used = derive_seed(seed, "baseline", replicate)
                _seed_with(None, used)
                values[SEED_KEY] = used
            if verbose:
                print(f"Running {name} replicate {replicate + 1}/{replicates}...")
            ctx = FrozenContext._adopt(values)
            args = ([] if config is None else [config]) + ([ctx] if accepts_ctx else [])
            outputs.append(fn(*args))
    if verbose:
        print("Done!")
    return results
