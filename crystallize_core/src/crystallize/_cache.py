"""Step caching: reuse a cacheable step's result for the same code, parameters and input.

A step marked ``cacheable`` (``cacheable = True`` on its class, or
``@pipeline_step(cacheable=True)``) is looked up before it is called, under

    <cache dir>/<step hash>/<input hash>.pkl

- the **step hash** (:func:`step_hash`) covers the step's name, its
  parameters and its *code*: the bytecode of every method of its class (or of
  its function), of the functions and classes of its module those call, and
  the values its closures captured. Changing any of them gives a new hash, so
  a result of changed code is never served.
- the **input hash** (:func:`compute_hash`) covers the data the step receives
  and the context values it could read — treatment keys, ``initial_ctx``,
  keys earlier steps added — except the replicate's bookkeeping keys
  (``replicate``, ``condition``, ``seed_used``). A cacheable step must
  therefore compute the same thing for the same input whatever the replicate:
  do not mark steps that draw random numbers cacheable.

A hit replays what the step did: its return value, the metrics it recorded
and the context keys it added. A step that wrote artifacts is not stored (a
hit could not write them again). Entries are committed atomically (temporary
file, then ``os.replace``): a crash or a concurrent writer leaves the old
entry or the new one, never a torn file; an unreadable entry is a miss and is
replaced. The cache folder is ``$CRYSTALLIZE_CACHE_DIR``, else ``.cache`` in
the working directory. Delete it to clear the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystallize._context import CONDITION_KEY, REPLICATE_KEY, SEED_KEY
from crystallize.errors import CacheError

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._steps import PipelineStep

__all__ = [
    "ENV_CACHE_DIR",
    "CacheError",
    "cache_dir",
    "cache_path",
    "compute_hash",
    "step_hash",
    "code_fingerprint",
    "load_cache",
    "store_cache",
    "CachedStep",
]

log = logging.getLogger("crystallize.cache")

ENV_CACHE_DIR = "CRYSTALLIZE_CACHE_DIR"
#: Context keys that differ between replicates without changing what a step computes.
BOOKKEEPING = frozenset({REPLICATE_KEY, CONDITION_KEY, SEED_KEY})
_FORMAT = 1
_PROTOCOL = 4  # fixed, so the same value hashes the same on every Python this runs on


def cache_dir() -> Path:
    """The cache folder: ``$CRYSTALLIZE_CACHE_DIR``, else ``.cache`` in the working directory."""
    return Path(os.environ.get(ENV_CACHE_DIR) or ".cache")


def compute_hash(obj: Any) -> str:
    """SHA-256 of ``obj``'s pickle: equal hashes mean equal values.

    Two equal values may still hash differently (a dict built in another
    order): that costs a cache miss, never a wrong hit.

    :raises CacheError: when ``obj`` does not pickle.
    """
    try:
        blob = pickle.dumps(obj, protocol=_PROTOCOL)
    except Exception as exc:
        raise CacheError(f"cannot hash a {type(obj).__name__}: it does not pickle ({exc})") from exc
    return hashlib.sha256(blob).hexdigest()


# -- code fingerprints -------------------------------------------------------------------


def _code_parts(code: types.CodeType, out: list[Any]) -> None:
    out.append((code.co_name, code.co_code, code.co_names, code.co_varnames))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_parts(const, out)
        else:
            out.append(repr(const))


def _function_parts(fn: Any, module: str | None, out: list[Any], seen: set[int]) -> None:
    fn = getattr(fn, "__func__", fn)  # bound methods, classmethods
    fn = getattr(fn, "fn", fn) if type(fn).__name__ == "PortableCallable" else fn
    if id(fn) in seen:
        return
    seen.add(id(fn))
    if isinstance(fn, (staticmethod, classmethod)):
        _function_parts(fn.__func__, module, out, seen)
        return
    if isinstance(fn, property):
        for part in (fn.fget, fn.fset, fn.fdel):
            if part is not None:
                _function_parts(part, module, out, seen)
        return
    if isinstance(fn, type):
        _class_parts(fn, out, seen)
        return
    code = getattr(fn, "__code__", None)
    if code is None:
        out.append(getattr(fn, "__qualname__", type(fn).__qualname__))
        return
    _code_parts(code, out)
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if callable(value) and hasattr(value, "__code__"):
            _function_parts(value, module, out, seen)
        else:
            out.append(_describe(value))
    # Functions and classes of the same module that this code names: a helper's change counts too.
    scope = getattr(fn, "__globals__", None)
    if scope is None:
        return
    for name in _names(code):
        value = scope.get(name)
        if _defined_in(value, scope):
            _function_parts(value, module, out, seen)


def _defined_in(value: Any, scope: dict[str, Any]) -> bool:
    """Whether ``value`` is a function or class written in the module whose globals are ``scope``."""
    if isinstance(value, types.FunctionType):
        return value.__globals__ is scope
    if isinstance(value, type):
        return any(getattr(member, "__globals__", None) is scope for member in vars(value).values())
    return False


def _names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_names(const))
    return names


def _class_parts(cls: type, out: list[Any], seen: set[int]) -> None:
    if id(cls) in seen:
        return
    seen.add(id(cls))
    from crystallize._steps import PipelineStep

    out.append(cls.__qualname__)
    for klass in cls.__mro__:
        if klass is PipelineStep or klass is object or klass.__module__ == "abc":
            break
        for attr, value in sorted(vars(klass).items()):
            if isinstance(value, (types.FunctionType, staticmethod, classmethod, property)):
                out.append(attr)
                _function_parts(value, klass.__module__, out, seen)


def _describe(value: Any) -> Any:
    from crystallize._identity import describe

    return describe(value)


def code_fingerprint(step: PipelineStep) -> str:
    """A hash of the code that defines ``step``: its class's methods, or its function."""
    from crystallize._steps import FunctionStep

    out: list[Any] = []
    if isinstance(step, FunctionStep):
        _function_parts(step.fn, getattr(step.fn, "__module__", None), out, set())
    else:
        _class_parts(type(step), out, set())
    return hashlib.sha256(repr(out).encode("utf-8", "surrogatepass")).hexdigest()


def step_hash(step: PipelineStep) -> str:
    """The hash a cacheable step's results are stored under: name, parameters and code."""
    from crystallize._identity import describe, digest

    return digest({"step": describe(step), "code": code_fingerprint(step)}, length=32)


# -- storage -------------------------------------------------------------------------------


def cache_path(step_key: str, input_hash: str) -> Path:
    """Where the entry for this step and input lives."""
    return cache_dir() / step_key / f"{input_hash}.pkl"


def load_cache(step_key: str, input_hash: str) -> Any:
    """The value stored by :func:`store_cache` for this step and input.

    :raises FileNotFoundError: when there is no entry.
    :raises CacheError: when the entry cannot be read (it is then a miss).
    """
    path = cache_path(step_key, input_hash)
    try:
        with path.open("rb") as file:
            return pickle.load(file)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise CacheError(f"cache entry {path} is unreadable ({type(exc).__name__}: {exc})") from exc


def store_cache(step_key: str, input_hash: str, data: Any) -> Path:
    """Store ``data`` for this step and input, atomically; returns the entry's path.

    :raises CacheError: when ``data`` does not pickle or the folder cannot be
        written; the message names the entry.
    """
    path = cache_path(step_key, input_hash)
    try:
        blob = pickle.dumps(data, protocol=_PROTOCOL)
    except Exception as exc:
        raise CacheError(
            f"cannot store a result in the step cache at {path}: {type(exc).__name__}: {exc}. "
            "Return a value that pickles, or make the step non-cacheable (cacheable=False)"
        ) from exc
    temp = path.with_name(f".{path.name}.{os.getpid()}.{id(blob):x}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temp.open("wb") as file:
            file.write(blob)
        os.replace(temp, path)
    except OSError as exc:
        try:
            temp.unlink()
        except OSError:
            pass
        raise CacheError(
            f"cannot write the step cache at {path}: {exc}. Set {ENV_CACHE_DIR} to a writable folder, "
            "or make the step non-cacheable (cacheable=False)"
        ) from exc
    return path


# -- the cached call ------------------------------------------------------------------------------


def _context_items(ctx: FrozenContext) -> list[tuple[str, Any]]:
    return sorted((k, v) for k, v in ctx._data.items() if k not in BOOKKEEPING)


def input_hash(step_name: str, data: Any, ctx: FrozenContext) -> str:
    """The input half of a cache key: ``data`` and the context values a step could read."""
    items = _context_items(ctx)
    try:
        return compute_hash(data) if not items else compute_hash((data, items))
    except CacheError:
        pass
    try:
        compute_hash(data)
    except CacheError as exc:
        raise CacheError(
            f"cacheable step {step_name!r}: its input, a {type(data).__name__}, does not pickle, so it "
            "cannot key the cache; make the step non-cacheable (cacheable=False)"
        ) from exc.__cause__
    for key, value in items:
        try:
            compute_hash(value)
        except CacheError as exc:
            raise CacheError(
                f"cacheable step {step_name!r}: context value {key!r} (a {type(value).__name__}) does not "
                "pickle, so it cannot key the cache; make the step non-cacheable (cacheable=False)"
            ) from exc.__cause__
    raise CacheError(f"cacheable step {step_name!r}: its input does not pickle")  # pragma: no cover


class CachedStep:
    """Calls a cacheable step through the cache: ``call(data, ctx)``.

    ``on_lookup(index, hit)``, when given, hears of every lookup (provenance).
    """

    __slots__ = ("call", "index", "key", "name", "on_lookup", "step")

    def __init__(
        self,
        step: PipelineStep,
        call: Callable[[Any, Any], Any],
        index: int = 0,
        on_lookup: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.step = step
        self.call = call
        self.name = step.step_name
        self.key = step.step_hash  # computed once: code and parameters are fixed for the run
        self.index = index
        self.on_lookup = on_lookup

    def __call__(self, data: Any, ctx: FrozenContext) -> Any:
        digest = input_hash(self.name, data, ctx)
        try:
            entry = load_cache(self.key, digest)
        except FileNotFoundError:
            entry = None
        except CacheError as exc:
            log.warning("%s; recomputing step %r", exc, self.name)
            entry = None
        if isinstance(entry, Mapping) and entry.get("format") == _FORMAT:
            for name, values in entry["metrics"].items():
                for value in values:
                    ctx.metrics.add(name, value)
            for key, value in entry["context"].items():
                if key not in ctx._data:
                    ctx[key] = value
            if self.on_lookup is not None:
                self.on_lookup(self.index, True)
            return entry["result"]
        if entry is not None:
            log.warning("cache entry of step %r has an unknown format; recomputing", self.name)
        before_keys = set(ctx._data)
        before_metrics = {name: len(values) for name, values in ctx.metrics._values.items()}
        written = _artifacts_written()
        result = self.call(data, ctx)
        if self.on_lookup is not None:
            self.on_lookup(self.index, False)
        if _artifacts_written() != written:
            log.debug("step %r wrote artifacts, so its result is not cached", self.name)
            return result
        metrics = {
            name: list(values[before_metrics.get(name, 0) :])
            for name, values in ctx.metrics._values.items()
            if len(values) > before_metrics.get(name, 0)
        }
        added = {k: v for k, v in ctx._data.items() if k not in before_keys and k not in BOOKKEEPING}
        store_cache(self.key, digest, {"format": _FORMAT, "result": result, "metrics": metrics, "context": added})
        return result


def _artifacts_written() -> int:
    from crystallize._artifact import current_scope

    scope = current_scope()
    return 0 if scope is None or scope.records is None else len(scope.records)
