"""Stable experiment identity: a canonical description, then a hash.

An unnamed experiment is stored and found again under its *id*, so the id
must come out the same in every process that builds the same experiment —
including a script run as ``__main__`` and the same file imported as a module
by another script — and differ whenever the experiment computes something
else. It is therefore computed from a canonical, JSON-shaped description of
the datasource and the steps (the *signature*) that contains:

- class and function *qualified names* (``ModelStep``, ``load_json``),
  never module names, which differ between ``__main__`` and an import;
- the *code fingerprint* of every step, datasource and callable parameter
  (:mod:`crystallize._fingerprint`: normalised source, or bytecode);
- parameter values described by value (recursively for containers and plain
  objects), never ``repr`` output, which may hold memory addresses;
- artifacts by name (and their writer's code).

Objects that cannot be described by value are described by their class's
qualified name alone. :func:`identity_changes` compares two signatures and
says, component by component, what changed.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence, Set
from pathlib import PurePath
from typing import Any

import attrs

from crystallize._fingerprint import code_fingerprint

__all__ = ["describe", "experiment_id", "digest", "signature", "code_of", "IdentityChange", "identity_changes"]

#: Version of the signature's shape (part of the signature, so of every id). Format 1 (no
#: ``format`` key) described steps by name and parameters only, without their code.
SIGNATURE_FORMAT = 2

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
        writer = None if value.writer is None else code_fingerprint(value.writer.fn)
        return {"artifact": value.name} if writer is None else {"artifact": value.name, "writer": writer}
    if isinstance(value, PortableCallable):
        return _describe(value.fn, depth, seen)
    if depth > _MAX_DEPTH:
        return _object(value, None)

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
        return _with_code({"step": value.step_name, "params": d(value.params)}, code_of(value))
    if isinstance(value, source_type):
        fn = getattr(value, "fn", None)
        kind = _qualname(fn) if fn is not None else _qualname(type(value))
        return _with_code({"datasource": kind, "params": d(value.params)}, code_of(value))
    if isinstance(value, Mapping):
        items = [[json.dumps(d(k), sort_keys=True), d(v)] for k, v in value.items()]
        return {"dict": sorted(items, key=lambda kv: kv[0])}
    if isinstance(value, (list, tuple)):
        return [d(v) for v in value]
    if isinstance(value, Set):
        return {"set": sorted((d(v) for v in value), key=lambda x: json.dumps(x, sort_keys=True))}
    if isinstance(value, functools.partial):
        return {"partial": d(value.func), "args": d(value.args), "kwargs": d(value.keywords)}
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return _with_code({"callable": _qualname(value)}, code_fingerprint(value))
    array = _describe_array(value)
    if array is not None:
        return array
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _object(value, d(fields))
    attrs_fields = getattr(type(value), "__attrs_attrs__", None)
    if attrs_fields is not None:
        fields = {a.name: getattr(value, a.name) for a in attrs_fields}
        return _object(value, d(fields))
    state = getattr(value, "__dict__", None)
    if isinstance(state, dict):
        public = {k: v for k, v in state.items() if not k.startswith("_")}
        return _object(value, d(public))
    return _object(value, None)


def _object(value: Any, state: Any) -> dict[str, Any]:
    """An object by its class (and the class's code, when it is the user's) and its state."""
    described: dict[str, Any] = {"object": _qualname(type(value))}
    code = code_fingerprint(type(value))
    if code is not None:
        described["code"] = code
    if state is not None:
        described["state"] = state
    return described


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


def _with_code(description: dict[str, Any], code: str | None) -> dict[str, Any]:
    if code is not None:
        description["code"] = code
    return description


def code_of(component: Any) -> str | None:
    """The code fingerprint of a step or datasource: its function's, else its class's.

    ``None`` for the framework's own classes (an artifact datasource, say):
    their behaviour is pinned by the recorded package versions.
    """
    from crystallize._datasource import CallableDataSource, FunctionDataSource
    from crystallize._steps import FunctionStep

    if isinstance(component, (FunctionStep, FunctionDataSource, CallableDataSource)):
        return code_fingerprint(component.fn)
    return code_fingerprint(type(component))


def digest(description: Any, length: int = 16) -> str:
    """Hex SHA-256 of a description's canonical JSON, truncated to ``length``."""
    blob = json.dumps(description, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def signature(datasource: Any, steps: Sequence[Any]) -> dict[str, Any]:
    """The canonical description of a datasource and steps: what the experiment id hashes."""
    return {"format": SIGNATURE_FORMAT, "datasource": describe(datasource), "steps": [describe(s) for s in steps]}


def experiment_id(datasource: Any, steps: Sequence[Any]) -> str:
    """The id of an experiment with this datasource and these steps."""
    return digest(signature(datasource, steps))


# -- what changed between two signatures ---------------------------------------------------------


@attrs.frozen
class IdentityChange:
    """One difference between a recorded signature and the current one.

    :ivar component: what changed, as a user names it (``"step 2 'ModelStep'"``,
        ``"datasource 'my_source'"``).
    :ivar what: ``"code"``, ``"parameters"``, ``"replaced"``, ``"added"``, ``"removed"``,
        or ``"format"`` (recorded by a version of crystallize that described experiments otherwise).
    :ivar old: the recorded fingerprint (of the code, or of the parameters), if any.
    :ivar new: the current one, if any.
    :ivar detail: which parameters changed, or what replaced what.
    """

    component: str
    what: str
    old: str | None = None
    new: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        if self.what in ("added", "removed"):
            return f"{self.component} was {self.what}"
        if self.what == "replaced":
            return f"{self.component} was replaced ({self.detail})"
        if self.what == "format":
            return (
                f"{self.component} was recorded by another version of crystallize (signature format "
                f"{self.old or 1} -> {self.new}), so what changed cannot be told apart"
            )
        text = f"{self.component}: {self.what} changed (fingerprint {self.old or 'none'} -> {self.new or 'none'})"
        return f"{text}; {self.detail}" if self.detail else text

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def identity_changes(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[IdentityChange]:
    """What differs between two signatures (as ``signature`` returns them), component by component.

    Steps are compared by position. An empty list means the signatures
    describe the same code and parameters.
    """
    # compare as stored: JSON has lists where a description may hold tuples
    recorded, current = json.loads(json.dumps(recorded)), json.loads(json.dumps(current))
    if recorded.get("format") != current.get("format"):
        old_format, new_format = recorded.get("format"), current.get("format")
        return [IdentityChange("that run", "format", None if old_format is None else str(old_format), str(new_format))]
    changes: list[IdentityChange] = []
    old_source, new_source = recorded.get("datasource"), current.get("datasource")
    if old_source != new_source:
        changes.extend(_component_changes("datasource", old_source, new_source))
    old_steps = list(recorded.get("steps") or [])
    new_steps = list(current.get("steps") or [])
    for index in range(max(len(old_steps), len(new_steps))):
        old = old_steps[index] if index < len(old_steps) else None
        new = new_steps[index] if index < len(new_steps) else None
        if old == new:
            continue
        kind = f"step {index + 1}"
        if old is None:
            changes.append(IdentityChange(_label(kind, new), "added", None, _code(new)))
        elif new is None:
            changes.append(IdentityChange(_label(kind, old), "removed", _code(old), None))
        else:
            changes.extend(_component_changes(kind, old, new))
    old_initial, new_initial = recorded.get("initial_ctx"), current.get("initial_ctx")
    if old_initial != new_initial:
        changes.append(
            IdentityChange(
                "initial_ctx",
                "parameters",
                None if old_initial is None else digest(old_initial),
                None if new_initial is None else digest(new_initial),
            )
        )
    return changes


def _label(kind: str, description: Any) -> str:
    name = _name(description)
    return f"{kind} {name!r}" if name else kind


def _name(description: Any) -> str | None:
    if isinstance(description, Mapping):
        for key in ("step", "datasource"):
            if isinstance(description.get(key), str):
                return str(description[key])
    return None


def _code(description: Any) -> str | None:
    return description.get("code") if isinstance(description, Mapping) else None


def _component_changes(kind: str, old: Any, new: Any) -> list[IdentityChange]:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return [IdentityChange(kind, "replaced", detail="its description has another shape")]
    if _name(old) != _name(new):
        return [IdentityChange(kind, "replaced", _code(old), _code(new), f"{_name(old)!r} -> {_name(new)!r}")]
    label = _label(kind, new)
    found = []
    if old.get("code") != new.get("code"):
        found.append(IdentityChange(label, "code", old.get("code"), new.get("code")))
    if old.get("params") != new.get("params"):
        found.append(
            IdentityChange(
                label,
                "parameters",
                digest(old.get("params")),
                digest(new.get("params")),
                _params_detail(old.get("params"), new.get("params")),
            )
        )
    rest = {k for k in {*old, *new} if k not in ("code", "params", "step", "datasource") and old.get(k) != new.get(k)}
    if rest and not found:
        found.append(
            IdentityChange(label, "parameters", digest(old), digest(new), f"changed: {', '.join(sorted(rest))}")
        )
    return found


def _params_detail(old: Any, new: Any) -> str:
    """``"lr: 0.1 -> 0.2, depth: added"`` for described dicts; empty when not dicts."""
    old_items, new_items = _items(old), _items(new)
    if old_items is None or new_items is None:
        return ""
    parts = []
    for key in sorted({*old_items, *new_items}):
        if key not in old_items:
            parts.append(f"{key}: added")
        elif key not in new_items:
            parts.append(f"{key}: removed")
        elif old_items[key] != new_items[key]:
            parts.append(f"{key}: {_short(old_items[key])} -> {_short(new_items[key])}")
    return ", ".join(parts)


def _items(described: Any) -> dict[str, Any] | None:
    if not isinstance(described, Mapping) or not isinstance(described.get("dict"), list):
        return None
    items = {}
    for pair in described["dict"]:
        try:
            key = json.loads(pair[0])
        except (TypeError, ValueError, IndexError):
            return None
        items[key if isinstance(key, str) else json.dumps(key)] = pair[1]
    return items


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


# -- crystallize-ml 0.27 ids ---------------------------------------------------------------------

_REPR_SAFE = (type(None), bool, int, float, str)


def _repr_safe(value: Any) -> bool:
    """``repr(value)`` is the same in every process (no memory address, no set order)."""
    if isinstance(value, _REPR_SAFE):
        return True
    if isinstance(value, (list, tuple)):
        return all(_repr_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, _REPR_SAFE) and _repr_safe(v) for k, v in value.items())
    return False


def crystallize_ml_ids(steps: Sequence[Any]) -> tuple[set[str], str, bool]:
    """The ids crystallize-ml 0.27 would have given a pipeline of ``steps``.

    0.27 hashed (``sha256`` of the pickled string) ``"|".join(class name +
    repr(params))``, where a ``@pipeline_step`` function ``fit`` was the class
    ``FitStep`` with only its explicitly passed parameters. Returns the
    possible ids (pickle protocols 4 and 5: 0.27 used its Python's default),
    the signature string, and whether every ``repr`` in it is reproducible —
    when it is not (an artifact passed as a parameter, say), 0.27's own id
    held a memory address and no id can match.
    """
    import pickle

    from crystallize._steps import FunctionStep

    parts = []
    reproducible = True
    for step in steps:
        if isinstance(step, FunctionStep):
            name, params = f"{step.fn.__name__.title()}Step", dict(step.explicit)
        else:
            name, params = type(step).__name__, step.params
        reproducible = reproducible and _repr_safe(params)
        parts.append(name + repr(params))
    text = "|".join(parts)
    ids = {hashlib.sha256(pickle.dumps(text, protocol=p)).hexdigest() for p in (4, 5)}
    return ids, text, reproducible
