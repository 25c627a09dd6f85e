"""Benchmark Crystallize against crystallize-ml 0.27.

Run with the workspace's Python (the one holding our distributions)::

    python bench/run.py [--quick] [--rounds N] [--only NAME ...] [--json OUT] [--skip-cml]

Each workload runs under both frameworks alternately (ours, then
crystallize-ml, round after round), every measurement in a fresh process of
the framework's own interpreter. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR / "workloads")]

from busy import calibrate  # noqa: E402
from driver import plan, report, targets, venvs  # noqa: E402
from driver.measure import environment, run_script  # noqa: E402
from driver.stats import WorkloadRecords  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced sizes and 1 round (a smoke test, < 60 s)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per workload (default 5; --quick: 1)")
    p.add_argument("--only", nargs="+", choices=plan.NAMES, metavar="NAME", help=f"run only these: {plan.NAMES}")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write every number to this JSON file")
    p.add_argument("--skip-cml", action="store_true", help="measure ours only (no crystallize-ml venv needed)")
    p.add_argument("--venvs-dir", type=Path, default=BENCH_DIR / ".venvs", help="where the crystallize-ml venv is kept")
    p.add_argument("--tmp-dir", default=None, help="parent of the scratch folders (default: the system's temp)")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def interpreters(args: argparse.Namespace) -> tuple[dict[str, venvs.Interpreter], str]:
    found = {"ours": venvs.ours()}
    if args.skip_cml:
        return found, "skipped (--skip-cml)"
    cml, how = venvs.crystallize_ml(args.venvs_dir, log=log)
    if cml is None:
        log("=" * 78)
        log(f"crystallize-ml {venvs.CML_VERSION} could not be installed, so ONLY OURS IS MEASURED:\n{how}")
        log("=" * 78)
        return found, f"unavailable: {how}"
    found["cml"] = cml
    return found, how


def prime(found: dict[str, venvs.Interpreter], scratch: Path, env: dict[str, str]) -> None:
    """One untimed import per interpreter, so no measurement pays for writing .pyc files."""
    for interpreter in found.values():
        m = run_script(interpreter, "import", "import_time.py", (), round_no=0, scratch=scratch, env=env, timeout_s=300)
        if m.error:
            log(f"warning: priming {interpreter.framework} failed: {m.error}")


def short(values: dict[str, float], limit: int = 4) -> str:
    return ", ".join(f"{k}={report.fmt(v)}" for k, v in list(values.items())[:limit])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    facts = report.machine_facts()
    load = facts.get("load_average_at_start", [0.0])[0]
    if load > 0.5 * (facts["cpu_count"] or 1):
        log(f"note: the 1-minute load average is {load:.2f} on {facts['cpu_count']} CPU(s); expect noisy numbers")
    found, cml_status = interpreters(args)
    sizes = plan.QUICK if args.quick else plan.FULL
    selected = args.only or list(plan.NAMES)
    iterations = calibrate(sizes.parallel_seconds) if {"parallel", "progress_overhead"} & set(selected) else 0
    work = [w for w in plan.workloads(sizes, iterations) if w.name in selected]

    scratch = Path(tempfile.mkdtemp(prefix="crystallize-bench-", dir=args.tmp_dir))
    env = environment(args.venvs_dir / "pycache")
    records: dict[str, WorkloadRecords] = {}
    try:
        prime(found, scratch, env)
        for workload in work:
            records[workload.name] = wr = WorkloadRecords(workload.name, workload.summary)
            for round_no in range(1, args.rounds + 1):
                for case in workload.cases:
                    for framework in case.frameworks:
                        if framework not in found:
                            continue
                        m = run_script(
                            found[framework],
                            workload.name,
                            workload.script,
                            case.arguments(framework),
                            round_no=round_no,
                            scratch=scratch,
                            env=env,
                            timeout_s=case.timeout_s,
                            prefix=case.prefix,
                        )
                        wr.of(framework).add(m)
                        status = f"FAILED: {m.error.splitlines()[0]}" if m.error else short(m.values)
                        log(f"[{workload.name} {round_no}/{args.rounds}] {framework:4} {m.wall_s:6.1f}s  {status}")
            for fw in wr.frameworks.values():
                fw.derive(workload.derived)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    verdicts = targets.judge_all(records)
    elapsed = time.perf_counter() - started
    config = {
        "quick": args.quick,
        "rounds": args.rounds,
        "workloads": selected,
        "sizes": sizes.__dict__,
        "busy_loop_iterations": iterations,
        "crystallize_ml": cml_status,
        "driver_python": sys.executable,
        "pycache_prefix": env["PYTHONPYCACHEPREFIX"],
    }
    versions = report.framework_versions(records)
    print(f"\nCrystallize benchmark — {facts['date']}")
    print(f"machine: {facts['cpu_count']} CPU(s), {facts['platform']}, Python {facts['python']}")
    for name, label in (("ours", "ours"), ("cml", "crystallize-ml")):
        v = versions.get(name, {})
        dists = ", ".join(v.get("distributions", [])) or v.get("version") or "not measured"
        print(f"{label}: {dists}")
    print(f"crystallize-ml venv: {cml_status.splitlines()[0]}")
    print(f"load average (1 min) before each measurement: {report.load_range(records)}")
    print(f"rounds: {args.rounds}{' (quick sizes)' if args.quick else ''}; values are medians [min-max] over rounds\n")
    print(report.legend(records, work))
    print()
    print(report.measurements_table(records))
    print()
    print(report.targets_table(verdicts))
    if args.quick:
        print("(quick mode: reduced sizes, one round — a smoke test; the verdicts above mean little)")
    errors = report.errors_text(records)
    if errors:
        print("\nFAILED MEASUREMENTS:\n" + errors)
    print(f"\ntotal wall time: {elapsed:.1f} s")
    if args.json:
        doc = report.document(facts=facts, config=config, records=records, verdicts=verdicts, elapsed_s=elapsed)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
