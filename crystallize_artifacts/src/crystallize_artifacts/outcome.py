"""``outcome.json``: what a run concluded, kept beside its metrics.

Metrics are stored per condition as they complete (``results.json``, the
journal). What only exists once the run ends — the hypotheses' verdicts and
the failed replicates with their tracebacks — is written by
:class:`~crystallize_artifacts.ArtifactPlugin` in ``after_run`` to
``v<N>/outcome.json``, so that :func:`~crystallize_artifacts.load_result` and
``crystallize show`` can give them back without the experiment's code::

    {"status": "failed", "written_at": "...",
     "hypotheses": [{"name", "results", "ranking", "correction", "alpha"}],
     "errors": [{"condition", "replicate", "step", "type", "message", "traceback", "plugin", "hook"}]}

A resumed run rewrites it: its verdicts cover every replicate, and its
errors are those still failing. A run killed before ``after_run`` has none;
its metrics are still read from the condition files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs

from crystallize.plugin import ReplicateError
from crystallize.plugin import documents as d
from crystallize_artifacts.encoding import to_json_bytes

if TYPE_CHECKING:
    from crystallize import HypothesisResult, Result
    from crystallize.plugin import Run

__all__ = ["Outcome", "outcome_document", "parse_outcome", "same_outcome", "MAX_TRACEBACK"]

#: characters of a traceback kept (its end, where the exception is).
MAX_TRACEBACK = 20_000


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` with what JSON cannot hold written as its ``repr`` (a verdict is the user's data)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value
    if depth > 50:
        return repr(value)[:200]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v, depth + 1) for v in items]
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return _jsonable(value.tolist(), depth + 1)
    return repr(value)[:1000]


def _hypothesis(h: HypothesisResult) -> dict[str, Any]:
    return {
        "name": h.name,
        "results": _jsonable(h.results),
        "ranking": _jsonable(h.ranking),
        "correction": h.correction,
        "alpha": h.alpha,
    }


def _error(e: ReplicateError) -> dict[str, Any]:
    return {
        "condition": e.condition,
        "replicate": e.replicate,
        "step": e.step,
        "type": e.type_name,
        "message": e.message,
        "traceback": e.traceback[-MAX_TRACEBACK:],
        "plugin": e.plugin,
        "hook": e.hook,
    }


def outcome_document(run: Run, result: Result) -> dict[str, Any]:
    """The ``outcome.json`` of ``run``, which returned ``result``."""
    return {
        "status": run.status,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "hypotheses": [_hypothesis(h) for h in result.metrics.hypotheses],
        "errors": [_error(e) for e in result.error_list()],
    }


def same_outcome(raw: bytes | None, document: Mapping[str, Any]) -> bool:
    """Whether the stored ``outcome.json`` (``raw``) says what ``document`` says, but for when it was written."""
    if raw is None:
        return False
    try:
        stored = json.loads(raw)
        fresh = json.loads(to_json_bytes(document, what="outcome"))
    except (ValueError, TypeError, RecursionError):
        return False
    if type(stored) is not dict:
        return False
    stored.pop("written_at", None)
    fresh.pop("written_at", None)
    return bool(stored == fresh)


@attrs.frozen
class Outcome:
    """A parsed ``outcome.json``."""

    status: str | None
    written_at: str | None
    hypotheses: tuple[Mapping[str, Any], ...]
    errors: tuple[ReplicateError, ...]


_HYPOTHESIS_FIELDS: dict[str, d.Check] = {
    "name": d.string,
    "results": d.mapping_of(d.anything),
    "ranking": d.mapping_of(d.anything),
    "correction": d.nullable(d.string),
    "alpha": d.nullable(d.number),
}
_ERROR_FIELDS: dict[str, d.Check] = {
    "condition": d.string,
    "replicate": d.integer(minimum=0),
    "step": d.nullable(d.string),
    "type": d.string,
    "message": d.string,
    "traceback": d.string,
    "plugin": d.nullable(d.string),
    "hook": d.nullable(d.string),
}
_OPTIONAL = {"correction", "alpha", "step", "plugin", "hook", "ranking", "traceback"}


def _entries(doc: Mapping[str, Any], key: str, fields: Mapping[str, d.Check], source: str) -> list[dict[str, Any]]:
    found = []
    for index, entry in enumerate(d.get(doc, key, d.list_of(d.anything), source, default=[])):
        where = f"{key}[{index}]"
        entry = d.expect_object(entry, source, where)
        found.append(
            {
                name: d.get(entry, name, check, f"{source} {where}", default=None if name in _OPTIONAL else d.REQUIRED)
                for name, check in fields.items()
            }
        )
    return found


def parse_outcome(raw: bytes, source: str) -> Outcome:
    """Read ``outcome.json``; :class:`~crystallize.plugin.DocumentError` names the file and field."""
    doc = d.expect_object(d.parse_json(raw, source), source)
    hypotheses = _entries(doc, "hypotheses", _HYPOTHESIS_FIELDS, source)
    for hypothesis in hypotheses:
        hypothesis["ranking"] = hypothesis["ranking"] or {}
    errors = tuple(
        ReplicateError(
            condition=e["condition"],
            replicate=e["replicate"],
            step=e["step"],
            type_name=e["type"],
            message=e["message"],
            traceback=e["traceback"] or "",
            plugin=e["plugin"],
            hook=e["hook"],
        )
        for e in _entries(doc, "errors", _ERROR_FIELDS, source)
    )
    return Outcome(
        status=d.get(doc, "status", d.nullable(d.string), source, default=None),
        written_at=d.get(doc, "written_at", d.nullable(d.string), source, default=None),
        hypotheses=tuple(hypotheses),
        errors=errors,
    )


def finite_or_none(value: Any) -> Any:
    """``value`` with non-finite floats as ``None``, recursively (for strict JSON output)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value
