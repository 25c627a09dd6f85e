"""crystallize-ml 0.27's metric loaders, on :func:`~crystallize_artifacts.load_results`.

``load_metrics(experiment_dir)`` and ``load_all_metrics(experiment_dir)``
were how 0.27 code read an experiment's stored metrics (its CLI summary used
them). They read through :func:`load_results`: a condition's metrics are
those its completion marker vouches for, or, for a condition whose run did
not finish it, those of its finished replicates (0.27 stored a failed
condition's partial metrics too).

0.27's loader also read a ``results.json`` that no marker vouches for. So do
these, for a file shaped as 0.27 wrote it (``{"metrics": ...}`` and nothing
else: written by 0.27, or by hand), with an :class:`UnmarkedResultsWarning`
naming it: 0.27 wrote the file before its marker, so its metrics may be those
of an interrupted run. A ``results.json`` written by crystallize-artifacts is
read only when its marker vouches for it (without one, it is left over from a
crash before the marker, or from a condition being run again).
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

from crystallize.plugin import BASELINE
from crystallize_artifacts import layout
from crystallize_artifacts.listing import condition_folders
from crystallize_artifacts.results import load_results

__all__ = ["load_metrics", "load_all_metrics", "UnmarkedResultsWarning"]

Metrics = dict[str, Any]


class UnmarkedResultsWarning(UserWarning):
    """A crystallize-ml ``results.json`` was read although no completion marker vouches for it."""


def _unmarked(run_dir: Path, condition: str) -> Metrics | None:
    """The metrics of a 0.27-shaped ``results.json`` of ``condition`` that has no marker, else ``None``."""
    folder = run_dir / condition
    path = folder / layout.RESULTS
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or os.path.lexists(folder / layout.MARKER):
            return None  # a link is not followed; with a marker, the store has judged the file already
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        warnings.warn(f"{path} cannot be read, so its metrics are left out: {exc}", UnmarkedResultsWarning, 4)
        return None
    if not isinstance(doc, dict) or not set(doc) <= {"metrics"} or not isinstance(doc.get("metrics", {}), dict):
        return None  # not 0.27's shape: crystallize-artifacts' own file, which its marker alone vouches for
    warnings.warn(
        f"{path} has no completion marker; its metrics are read as crystallize-ml 0.27 read them, "
        "but they may be those of an interrupted run",
        UnmarkedResultsWarning,
        4,
    )
    return dict(doc.get("metrics", {}))


def _stored(experiment_dir: Path, version: int | None) -> dict[int, dict[str, Metrics]]:
    """``{version: {condition: metrics}}`` of every version up to ``version``, baseline first in each."""
    if not layout.versions(experiment_dir):
        return {}
    found: dict[int, dict[str, Metrics]] = {}
    for v, result in load_results(experiment_dir).items():
        if version is not None and v > version:
            continue
        run_dir = layout.version_dir(experiment_dir, v)
        reported = {BASELINE: result.metrics.baseline, **result.metrics.treatments}
        conditions: dict[str, Metrics] = {}
        for name in dict.fromkeys([*reported, *condition_folders(run_dir)]):
            metrics = dict(reported[name].metrics) if name in reported else {}
            if not metrics:
                metrics = _unmarked(run_dir, name) or {}
            if metrics or os.path.lexists(run_dir / name / layout.RESULTS):
                conditions[name] = metrics  # 0.27 listed a condition when it had a results.json
        found[v] = conditions
    return found


def load_metrics(experiment_dir: str | Path, version: int | None = None) -> tuple[int, Metrics, dict[str, Metrics]]:
    """``(version, baseline metrics, {treatment: metrics})`` of one stored version (the latest by default).

    Treatments are in name order; ``(-1, {}, {})`` when the folder holds no run.
    """
    stored = _stored(Path(experiment_dir), version)
    if version is not None:
        stored = {v: c for v, c in stored.items() if v == version}
    if not stored:
        return -1, {}, {}
    latest = max(stored)
    conditions = stored[latest]
    treatments = {name: conditions[name] for name in sorted(conditions) if name != BASELINE}
    return latest, conditions.get(BASELINE, {}), treatments


def load_all_metrics(
    experiment_dir: str | Path, version: int | None = None
) -> tuple[int, Metrics, dict[str, tuple[int, Metrics]]]:
    """``(latest version, its baseline metrics, {treatment: (version, metrics)})`` over every stored version.

    Each treatment's metrics come from the newest version (up to ``version``)
    that stored any for it, so treatments run only in older versions are
    kept. ``(-1, {}, {})`` when the folder holds no run.
    """
    stored = _stored(Path(experiment_dir), version)
    if not stored:
        return -1, {}, {}
    treatments: dict[str, tuple[int, Metrics]] = {}
    for v in sorted(stored):
        for name, metrics in stored[v].items():
            if name != BASELINE and metrics:
                treatments[name] = (v, metrics)
    latest = max(stored)
    return latest, stored[latest].get(BASELINE, {}), dict(sorted(treatments.items()))
