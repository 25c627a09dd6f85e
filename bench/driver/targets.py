"""The issue's targets and how each is judged from the summaries.

Two kinds:

- ``ours``: a number of ours (median over rounds) against a threshold;
- ``ratio``: crystallize-ml's number over ours, paired per round (median).
  When crystallize-ml was not measured (``--skip-cml`` or no venv) and the
  issue gives its number, that reference is used instead and the row says
  so; without a reference the row is ``n/a``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from driver.stats import WorkloadRecords

OPS = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Target:
    workload: str
    goal: str  # in words, for the table
    kind: str  # "ours" or "ratio"
    metric: str
    op: str
    threshold: float
    reference: float | None = None  # crystallize-ml's value from the issue (ratio targets)
    unit: str = ""


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float | None
    status: str  # "met", "NOT met" or "n/a"
    basis: str  # where the value came from

    def as_json(self) -> dict[str, Any]:
        t = self.target
        return {
            "workload": t.workload,
            "goal": t.goal,
            "metric": t.metric,
            "kind": t.kind,
            "op": t.op,
            "threshold": t.threshold,
            "value": self.value,
            "status": self.status,
            "basis": self.basis,
        }


TARGETS = (
    Target("step_overhead", "per-step cost >= 20x lower than crystallize-ml", "ratio", "per_step_us", ">=", 20.0, 32.0),
    Target("artifact_writes", "artifact writes <= 1.5x plain Python", "ours", "ratio_to_plain", "<=", 1.5),
    Target("resume_noop", "no-op resume no slower than crystallize-ml", "ratio", "resume_ms", ">=", 1.0, 9.7),
    Target("import", "`import crystallize` >= 2x faster than crystallize-ml", "ratio", "import_ms", ">=", 2.0),
    Target("parallel", "2 worker processes >= 1.7x faster than serial", "ours", "process_speedup", ">=", 1.7),
    Target("parallel", "DaskExecution(2 workers) >= 1.5x faster than serial", "ours", "dask_speedup", ">=", 1.5),
    Target("memory", "peak RSS at the large size <= 1.2x the small size's", "ours", "rss_ratio", "<=", 1.2),
    Target("progress_overhead", "progress bars slow a ~1 s run by <= 2% (on / off)", "ours", "busy_ratio", "<=", 1.02),
    Target(
        "stream_write", "1 GiB through artifact.open('wb') <= 1.15x plain writes", "ours", "ratio_to_plain", "<=", 1.15
    ),
    Target("stream_write", "streaming 1 GiB raises peak memory < 64 MiB", "ours", "peak_increase_mb", "<=", 64.0),
    Target("s3_writes", "400 x 64 KiB to S3 <= 1.3x direct s3fs uploads", "ours", "ratio_to_direct", "<=", 1.3),
)


def judge(target: Target, records: WorkloadRecords | None) -> Verdict:
    if records is None:
        return Verdict(target, None, "n/a", "workload not run")
    ours = records.frameworks.get("ours")
    mine = ours.summary(target.metric) if ours else None
    if mine is None:
        return Verdict(target, None, "n/a", f"ours did not report {target.metric}")
    if target.kind == "ours":
        value, basis = mine.median, f"ours, median of {mine.n} round(s)"
    else:
        paired = records.paired_ratio(target.metric)
        if paired is not None:
            value, basis = paired.median, f"paired per round, median of {paired.n}"
        elif target.reference is not None:
            value = target.reference / mine.median
            basis = f"crystallize-ml not measured: vs the issue's {target.reference:g} for it"
        else:
            return Verdict(target, None, "n/a", "crystallize-ml not measured")
    status = "met" if OPS[target.op](value, target.threshold) else "NOT met"
    return Verdict(target, value, status, basis)


def judge_all(records: dict[str, WorkloadRecords]) -> list[Verdict]:
    """Every target of the workloads that ran (all of them unless ``--only`` was given)."""
    return [judge(t, records[t.workload]) for t in TARGETS if t.workload in records]
