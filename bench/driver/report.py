"""Machine facts, the printed tables and the JSON document."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from typing import Any

from driver.stats import Summary, WorkloadRecords
from driver.targets import Verdict


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }
    if hasattr(os, "getloadavg"):
        facts["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return facts


def framework_versions(records: dict[str, WorkloadRecords]) -> dict[str, Any]:
    """Versions as reported by the measured processes themselves."""
    out: dict[str, Any] = {}
    for workload in records.values():
        for name, fw in workload.frameworks.items():
            if fw.version:
                out.setdefault(name, {"version": fw.version, "python": fw.python})
            if "distributions" in fw.info:
                out.setdefault(name, {})["distributions"] = fw.info["distributions"]
    return out


def load_range(records: dict[str, WorkloadRecords]) -> str:
    loads = [x for w in records.values() for fw in w.frameworks.values() for xs in fw.loads.values() for x in xs]
    if not loads:
        return "unknown"
    return f"{min(loads):.2f}-{max(loads):.2f} (median {sorted(loads)[len(loads) // 2]:.2f})"


def legend(records: dict[str, WorkloadRecords], work: list[Any]) -> str:
    """One line per workload: its shape, and notes the scripts reported (e.g. how Dask ran)."""
    lines = []
    for workload in work:
        lines.append(f"{workload.name}: {workload.summary}")
        if workload.note:
            lines.append(f"    note: {workload.note}")
        ours = records.get(workload.name)
        fw = ours.frameworks.get("ours") if ours else None
        if fw is not None and isinstance(fw.info.get("dask"), str):
            lines.append(f"    dask: {fw.info['dask']}")
    return "\n".join(lines)


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    ax = abs(x)
    if ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def cell(s: Summary | None) -> str:
    if s is None:
        return "-"
    if s.n == 1:
        return fmt(s.median)
    return f"{fmt(s.median)} [{fmt(s.low)}-{fmt(s.high)}]"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def measurements_table(records: dict[str, WorkloadRecords]) -> str:
    rows = []
    for workload in records.values():
        ours, cml = workload.frameworks.get("ours"), workload.frameworks.get("cml")
        names: list[str] = []
        for fw in (ours, cml):
            for m in fw.metrics() if fw else []:
                if m not in names:
                    names.append(m)
        for metric in names:
            rows.append(
                [
                    workload.name,
                    metric,
                    cell(ours.summary(metric) if ours else None),
                    cell(cml.summary(metric) if cml else None),
                    cell(workload.paired_ratio(metric)),
                ]
            )
    header = ["workload", "metric", "ours median [min-max]", "crystallize-ml median [min-max]", "theirs/ours"]
    return table(header, rows)


def targets_table(verdicts: list[Verdict]) -> str:
    rows = [
        [v.target.workload, v.target.goal, f"{v.target.op} {v.target.threshold:g}", fmt(v.value), v.status, v.basis]
        for v in verdicts
    ]
    return table(["workload", "target", "needs", "value", "status", "basis"], rows)


def errors_text(records: dict[str, WorkloadRecords]) -> str:
    lines = []
    for workload in records.values():
        for name, fw in workload.frameworks.items():
            for error in fw.errors:
                lines.append(f"[{workload.name} / {name}] {error}")
    return "\n".join(lines)


def document(
    *,
    facts: dict[str, Any],
    config: dict[str, Any],
    records: dict[str, WorkloadRecords],
    verdicts: list[Verdict],
    elapsed_s: float,
) -> dict[str, Any]:
    return {
        "machine": facts,
        "frameworks": framework_versions(records),
        "config": config,
        "workloads": {name: r.as_json() for name, r in records.items()},
        "targets": [v.as_json() for v in verdicts],
        "elapsed_s": elapsed_s,
    }
