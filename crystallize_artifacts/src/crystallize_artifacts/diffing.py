"""What differs between two stored runs: ``crystallize diff A B``.

Two parts:

- **provenance** — every key of the two ``metadata.json`` documents that
  differs (step parameters, treatment and code fingerprints, seeds, package
  versions, Python, platform, git commit, lineage, ...), flattened to dotted
  keys. Keys that differ between any two runs (run id, timestamps, version)
  are left out. Keys a newer metadata plugin adds are compared too.
- **metrics** — per condition and metric, each run's mean over replicates,
  the difference (B minus A) and a test of it: the replicates are paired
  when both runs gave replicate ``r`` the same seed (same ``SeedPlugin``
  seed: they drew the same data), unpaired otherwise; permutation or
  sign-flip test with a bootstrap interval, as hypotheses use
  (:func:`crystallize.stats.compare`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from crystallize import ConditionMetrics, Result
from crystallize_artifacts.listing import read_metadata

__all__ = ["VOLATILE", "flatten", "provenance_diff", "metric_diff", "readable", "replicate_values"]

#: metadata keys that differ between any two runs; not reported.
VOLATILE = frozenset(
    {
        "run_id",
        "version",
        "created_at",
        "updated_at",
        "finished_at",
        "resumed_at",
        "status",
        "failed_replicates",
        "completed_conditions",
    }
)


def readable(value: Any) -> Any:
    """The core's canonical encoding of parameters (``{"dict": [["\\"lr\\"", 0.1]]}``) as plain data."""
    if isinstance(value, Mapping):
        pairs = value.get("dict") if len(value) == 1 else None
        if isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 for p in pairs):
            out = {}
            for key, item in pairs:
                try:
                    key = json.loads(key) if isinstance(key, str) else key
                except ValueError:
                    pass
                out[str(key)] = readable(item)
            return out
        return {k: readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(v) for v in value]
    return value


def _steps(signature: Any) -> Any:
    """``signature.steps`` keyed by step name, so a parameter reads ``params.train.lr``."""
    steps = signature.get("steps") if isinstance(signature, Mapping) else None
    if not isinstance(steps, list):
        return signature
    keyed: dict[str, Any] = {}
    for index, step in enumerate(steps):
        if isinstance(step, Mapping):
            name = str(step.get("step", index))
            name = name if name not in keyed else f"{name}#{index}"
            params = readable(step.get("params", {}))
            others = {f"({k})": readable(v) for k, v in step.items() if k not in ("step", "params")}
            keyed[name] = {**(params if isinstance(params, Mapping) else {"params": params}), **others}
    return keyed


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}``; lists stay leaves."""
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value} if prefix else {}


def _comparable(meta: Mapping[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in meta.items() if k not in VOLATILE}
    if "signature" in doc:
        doc["params"] = _steps(doc.pop("signature"))  # each step's parameters and "(code)" fingerprint
    identity = doc.pop("identity", None)  # the signature again, for people; but for:
    if isinstance(identity, Mapping):
        for part in ("treatments", "hypotheses"):
            if identity.get(part):
                doc[part] = identity[part]
    if isinstance(doc.get("facts"), Mapping) and doc.get("seeds") == doc["facts"].get("seed"):
        doc["facts"] = {k: v for k, v in doc["facts"].items() if k != "seed"}  # the same as "seeds"
    return flatten(doc)


def provenance_diff(a: Result, b: Result) -> list[tuple[str, Any, Any]]:
    """``(key, value in A, value in B)`` for every metadata key that differs (``None``: absent)."""
    metas = []
    for result in (a, b):
        meta = read_metadata(result.run.store)[0] if result.run is not None and result.run.store else None
        metas.append(_comparable(meta or {}))
    keys = sorted(set(metas[0]) | set(metas[1]))
    return [(key, metas[0].get(key), metas[1].get(key)) for key in keys if metas[0].get(key) != metas[1].get(key)]


def replicate_values(metrics: ConditionMetrics, name: str) -> tuple[list[float | None], list[Any]]:
    """One number per replicate (``None`` for a gap or a series' non-number), and the seeds."""
    from crystallize import Series

    entries = metrics.by_replicate.get(name)
    if entries is None:
        flat = metrics.metrics.get(name, [])
        return [v if _is_number(v) else None for v in flat], [None] * len(flat)
    values: list[float | None] = []
    for entry in entries:
        if isinstance(entry, Series):
            entry = math.fsum(entry) / len(entry) if entry and all(_is_number(v) for v in entry) else None
        values.append(float(entry) if _is_number(entry) else None)
    return values, list(metrics.seeds)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _condition(result: Result, name: str) -> ConditionMetrics | None:
    if name == "baseline":
        return result.metrics.baseline
    return result.metrics.treatments.get(name)


def metric_diff(a: Result, b: Result) -> list[dict[str, Any]]:
    """One row per condition and metric present in either run: both means, B - A and a test of it."""
    from crystallize import stats

    names = list(dict.fromkeys(["baseline", *a.metrics.treatments, *b.metrics.treatments]))
    rows = []
    for condition in names:
        ca, cb = _condition(a, condition), _condition(b, condition)
        metrics = list(dict.fromkeys([*(ca.metrics if ca else {}), *(cb.metrics if cb else {})]))
        for metric in metrics:
            va, sa = replicate_values(ca, metric) if ca else ([], [])
            vb, sb = replicate_values(cb, metric) if cb else ([], [])
            row: dict[str, Any] = {"condition": condition, "metric": metric}
            xa, xb = [v for v in va if v is not None], [v for v in vb if v is not None]
            row.update(n_a=len(xa), n_b=len(xb))
            row["mean_a"] = math.fsum(xa) / len(xa) if xa else None
            row["mean_b"] = math.fsum(xb) / len(xb) if xb else None
            row["difference"] = (
                None if row["mean_a"] is None or row["mean_b"] is None else row["mean_b"] - row["mean_a"]
            )
            both = [r for r in range(min(len(va), len(vb))) if va[r] is not None and vb[r] is not None]
            paired = (
                len(both) >= 2
                and len(sa) == len(va)
                and len(sb) == len(vb)
                and all(sa[r] is not None and sa[r] == sb[r] for r in both)
            )
            row["paired"] = paired
            row["test"] = row["p_value"] = row["ci"] = row["tested_n"] = row["tested_difference"] = None
            try:
                if paired:
                    verdict = stats.compare([va[r] for r in both], [vb[r] for r in both], paired=True, n_resamples=4999)
                elif len(xa) >= 2 and len(xb) >= 2:
                    verdict = stats.compare(xa, xb, paired=False, n_resamples=4999)
                else:
                    verdict = None
            except (ValueError, ZeroDivisionError):
                verdict = None
            if verdict is not None:
                row.update(test=verdict["test"], p_value=verdict["p_value"], ci=list(verdict["ci"]))
                row["tested_n"] = verdict["n"]  # pairs when paired, both groups' values otherwise
                row["tested_difference"] = verdict["mean_difference"]
            rows.append(row)
    return rows
