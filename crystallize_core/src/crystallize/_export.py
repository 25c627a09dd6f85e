"""A :class:`~crystallize.Result` as plain data: records, a mapping, a pandas frame.

- :func:`to_records` — tidy rows, one per recorded value: what a DataFrame,
  a CSV writer or a database wants, and what concatenates across versions;
- :func:`to_dict` — the whole result as JSON-friendly data (metrics in
  crystallize-ml's shape and per replicate, verdicts, failures, artifacts,
  the summary table);
- :func:`to_frame` — :func:`to_records` as a ``pandas.DataFrame`` (pandas
  is imported only here, and only when installed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crystallize._result import ConditionMetrics, Result

__all__ = ["RECORD_COLUMNS", "to_records", "to_dict", "to_frame"]

#: the keys of every record :func:`to_records` returns, in column order.
RECORD_COLUMNS = ("experiment", "version", "condition", "replicate", "metric", "index", "value", "seed")


def _conditions(result: Result) -> dict[str, ConditionMetrics]:
    return {"baseline": result.metrics.baseline, **result.metrics.treatments}


def to_records(result: Result) -> list[dict[str, Any]]:
    """One record per recorded value, keyed by :data:`RECORD_COLUMNS`.

    ``index`` is the value's position among those its replicate recorded for
    the metric (``0`` for a metric recorded once). Failed replicates record
    nothing. For results that kept no split by replicate (crystallize-ml
    0.27's, when a metric's count does not divide by the replicates),
    ``replicate`` and ``seed`` are ``None`` and ``index`` is the position in
    the condition's list.
    """
    from crystallize._result import Series

    run = result.run
    experiment = None if run is None else run.key
    version = None if run is None else run.version
    records: list[dict[str, Any]] = []
    for condition, metrics in _conditions(result).items():
        seeds = metrics.seeds
        for name in dict.fromkeys([*metrics.by_replicate, *metrics.metrics]):
            entries = metrics.by_replicate.get(name)
            if entries is None:
                for index, value in enumerate(metrics.metrics.get(name, ())):
                    records.append(
                        {
                            "experiment": experiment,
                            "version": version,
                            "condition": condition,
                            "replicate": None,
                            "metric": name,
                            "index": index,
                            "value": value,
                            "seed": None,
                        }
                    )
                continue
            for replicate, entry in enumerate(entries):
                if entry is None:
                    continue
                values = entry if isinstance(entry, Series) else (entry,)
                seed = seeds[replicate] if replicate < len(seeds) else None
                for index, value in enumerate(values):
                    records.append(
                        {
                            "experiment": experiment,
                            "version": version,
                            "condition": condition,
                            "replicate": replicate,
                            "metric": name,
                            "index": index,
                            "value": value,
                            "seed": seed,
                        }
                    )
    return records


def _plain(value: Any) -> Any:
    """Tuples as lists, mappings with string keys, recursively (what JSON keeps)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_dict(result: Result) -> dict[str, Any]:
    """The whole result as JSON-friendly data.

    Keys: ``experiment``, ``experiment_id``, ``version``, ``run_id``,
    ``status``, ``location``, ``timestamp`` (when the run started); ``metrics`` (crystallize-ml's shape:
    ``{"baseline": {name: values}, "treatments": {name: {name: values}}}``);
    ``conditions`` (per condition: ``replicates``, ``metrics``,
    ``by_replicate`` with series as lists, ``seeds``, ``missing``);
    ``hypotheses`` (``name``, ``results``, ``ranking``, ``correction``,
    ``alpha``); ``errors`` (one mapping per failed replicate, with its
    traceback); ``artifacts`` (their records; the names, for a result built
    with crystallize-ml's ``{name: value}`` artifacts); ``provenance``;
    ``summary`` (the table of :meth:`~crystallize.Result.summary`).
    Non-finite floats stay floats.
    """
    run = result.run
    conditions = _conditions(result)
    return {
        "experiment": None if run is None else run.key,
        "experiment_id": None if run is None else run.experiment_id,
        "version": None if run is None else run.version,
        "run_id": None if run is None else run.run_id,
        "status": None if run is None else run.status,
        "location": None if run is None else run.location,
        "timestamp": None if run is None else run.started_at or None,
        "metrics": {
            "baseline": _plain(result.metrics.baseline.metrics),
            "treatments": {name: _plain(m.metrics) for name, m in result.metrics.treatments.items()},
        },
        "conditions": {
            name: {
                "replicates": m.replicates,
                "metrics": _plain(m.metrics),
                "by_replicate": _plain(m.by_replicate),
                "seeds": list(m.seeds),
                "missing": list(m.missing),
            }
            for name, m in conditions.items()
        },
        "hypotheses": [
            {
                "name": h.name,
                "results": _plain(h.results),
                "ranking": _plain(h.ranking),
                "correction": h.correction,
                "alpha": h.alpha,
            }
            for h in result.metrics.hypotheses
        ],
        "errors": [
            {
                "condition": e.condition,
                "replicate": e.replicate,
                "step": e.step,
                "type": e.type_name,
                "message": e.message,
                "traceback": e.traceback,
                "plugin": e.plugin,
                "hook": e.hook,
            }
            for e in result.error_list()
        ],
        "artifacts": (
            sorted(result.artifacts)
            if isinstance(result.artifacts, Mapping)
            else [record.to_json() for record in result.artifacts]
        ),
        "provenance": _plain(result.provenance),
        "summary": result.summary().to_dict(),
    }


def to_frame(result: Result) -> Any:
    """:func:`to_records` as a ``pandas.DataFrame`` with :data:`RECORD_COLUMNS` as columns.

    :raises ImportError: pandas is not installed (it is never a dependency).
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("Result.to_frame() needs pandas, which is not installed: pip install pandas") from None
    return pd.DataFrame.from_records(to_records(result), columns=list(RECORD_COLUMNS))
