"""Stored runs read back as :class:`~crystallize.Result`, without the experiment's code.

::

    from crystallize_artifacts import load_result, load_results

    result = load_result("data", "my-experiment")          # the latest version
    result = load_result("data", "my-experiment", version=3)
    result = load_result("data/my-experiment/v3")          # a run or experiment folder
    every = load_results("data", "my-experiment")          # {version: Result}
    print(result)                                          # the summary table

Nothing is imported or run: metrics come from the run's documents through
the store's reading side — completed conditions from their ``results.json``
(or the ``.index.json`` cache that vouches for it), unfinished ones from
their journal of finished replicates — the verdicts and failures from
``outcome.json``, the artifacts from ``manifest.json``. Folders written by
crystallize-ml 0.27 load the same way (their hypotheses and failures were
never stored; their metrics are split by replicate when the counts allow).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crystallize import ConditionMetrics, ExperimentMetrics, HypothesisResult, Result
from crystallize.plugin import (
    BASELINE,
    ArtifactRecord,
    DocumentError,
    ReplicateError,
    Run,
    Upstream,
    check_name,
)
from crystallize.plugin import documents as d
from crystallize_artifacts import documents, layout
from crystallize_artifacts.listing import condition_folders, read_metadata, run_status
from crystallize_artifacts.outcome import Outcome, parse_outcome
from crystallize_artifacts.store import LocalRunStore

__all__ = ["load_result", "load_results", "locate", "RunNotFoundError", "read_run"]

_AT_VERSION = re.compile(r"^(?P<experiment>.+)@v(?P<version>\d+)$")


class RunNotFoundError(LookupError):
    """No stored run matches what was asked; the message says what exists."""


def locate(root: str | Path, experiment: str | None = None, version: int | None = None) -> tuple[Path, int | None]:
    """``(experiment folder, version)`` for what the arguments name.

    - ``locate(root, "exp")``, ``locate(root, "exp@v3")``, ``locate(root, "exp", 3)``: the
      experiment ``exp`` under ``root``;
    - ``locate(folder)``: ``folder`` is an experiment folder (it holds ``v<N>``
      folders) or a run folder ``.../exp/v<N>``.

    The version is ``None`` when not given (the latest).

    :raises RunNotFoundError: nothing there; the message lists what is.
    """
    root = Path(root)
    if experiment is not None:
        match = _AT_VERSION.match(experiment)
        if match:
            if version is not None and version != int(match["version"]):
                raise ValueError(f"{experiment!r} names v{match['version']} but version={version} was given")
            experiment, version = match["experiment"], int(match["version"])
        check_name(experiment, "experiment")
        folder = root / experiment
        if not layout.versions(folder):
            raise RunNotFoundError(_nothing_there(root, experiment))
        return folder, version
    match = layout.VERSION_NAME.match(root.name)
    if match and layout.is_real_dir(root):
        if version is not None and version != int(match[1]):
            raise ValueError(f"{root} is v{match[1]} but version={version} was given")
        return root.parent, int(match[1])
    if layout.versions(root):
        return root, version
    raise RunNotFoundError(
        f"{root} holds no runs: give a run folder (…/<experiment>/v<N>), an experiment folder holding v<N> "
        "folders, or a root and an experiment name"
    )


def _nothing_there(root: Path, experiment: str) -> str:
    from crystallize_artifacts.listing import experiment_dirs

    if not root.is_dir():
        return f"no experiment {experiment!r}: the root {root} does not exist"
    found = [p.name for p in experiment_dirs(root)]
    listed = ", ".join(found[:20]) + (" ..." if len(found) > 20 else "") if found else "none"
    return f"no runs of experiment {experiment!r} under {root} (experiments there: {listed})"


def _open(folder: Path, version: int | None) -> LocalRunStore:
    store = LocalRunStore.open_existing(folder, version)
    if store is None:
        found = ", ".join(f"v{v}" for v in layout.versions(folder)) or "none"
        raise RunNotFoundError(f"{folder.name} has no run v{version} (versions: {found})")
    return store


def load_result(root: str | Path, experiment: str | None = None, version: int | None = None) -> Result:
    """The :class:`~crystallize.Result` of a stored run, read from disk.

    ``result.run`` describes the stored run (status as ``crystallize ls``
    shows it, version, location, lineage); ``result.artifacts`` lists the
    manifest's records.

    :param root: the artifact root (``ArtifactPlugin(root_dir=...)``), or an
        experiment or run folder when ``experiment`` is omitted.
    :param experiment: the experiment's folder name (its name, or its id when
        unnamed); ``"name@vN"`` selects a version.
    :param version: the run version; the latest when ``None``.
    :raises RunNotFoundError: no such run (the message lists what exists).
    :raises DocumentError: a document the result depends on is unreadable.
    """
    folder, version = locate(root, experiment, version)
    return read_run(_open(folder, version))


def load_results(root: str | Path, experiment: str | None = None) -> dict[int, Result]:
    """Every stored version of an experiment: ``{version: Result}``, oldest first."""
    folder, _ = locate(root, experiment)
    return {version: read_run(_open(folder, version)) for version in layout.versions(folder)}


# -- reading one run -----------------------------------------------------------------------------------


def _condition(
    store: LocalRunStore, condition: str, replicates: int | None
) -> tuple[ConditionMetrics, list[ArtifactRecord]]:
    record = store.completed_condition(condition)
    if record is not None:
        n = record.replicates or replicates or 0
        if record.replicate_metrics is not None:
            metrics = ConditionMetrics.from_replicates(n, record.replicate_metrics, record.seeds)
        else:
            if not n:
                n = _guess_replicates(record.metrics)
            metrics = ConditionMetrics.from_flat(n, record.metrics, record.seeds)
        return metrics, []
    finished = store.finished_replicates(condition)
    n = max([replicates or 0, *(r + 1 for r in finished)])
    metrics = ConditionMetrics.from_replicates(
        n,
        {r: rec.metrics for r, rec in finished.items()},
        {r: rec.seed for r, rec in finished.items()},
        missing=[r for r in range(n) if r not in finished],
    )
    return metrics, [a for rec in finished.values() for a in rec.artifacts]


def _guess_replicates(metrics: Mapping[str, list[Any]]) -> int:
    counts = {len(v) for v in metrics.values() if v}
    return min(counts) if counts else 0


def _artifacts(store: LocalRunStore, journaled: list[ArtifactRecord]) -> list[ArtifactRecord]:
    raw = store.read_json_bytes(layout.MANIFEST)
    if raw is not None:
        manifest, _ = documents.parse_manifest(raw, f"{store.location}/{layout.MANIFEST}")
        return [r for r in manifest.artifacts if r.path not in manifest.pruned]
    return journaled  # a run that never closed: what its journals vouch for


def _outcome(store: LocalRunStore) -> Outcome | None:
    raw = store.read_json_bytes(layout.OUTCOME)
    return None if raw is None else parse_outcome(raw, f"{store.location}/{layout.OUTCOME}")


def _upstream(meta: Mapping[str, Any]) -> tuple[Upstream, ...]:
    found = []
    for entry in meta.get("upstream") or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("experiment"), str):
            version = entry.get("version")
            found.append(
                Upstream(
                    experiment=entry["experiment"],
                    experiment_id=entry.get("experiment_id") if isinstance(entry.get("experiment_id"), str) else None,
                    step=str(entry.get("step", "")),
                    artifact=str(entry.get("artifact", "")),
                    version=version if type(version) is int else None,
                    run_id=entry.get("run_id") if isinstance(entry.get("run_id"), str) else None,
                    location=entry.get("location") if isinstance(entry.get("location"), str) else None,
                )
            )
    return tuple(found)


def read_run(store: LocalRunStore) -> Result:
    """Build the :class:`~crystallize.Result` of the run ``store`` opened (read-only)."""
    meta, problem = read_metadata(store)
    if problem is not None:
        raise DocumentError(f"{store.location}/{layout.METADATA}", f"cannot be read: {problem}")
    meta = meta or {}
    source = f"{store.location}/{layout.METADATA}"
    replicates = d.get(meta, "replicates", d.nullable(d.integer(minimum=0)), source, default=None)
    recorded = meta.get("conditions")
    names = [c for c in recorded if isinstance(c, str)] if isinstance(recorded, list) else []
    on_disk = condition_folders(store.dir)
    names = list(dict.fromkeys([*names, *on_disk]))
    if BASELINE in names:
        names.remove(BASELINE)
    conditions: dict[str, ConditionMetrics] = {}
    journaled: list[ArtifactRecord] = []
    for name in [BASELINE, *names]:
        if name == BASELINE or name in on_disk or meta:
            metrics, records = _condition(store, name, replicates)
            conditions[name] = metrics
            journaled.extend(records)
    outcome = _outcome(store)
    errors: dict[str, dict[int, ReplicateError]] = {}
    for error in outcome.errors if outcome else ():
        errors.setdefault(error.condition, {})[error.replicate] = error
    hypotheses = [
        HypothesisResult(
            name=h["name"], results=h["results"], ranking=h["ranking"], correction=h["correction"], alpha=h["alpha"]
        )
        for h in (outcome.hypotheses if outcome else ())
    ]
    all_marked = all(not m.missing for m in conditions.values()) if conditions else None
    status = run_status(
        meta.get("status") if isinstance(meta.get("status"), str) else None, store.dir, all_marked and not errors
    )
    baseline = conditions.pop(BASELINE)
    run = Run(
        experiment_id=str(meta.get("id") or store.experiment_dir.name),
        experiment_name=meta.get("name") if isinstance(meta.get("name"), str) else None,
        key=store.experiment_dir.name,
        run_id=str(meta.get("run_id") or ""),
        strategy=str(meta.get("strategy") or "rerun"),
        replicates=replicates or max((m.replicates for m in (baseline, *conditions.values())), default=0),
        conditions=(BASELINE, *conditions),
        fingerprints={k: v for k, v in (meta.get("fingerprints") or {}).items() if isinstance(v, str)},
        upstream=_upstream(meta),
        started_at=str(meta.get("created_at") or ""),
        store=store,
        status=status,
    )
    return Result(
        metrics=ExperimentMetrics(baseline=baseline, treatments=conditions, hypotheses=hypotheses),
        errors=errors,
        artifacts=_artifacts(store, journaled),
        run=run,
    )
