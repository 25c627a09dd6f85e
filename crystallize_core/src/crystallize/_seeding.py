"""Deterministic seeding per (condition, replicate): :class:`SeedPlugin`."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crystallize._context import CONDITION_KEY, REPLICATE_KEY, SEED_KEY
from crystallize._dispatch import hookimpl

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._records import Run

__all__ = ["SeedPlugin", "derive_seed"]

_NUMPY: Any = None
_NUMPY_CHECKED = False


def derive_seed(base: int, condition: str, replicate: int) -> int:
    """A 32-bit seed that depends only on ``base``, ``condition`` and ``replicate``."""
    blob = f"{base}\x1f{condition}\x1f{replicate}".encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=4).digest(), "big")


def _numpy() -> Any:
    global _NUMPY, _NUMPY_CHECKED
    if not _NUMPY_CHECKED:
        _NUMPY_CHECKED = True
        if importlib.util.find_spec("numpy") is not None:
            import numpy

            _NUMPY = numpy
    return _NUMPY


class SeedPlugin:
    """Seed random number generators before every replicate.

    Before each (condition, replicate), derives a seed from the base ``seed``,
    the condition's name and the replicate index only — never from execution
    order — so a replicate draws the same numbers whether it runs serially, in
    a worker process, on a cluster, or in a resumed run. The seed is exposed
    as ``ctx["seed_used"]``.

    :param seed: the base seed; a random one (recorded in the run's facts)
        when ``None``. Pass one to make resumed runs reproducible.
    :param seed_fn: ``seed_fn(seed)`` seeds your generators; by default
        :mod:`random` is seeded, and NumPy's global generator when NumPy is
        installed.

    Global generators are shared by every thread of a process. Under
    ``ParallelExecution(executor_type="thread")`` replicates running at the
    same time draw from the same generator, so their draws interleave; for
    reproducible numbers with threads, create a generator per replicate from
    ``ctx["seed_used"]`` (``random.Random(ctx["seed_used"])``,
    ``numpy.random.default_rng(ctx["seed_used"])``). Process pools and
    ``crystallize-dask`` run one replicate per worker process at a time (the
    Dask engine also keeps Dask's own threads off the global generator).
    """

    plugin_name = "seed"

    def __init__(self, seed: int | None = None, seed_fn: Callable[[int], Any] | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"SeedPlugin: seed must be an int or None, got {seed!r}")
        if seed_fn is not None and not callable(seed_fn):
            raise TypeError(f"SeedPlugin: seed_fn must be callable, got {seed_fn!r}")
        self.seed = secrets.randbits(32) if seed is None else seed
        self.seed_fn = seed_fn

    @hookimpl
    def before_run(self, run: Run) -> None:
        from crystallize._records import SEED_FACT  # not at import: `import crystallize` stays light

        run.facts[SEED_FACT] = {"base": self.seed, "derivation": "blake2b(base, condition, replicate), 32 bits"}

    @hookimpl
    def before_replicate(self, ctx: FrozenContext) -> None:
        seed = derive_seed(self.seed, ctx[CONDITION_KEY], ctx[REPLICATE_KEY])
        ctx[SEED_KEY] = seed
        if self.seed_fn is not None:
            self.seed_fn(seed)
            return
        random.seed(seed)
        numpy = _numpy()
        if numpy is not None:
            numpy.random.seed(seed)

    def __repr__(self) -> str:
        return f"SeedPlugin(seed={self.seed!r})"
