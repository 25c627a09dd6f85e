"""Writing the store's documents as JSON: one encoder, one clear error."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["ENCODER", "to_json_bytes", "json_exact", "now"]


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays, without importing NumPy.
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)  # a set's order differs between processes; a sorted list does not
        except TypeError:
            return list(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"a value of type {type(value).__name__} ({value!r:.80}) cannot be stored as JSON")


#: compact, and converting what JSON almost holds (NumPy values, tuples, sets, paths).
ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"))


def to_json_bytes(document: Any, *, what: str) -> bytes:
    """Serialise ``document``; a clear error names ``what`` when it cannot be."""
    try:
        return ENCODER.encode(document).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what} cannot be written as JSON: {exc}. Record numbers, strings, booleans, "
            "lists or dicts of them (NumPy values are converted)"
        ) from None
    except RecursionError:
        raise ValueError(f"{what} cannot be written as JSON: it is nested too deeply") from None


def json_exact(value: Any) -> bool:
    """``value`` comes back from JSON as it is (same types, same keys)."""
    kind = type(value)
    if kind is float or kind is int or kind is str or kind is bool or value is None:
        return True
    if kind is list:
        return all(json_exact(v) for v in value)
    if kind is dict:
        return all(type(k) is str and json_exact(v) for k, v in value.items())
    return False


def now() -> str:
    """The time, for documents: UTC, ISO 8601, milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
