"""Deterministic seeding per replicate: :class:`SeedPlugin`, on by default.

Every experiment gets a ``SeedPlugin`` unless it passes its own (or turns it
off), as in crystallize-ml 0.27. By default a replicate's seed depends only
on the base seed and the replicate index — the *same in every condition* — so
the baseline and each treatment of one replicate draw the same random
numbers (common random numbers): their difference is the treatment's effect,
not noise, and hypotheses compare them as pairs.
"""

from __future__ import annotations

import _random
import hashlib
import logging
import os
import random
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from crystallize._context import CONDITION_KEY, REPLICATE_KEY, SEED_KEY
from crystallize._dispatch import hookimpl

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._records import Run

__all__ = ["SeedPlugin", "derive_seed", "paired_seed", "REPLICATE_STRIDE"]

log = logging.getLogger("crystallize")

#: crystallize-ml 0.27's step between the seeds of consecutive replicates.
REPLICATE_STRIDE = 31337
_MASK = 2**32 - 1

PAIRED = "base + 31337 * replicate (mod 2**32), the same in every condition"
PER_CONDITION = "blake2b(base, condition, replicate), 32 bits"
FIXED = "base, for every replicate and condition (auto_seed=False)"


def paired_seed(base: int, replicate: int) -> int:
    """The seed of ``replicate`` in every condition: crystallize-ml 0.27's ``seed + replicate * 31337``."""
    return (base + replicate * REPLICATE_STRIDE) & _MASK


def derive_seed(base: int, condition: str, replicate: int) -> int:
    """A 32-bit seed that depends on ``base``, ``condition`` and ``replicate`` (``per_condition=True``)."""
    blob = f"{base}\x1f{condition}\x1f{replicate}".encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=4).digest(), "big")


def _seed_random(seed: int) -> None:
    """``random.seed(seed)`` for an int seed, a microsecond cheaper per replicate.

    ``random.Random.seed`` checks its argument's type in Python, then calls the
    C generator's ``seed`` and clears ``gauss_next``; for an int that is all it
    does, so the same two steps are taken directly. When ``random.seed`` is not
    the module's own (a library or a test replaced it), it is called instead.
    """
    bound = random.seed
    if getattr(bound, "__func__", None) is _PYTHON_SEED:
        generator = bound.__self__
        _C_SEED(generator, seed)
        generator.gauss_next = None
    else:
        bound(seed)


_PYTHON_SEED = random.Random.seed
_C_SEED = _random.Random.seed


def _seed_numpy(seed: int) -> None:
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)


class SeedPlugin:
    """Seed random number generators before every replicate.

    Active by default: an experiment that does not pass a ``SeedPlugin`` gets
    ``SeedPlugin()``. Passing one replaces it.

    Before each (condition, replicate) it derives a seed and calls
    ``seed_fn(seed)`` — by default seeding :mod:`random`, and NumPy's global
    generator when NumPy is imported. The seed is exposed as
    ``ctx["seed_used"]`` and depends on nothing but the base seed and the
    replicate (and, with ``per_condition=True``, the condition): never on
    execution order, so a replicate draws the same numbers serially, in a
    worker process, on a Dask cluster or in a resumed run.

    Global generators are shared by every thread of a process. Under
    ``ParallelExecution(executor_type="thread")`` replicates running at the
    same time draw from the same generator, so their draws interleave; for
    reproducible numbers with threads, create a generator per replicate from
    ``ctx["seed_used"]`` (``random.Random(ctx["seed_used"])``,
    ``numpy.random.default_rng(ctx["seed_used"])``); a run with a chosen
    ``seed`` under threads logs a warning saying so. Process pools and
    ``crystallize-dask`` run one replicate per worker process at a time (the
    Dask engine also keeps Dask's own threads off the global generator).

    :param seed: the base seed. When ``None`` a random one is chosen (and
        recorded in the run's facts); a resumed run then adopts the base of
        the run it continues, so its new replicates pair with the old ones.
    :param seed_fn: ``seed_fn(seed)`` seeds your generators instead of the default.
    :param auto_seed: ``True`` (the default) derives a seed per replicate.
        ``False`` with a ``seed``: every replicate gets that very seed
        (crystallize-ml 0.27's meaning: replicates then draw identical
        numbers). ``False`` without a seed: seeding is off — generators are
        left alone and ``ctx`` has no ``seed_used``.
    :param per_condition: ``False`` (the default): the same seed in every
        condition, so comparisons are paired. ``True``: independent streams
        per condition (``blake2b(base, condition, replicate)``), for
        unpaired designs.
    """

    plugin_name = "seed"

    def __init__(
        self,
        seed: int | None = None,
        seed_fn: Callable[[int], Any] | None = None,
        auto_seed: bool = True,
        per_condition: bool = False,
    ) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"SeedPlugin: seed must be an int or None, got {seed!r}")
        if seed_fn is not None and not callable(seed_fn):
            raise TypeError(f"SeedPlugin: seed_fn must be callable, got {seed_fn!r}")
        if not isinstance(auto_seed, bool) or not isinstance(per_condition, bool):
            raise TypeError(
                f"SeedPlugin: auto_seed and per_condition must be True or False, got {auto_seed!r}, {per_condition!r}"
            )
        if per_condition and not auto_seed:
            raise ValueError("SeedPlugin: per_condition=True derives seeds, which auto_seed=False turns off")
        self.chosen = seed is not None
        self.seed = int.from_bytes(os.urandom(4), "big") if seed is None else seed  # what secrets.randbits(32) does
        self.seed_fn = seed_fn
        self.auto_seed = auto_seed
        self.per_condition = per_condition
        #: ``False`` when seeding is off (``auto_seed=False`` without a seed)
        self.enabled = auto_seed or self.chosen

    @property
    def derivation(self) -> str:
        """How a replicate's seed derives from the base, in words (recorded with the run)."""
        return PER_CONDITION if self.per_condition else PAIRED if self.auto_seed else FIXED

    def seed_for(self, condition: str, replicate: int) -> int:
        """The seed of ``replicate`` in ``condition``."""
        if self.per_condition:
            return derive_seed(self.seed, condition, replicate)
        if self.auto_seed:
            return (self.seed + replicate * REPLICATE_STRIDE) & _MASK
        return self.seed

    @hookimpl
    def before_run(self, run: Run) -> None:
        from crystallize._records import SEED_FACT  # not at import: `import crystallize` stays light

        if not self.enabled:
            return
        if not self.chosen and run.completed is not None:
            self._adopt(run.completed.seeds)
        run.facts[SEED_FACT] = {"base": self.seed, "derivation": self.derivation, "chosen": self.chosen}

    def _adopt(self, seeds: Mapping[str, Mapping[int, int | None]]) -> None:
        """Take the base of the run being resumed, when its replicates' seeds reveal it."""
        known = []  # a few are enough to tell the base and check the derivation
        for condition, by_replicate in seeds.items():
            known.extend((condition, r, s) for r, s in list(by_replicate.items())[:4] if s is not None)
            if len(known) >= 16:
                break
        if not known or self.per_condition:
            if known:
                log.info("seeds of resumed replicates cannot reveal a per-condition base; new replicates use %s", self)
            return
        _, replicate, seed = known[0]
        base = (seed - replicate * REPLICATE_STRIDE) & _MASK if self.auto_seed else seed
        previous, self.seed = self.seed, base
        if all(self.seed_for(c, r) == s for c, r, s in known):
            log.debug("resumed run seeded from base %d: new replicates draw as they would have", base)
        else:
            self.seed = previous

    @hookimpl
    def before_replicate(self, ctx: FrozenContext) -> None:
        if not self.enabled:
            return
        data = ctx._data
        if self.per_condition:
            seed = derive_seed(self.seed, data[CONDITION_KEY], data[REPLICATE_KEY])
        elif self.auto_seed:
            seed = (self.seed + data[REPLICATE_KEY] * REPLICATE_STRIDE) & _MASK
        else:
            seed = self.seed
        ctx[SEED_KEY] = seed
        if self.seed_fn is not None:
            self.seed_fn(seed)
            return
        _seed_random(seed)
        _seed_numpy(seed)

    def __repr__(self) -> str:
        if not self.enabled:
            return "SeedPlugin(auto_seed=False)"
        options = "" if self.auto_seed else ", auto_seed=False"
        options += ", per_condition=True" if self.per_condition else ""
        return f"SeedPlugin(seed={self.seed!r}{options})"
