"""The function every Dask task runs: :func:`run_replicate`.

It is :func:`crystallize.plugin.run_unit` plus one precaution.
A Dask worker process runs tasks in one thread while its event loop runs in
another, and Dask itself draws from the global :mod:`random` generator there
(``dask.sizeof`` samples long lists with ``random.sample``; the comm layer
picks peers and back-off delays with ``random``). A replicate seeded by
:class:`~crystallize.SeedPlugin` through that same global generator would
then draw different numbers depending on what the worker happened to be
doing. :func:`isolate_dask_random` points Dask's modules at a private
generator of their own, so the global one belongs to the replicate alone.

:class:`~crystallize_dask.DaskExecution` ships this module's functions *by
value* (``cloudpickle.register_pickle_by_value``), so workers need
crystallize-core but not crystallize-dask. Keep this module self-contained.
"""

from __future__ import annotations

import random
import sys
import types

__all__ = ["run_replicate", "isolate_dask_random", "DASK_MODULE_PREFIXES"]

#: Packages whose code runs in a Dask worker's other threads.
DASK_MODULE_PREFIXES = ("dask", "distributed", "tornado", "zict")

#: The per-process private stand-in for :mod:`random`, registered in
#: ``sys.modules`` under this name so that it survives task boundaries.
_PROXY_NAME = "_crystallize_dask_private_random"


def _private_random() -> types.ModuleType:
    """A copy of :mod:`random` whose functions draw from a private generator (one per process)."""
    proxy = sys.modules.get(_PROXY_NAME)
    if proxy is None:
        shared = random.random.__self__  # the generator behind random.random(), random.seed(), ...
        private = random.Random()
        proxy = types.ModuleType("random", "random, drawing from a generator private to Dask's own code")
        for name, value in vars(random).items():
            if name in ("__name__", "__doc__"):
                continue
            if getattr(value, "__self__", None) is shared:
                value = getattr(private, value.__name__)
            setattr(proxy, name, value)
        proxy._inst = private  # type: ignore[attr-defined]
        proxy._crystallize_scanned = 0  # type: ignore[attr-defined]
        sys.modules[_PROXY_NAME] = proxy
    return proxy


def isolate_dask_random() -> int:
    """Make Dask's modules draw from a private generator instead of the global one.

    Replaces, in every loaded module of :data:`DASK_MODULE_PREFIXES`, a
    global name bound to the :mod:`random` module by a stand-in module, and
    a name bound to one of its functions (``from random import randint``) by
    the stand-in's function. Cheap to call before every task: it rescans only
    when modules were imported since the last call. Returns the number of
    names replaced by this call.
    """
    proxy = _private_random()
    loaded = len(sys.modules)
    if proxy._crystallize_scanned == loaded:  # type: ignore[attr-defined]
        return 0
    shared = random.random.__self__
    replaced = 0
    for name, module in list(sys.modules.items()):
        if module is None or name == _PROXY_NAME or not name.startswith(DASK_MODULE_PREFIXES):
            continue
        if name.split(".", 1)[0] not in DASK_MODULE_PREFIXES:  # e.g. "dask_ml" is not "dask"
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if value is random:
                namespace[attr] = proxy
                replaced += 1
            elif getattr(value, "__self__", None) is shared and hasattr(proxy, getattr(value, "__name__", "")):
                namespace[attr] = getattr(proxy, value.__name__)
                replaced += 1
    proxy._crystallize_scanned = loaded  # type: ignore[attr-defined]
    return replaced


def run_replicate(payload: bytes, token: str, condition: str, replicate: int) -> bytes:
    """Dask task: run one (condition, replicate) here and return its encoded outcome."""
    from crystallize.plugin import run_unit

    isolate_dask_random()
    return run_unit(payload, token, condition, replicate)
