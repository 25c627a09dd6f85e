"""crystallize-ml 0.27's metric loaders, on :func:`~crystallize_artifacts.load_result`.

``load_metrics(experiment_dir)`` and ``load_all_metrics(experiment_dir)``
were how 0.27 code read an experiment's stored metrics (its CLI summary used
them). They read through :func:`load_results`, so they see exactly what a
run's completion markers vouch for: a ``results.json`` no marker vouches for
(a condition whose replicates failed, or a folder copied by hand) is not
read, where 0.27 read any such file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crystallize_artifacts import layout
from crystallize_artifacts.results import load_results

__all__ = ["load_metrics", "load_all_metrics"]

Metrics = dict[str, Any]


def _versions(experiment_dir: Path, version: int | None) -> dict[int, Any]:
    if not layout.versions(experiment_dir):
        return {}
    results = load_results(experiment_dir)
    return {v: r for v, r in results.items() if version is None or v <= version}


def load_metrics(experiment_dir: str | Path, version: int | None = None) -> tuple[int, Metrics, dict[str, Metrics]]:
    """``(version, baseline metrics, {treatment: metrics})`` of one stored version (the latest by default).

    Treatments are in name order; ``(-1, {}, {})`` when the folder holds no run.
    """
    results = _versions(Path(experiment_dir), version)
    if version is not None:
        results = {v: r for v, r in results.items() if v == version}
    if not results:
        return -1, {}, {}
    latest = max(results)
    metrics = results[latest].metrics
    treatments = {name: dict(metrics.treatments[name].metrics) for name in sorted(metrics.treatments)}
    return latest, dict(metrics.baseline.metrics), treatments


def load_all_metrics(
    experiment_dir: str | Path, version: int | None = None
) -> tuple[int, Metrics, dict[str, tuple[int, Metrics]]]:
    """``(latest version, its baseline metrics, {treatment: (version, metrics)})`` over every stored version.

    Each treatment's metrics come from the newest version (up to ``version``)
    that completed it, so treatments run only in older versions are kept.
    ``(-1, {}, {})`` when the folder holds no run.
    """
    results = _versions(Path(experiment_dir), version)
    if not results:
        return -1, {}, {}
    treatments: dict[str, tuple[int, Metrics]] = {}
    for v in sorted(results):
        for name, metrics in results[v].metrics.treatments.items():
            if metrics.metrics:
                treatments[name] = (v, dict(metrics.metrics))
    latest = max(results)
    return latest, dict(results[latest].metrics.baseline.metrics), dict(sorted(treatments.items()))
