"""Stable experiment identity: a canonical description, then a hash.

An unnamed experiment is stored and found again under its *id*, so the id
must come out the same in every process that builds the same experiment —
including a script run as ``__main__`` and the same file imported as a module
by another script. It is therefore computed from a canonical, JSON-shaped
description of the datasource and the steps that contains:

- class and function *qualified names* (``ModelStep``, ``load_json``),
  never module names, which differ between ``__main__`` and an import;
- parameter values described by value (recursively for containers and plain
  objects), never ``repr`` output, which may hold memory addresses;
- artifacts by name.

Objects that cannot be described by value are described by their class's
qualified name alone.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import math
from collections.abc import Mapping, Set
from pathlib import PurePath
from typing import Any

__all__ = ["describe", "experiment_id", "digest"]

_MAX_DEPTH = 12


def _qualname(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None)
    if isinstance(name, str):
        return name
    return type(obj).__qualname__


def describe(value: Any) -> Any:
    """A JSON-compatible description of ``value`` that is stable across processes."""
    return _describe(value, 0, set())


def _describe(value: Any, depth: int, seen: set[int]) -> Any:
    # Local imports keep this module importable from anywhere in the package.
    from crystallize._artifact import Artifact
    from crystallize._datasource import DataSource
    from crystallize._portable import PortableCallable
    from crystallize._steps import PipelineStep

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, enum.Enum):
        return {"enum": f"{_qualname(type(value))}.{value.name}"}
    if isinstance(value, PurePath):
        return {"path": value.as_posix()}
    if isinstance(value, Artifact):
        return {"artifact": value.name}
    if isinstance(value, PortableCallable):
        return _describe(value.fn, depth, seen)
    if depth > _MAX_DEPTH:
        return {"object": _qualname(type(value))}

    marker = id(value)
    if marker in seen:
        return {"cycle": _qualname(type(value))}
    seen.add(marker)
    try:
        return _describe_compound(value, depth + 1, seen, PipelineStep, DataSource)
    finally:
        seen.discard(marker)


def _describe_compound(value: Any, depth: int, seen: set[int], step_type: type, source_type: type) -> Any:
    d = functools.partial(_describe, depth=depth, seen=seen)
    if isinstance(value, step_type):
        return {"step": value.step_name, "params": d(value.params)}
    if isinstance(value, source_type):
        fn = getattr(value, "fn", None)
        kind = _qualname(fn) if fn is not None else _qualname(type(value))
        return {"datasource": kind, "params": d(value.params)}
    if isinstance(value, Mapping):
        items = [(json.dumps(d(k), sort_keys=True), d(v)) for k, v in value.items()]
        return {"dict": sorted(items, key=lambda kv: kv[0])}
    if isinstance(value, (list, tuple)):
        return [d(v) for v in value]
    if isinstance(value, Set):
        return {"set": sorted((d(v) for v in value), key=lambda x: json.dumps(x, sort_keys=True))}
    if isinstance(value, functools.partial):
        return {"partial": d(value.func), "args": d(value.args), "kwargs": d(value.keywords)}
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return {"callable": _qualname(value)}
    array = _describe_array(value)
    if array is not None:
        return array
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"object": _qualname(type(value)), "state": d(fields)}
    attrs_fields = getattr(type(value), "__attrs_attrs__", None)
    if attrs_fields is not None:
        fields = {a.name: getattr(value, a.name) for a in attrs_fields}
        return {"object": _qualname(type(value)), "state": d(fields)}
    state = getattr(value, "__dict__", None)
    if isinstance(state, dict):
        public = {k: v for k, v in state.items() if not k.startswith("_")}
        return {"object": _qualname(type(value)), "state": d(public)}
    return {"object": _qualname(type(value))}


def _describe_array(value: Any) -> Any:
    """NumPy arrays and scalars, without importing NumPy."""
    module = type(value).__module__
    if not module.startswith("numpy"):
        return None
    if hasattr(value, "tobytes") and hasattr(value, "shape") and hasattr(value, "dtype"):
        if value.shape == ():
            return value.item() if hasattr(value, "item") else None
        return {
            "ndarray": str(value.dtype),
            "shape": list(value.shape),
            "sha256": hashlib.sha256(value.tobytes()).hexdigest(),
        }
    return None


def digest(description: Any, length: int = 16) -> str:
    """Hex SHA-256 of a description's canonical JSON, truncated to ``length``."""
    blob = json.dumps(description, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def experiment_id(datasource: Any, steps: list[Any]) -> str:
    """The id of an experiment with this datasource and these steps."""
    return digest({"datasource": describe(datasource), "steps": [describe(s) for s in steps]})
