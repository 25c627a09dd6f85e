"""results_listing: ``crystallize ls`` and ``show`` on a root of many runs (ours only).

Shape: ``--experiments`` x ``--versions`` runs (default 10 x 100 = 1,000),
each of ``--conditions`` conditions (default 10: baseline + 9 treatments) x
``--replicates`` replicates with two metrics. One real run per experiment is
made with ``ArtifactPlugin``; its folder is then copied to the other
versions (byte-identical real runs, made quickly).

Timed, medians of ``--repeats``:

- ``ls_s``: ``crystallize ls --root R`` as a fresh process (what a user waits for),
  and ``ls_cpu_s`` its CPU time (user + system: less sensitive to a busy machine);
- ``ls_json_s``: ``crystallize ls --root R --json``;
- ``list_runs_s``: :func:`crystallize_artifacts.list_runs` in-process (no interpreter start);
- ``show_s``: ``crystallize show EXP@v50`` as a fresh process; ``load_show_s``
  in-process (``load_result`` and the summary table);
- ``opens_per_run``: files and folders opened by ``list_runs``, per run
  (``os.open`` and ``os.scandir`` calls counted): listing must cost O(runs)
  small reads, not O(runs x conditions).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_root(root: Path, experiments: int, versions: int, conditions: int, replicates: int) -> None:
    from crystallize import Experiment, Pipeline, Treatment, data_source, pipeline_step
    from crystallize_artifacts import ArtifactPlugin

    @data_source
    def source(ctx):
        return ctx["replicate"]

    @pipeline_step()
    def step(x, ctx, delta=0.0):
        ctx.metrics.add("accuracy", 0.5 + delta + x / 100)
        ctx.metrics.add("loss", 1.0 - delta)
        return x

    for e in range(experiments):
        Experiment(
            source(),
            Pipeline([step()]),
            plugins=[ArtifactPlugin(root_dir=root, versioned=True)],
            treatments=[Treatment(f"t{i}", {"delta": i / 100}) for i in range(1, conditions)],
            replicates=replicates,
            name=f"exp{e:02d}",
        ).run()
        first = root / f"exp{e:02d}" / "v0"
        for v in range(1, versions):
            shutil.copytree(first, root / f"exp{e:02d}" / f"v{v}")


CPU: list[float] = []  # CPU seconds (user + system) of each timed child process


def timed_process(command: list[str], env: dict[str, str], repeats: int) -> tuple[float, str]:
    import resource

    times, out = [], ""
    CPU.clear()
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-500:]}")
        out = done.stdout
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=["ours"], default="ours")
    p.add_argument("--tmp-dir", default=None)
    p.add_argument("--experiments", type=int, default=10)
    p.add_argument("--versions", type=int, default=100)
    p.add_argument("--conditions", type=int, default=10)
    p.add_argument("--replicates", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="crystallize-bench-listing-", dir=args.tmp_dir))
    try:
        root = scratch / "data"
        make_root(root, args.experiments, args.versions, args.conditions, args.replicates)
        runs = args.experiments * args.versions
        executable = Path(sys.executable).with_name("crystallize")
        env = dict(os.environ)
        ls_s, out = timed_process([str(executable), "ls", "--root", str(root)], env, args.repeats)
        ls_cpu_s = statistics.median(CPU)
        if len(out.strip().splitlines()) != runs + 1:
            raise SystemExit(f"sanity check failed: ls listed {len(out.strip().splitlines()) - 1} runs, not {runs}")
        ls_json_s, out = timed_process([str(executable), "ls", "--root", str(root), "--json"], env, args.repeats)
        listed = json.loads(out)
        if len(listed) != runs or any(len(r["conditions"]) != args.conditions for r in listed):
            raise SystemExit("sanity check failed: ls --json lost runs or conditions")
        target = f"exp00@v{args.versions // 2}"
        show_s, out = timed_process([str(executable), "show", target, "--root", str(root)], env, args.repeats)
        show_cpu_s = statistics.median(CPU)
        if f"exp00 v{args.versions // 2} (completed)" not in out:
            raise SystemExit(f"sanity check failed: show printed {out[:200]!r}")

        from crystallize_artifacts import list_runs, load_result

        counts = {"open": 0, "scandir": 0}
        real_open, real_scandir = os.open, os.scandir

        def counting_open(*a, **k):
            counts["open"] += 1
            return real_open(*a, **k)

        def counting_scandir(*a, **k):
            counts["scandir"] += 1
            return real_scandir(*a, **k)

        os.open, os.scandir = counting_open, counting_scandir
        try:
            list(list_runs(root))
        finally:
            os.open, os.scandir = real_open, real_scandir
        opens_per_run = (counts["open"] + counts["scandir"]) / runs
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            found = list(list_runs(root))
            times.append(time.perf_counter() - start)
        if len(found) != runs:
            raise SystemExit("sanity check failed: list_runs lost runs")
        show_times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            text = str(load_result(root, target).summary())
            show_times.append(time.perf_counter() - start)
        if "t9" not in text:
            raise SystemExit("sanity check failed: the summary lacks a treatment")
        values = {
            "ls_s": ls_s,
            "ls_cpu_s": ls_cpu_s,
            "show_cpu_s": show_cpu_s,
            "ls_json_s": ls_json_s,
            "list_runs_s": statistics.median(times),
            "show_s": show_s,
            "load_show_s": statistics.median(show_times),
            "opens_per_run": opens_per_run,
            "runs": runs,
        }
        print(json.dumps({"workload": "results_listing", "framework": "ours", "values": values, "info": {}}))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
