"""Benchmark of stored results: listing a large root, and Crystallize against MLflow 3.

    python bench/results_bench.py                 # 3 rounds (about 6 minutes on 2 cores; MLflow is the slow side)
    python bench/results_bench.py --rounds 1
    python bench/results_bench.py --skip-mlflow   # ours only (no MLflow venv)
    python bench/results_bench.py --quick         # reduced sizes, 1 round: a smoke test
    python bench/results_bench.py --json out.json

Two workloads (``bench/workloads/results_listing.py`` and
``results_vs_mlflow.py``), each measured in fresh processes, ours and
MLflow's alternating within every round. MLflow 3 lives in its own venv,
``bench/.venvs/mlflow-3`` (created on first use with pip, like the
crystallize-ml venv of ``bench/run.py``; git-ignored). Ratios are paired:
each round's MLflow number over the same round's number for ours, median
over rounds. The targets are the issue's; a target not met does not change
the exit code, a failed measurement (crash or sanity check) exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from driver import measure, venvs  # noqa: E402

FULL = {"listing": ("--experiments", "10", "--versions", "100"), "mlflow": ("--replicates", "100")}
QUICK = {
    "listing": ("--experiments", "2", "--versions", "10", "--repeats", "2"),
    "mlflow": ("--replicates", "10"),
}

#: (what, measured value, comparison, bound, based on)
TARGETS = [
    ("crystallize ls, 1,000 runs x 10 conditions (process)", "listing.ls_s", "<", 0.5, "ours"),
    ("ls reads O(runs): files and folders opened per run", "listing.opens_per_run", "<=", 3.0, "ours"),
    ("logging 400 replicates: MLflow / ours", "ratio.log_s", ">=", 20.0, "paired ratio"),
    ("ls: MLflow search_runs + downloads / ours", "ratio.ls_s", ">=", 100.0, "paired ratio"),
    ("show: MLflow search_runs + downloads / ours", "ratio.show_s", ">=", 100.0, "paired ratio"),
    ("load_result: MLflow search_runs + downloads / ours", "ratio.load_s", ">=", 100.0, "paired ratio"),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--skip-mlflow", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--tmp-dir", type=Path, default=None)
    p.add_argument("--venvs-dir", type=Path, default=HERE / ".venvs")
    args = p.parse_args()
    sizes = QUICK if args.quick else FULL
    rounds = 1 if args.quick else args.rounds
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    ours = venvs.ours()
    theirs, how = (None, "skipped (--skip-mlflow)") if args.skip_mlflow else venvs.mlflow(args.venvs_dir, log=log)
    if theirs is None:
        log(f"MLflow is not measured: {how}")
    env = measure.environment(args.venvs_dir / "pycache")
    records: dict[str, list[dict[str, float]]] = {"listing": [], "ours": [], "mlflow": []}
    errors: list[str] = []
    scratch_parent = args.tmp_dir or Path(tempfile.gettempdir())
    for round_no in range(1, rounds + 1):
        plan = [("listing", ours, "results_listing.py", sizes["listing"])]
        plan.append(("ours", ours, "results_vs_mlflow.py", sizes["mlflow"]))
        if theirs is not None:
            plan.append(("mlflow", theirs, "results_vs_mlflow.py", sizes["mlflow"]))
        for label, interpreter, script, extra in plan:
            scratch = Path(tempfile.mkdtemp(prefix="crystallize-results-bench-", dir=scratch_parent))
            m = measure.run_script(
                interpreter, label, script, extra, round_no=round_no, scratch=scratch, env=env, timeout_s=1800
            )
            if m.error:
                errors.append(f"{label} round {round_no}: {m.error}")
                log(f"[{label} {round_no}/{rounds}] ERROR {m.error}")
            else:
                records[label].append(m.values)
                log(f"[{label} {round_no}/{rounds}] {m.wall_s:6.1f}s")

    def median(label: str, key: str) -> float | None:
        found = [r[key] for r in records[label] if key in r]
        return statistics.median(found) if found else None

    ratios: dict[str, float | None] = {}
    for key in ("log_s", "ls_s", "load_s", "show_s", "read_s"):
        their_key = "log_s" if key == "log_s" else "read_s"
        paired = [m[their_key] / o[key] for o, m in zip(records["ours"], records["mlflow"]) if o.get(key)]
        ratios[key] = statistics.median(paired) if paired else None

    lines = [
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}"
        if hasattr(os, "getloadavg")
        else "",
        f"MLflow: {how}",
        "",
        "| measurement | ours (median) | MLflow 3 (median) | MLflow / ours |",
        "| --- | --- | --- | --- |",
    ]
    for key, label in (
        ("log_s", "log 400 replicates (3 metrics + 1 KiB artifact each), s"),
        ("ls_s", "ls: list_runs of the root, s"),
        ("load_s", "load_result, s"),
        ("show_s", "show: load_result + summary table, s"),
        ("read_s", "read back: ours ls + load + show; MLflow search_runs + 400 downloads, s"),
        ("artifacts_s", "ours: read the 400 artifacts' bytes, s (information)"),
    ):
        o = median("ours", key)
        t = median("mlflow", "log_s" if key == "log_s" else "read_s") if key != "artifacts_s" else None
        r = ratios.get(key)
        lines.append(f"| {label} | {_n(o)} | {_n(t)} | {_n(r)} |")
    lines += ["", "| listing a root (ours) | median |", "| --- | --- |"]
    for key, label in (
        ("runs", "runs (10 conditions each)"),
        ("ls_s", "crystallize ls (process), s"),
        ("ls_cpu_s", "crystallize ls, CPU s"),
        ("ls_json_s", "crystallize ls --json (process), s"),
        ("list_runs_s", "list_runs (in process), s"),
        ("show_s", "crystallize show (process), s"),
        ("show_cpu_s", "crystallize show, CPU s"),
        ("load_show_s", "load_result + summary (in process), s"),
        ("opens_per_run", "files and folders opened per run by list_runs"),
    ):
        lines.append(f"| {label} | {_n(median('listing', key))} |")
    verdicts = []
    lines += ["", "| target | needs | found | status |", "| --- | --- | --- | --- |"]
    for what, key, op, bound, basis in TARGETS:
        group, name = key.split(".")
        value = ratios.get(name) if group == "ratio" else median("listing", name)
        met = (
            None
            if value is None
            else (value < bound if op == "<" else value <= bound if op == "<=" else value >= bound)
        )
        status = "n/a" if met is None else "met" if met else "NOT met"
        verdicts.append({"target": what, "needs": f"{op} {bound:g}", "found": value, "status": status, "basis": basis})
        lines.append(f"| {what} | {op} {bound:g} | {_n(value)} | **{status}** |")
    print("\n".join(lines))
    if args.json:
        document = {"records": records, "ratios": ratios, "targets": verdicts, "errors": errors, "mlflow": how}
        args.json.write_text(json.dumps(document, indent=2))
    return 1 if errors else 0


def _n(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


if __name__ == "__main__":
    raise SystemExit(main())
