"""step_overhead: what the framework adds around each trivial step call.

An experiment of ``conditions`` conditions (the baseline and the rest as
treatments) x ``replicates`` replicates x ``steps`` steps, each step being
``data + 1``, runs with ArtifactPlugin active (root in a scratch folder; the
steps write no artifact). The same calls — the datasource function, then the
step functions in order, per condition and replicate — are also made by a
plain Python loop. Then::

    per-step cost = (experiment wall time - plain loop time) / step calls

The timed region is the experiment's construction plus ``run()``; it is
timed ``repeats`` times (each a new experiment in a new folder), alternating
with the plain loop, and the medians are reported. A warm-up
experiment runs first in the same process (see ``_common.warm_up``), so the
time excludes imports, lazy imports and our entry-point discovery; the time
of the same experiment run cold (first in the process) is reported as
``cold_run_s``, for information.
"""

from __future__ import annotations

import statistics

import _common
from _common import now


def add_one(data, ctx):
    return data + 1


def zero(ctx):
    return 0


def plain_loop(conditions: list[str], replicates: int, steps: int) -> tuple[float, int]:
    """The same calls without a framework; returns (seconds, last data)."""
    fns = [add_one] * steps
    data = None
    start = now()
    for condition in conditions:
        for replicate in range(replicates):
            ctx = {"condition": condition, "replicate": replicate}
            data = zero(ctx)
            for fn in fns:
                data = fn(data, ctx)
    return now() - start, data


def build(fw, root, conditions: int, replicates: int, steps: int):
    step = fw.pipeline_step()(add_one)
    return fw.Experiment(
        datasource=fw.data_source(zero)(),
        pipeline=fw.Pipeline([step() for _ in range(steps)]),
        plugins=[fw.ArtifactPlugin(root_dir=str(root))],
        treatments=_common.treatments(fw, conditions),
        replicates=replicates,
        name="step_overhead",
    )


def timed_run(fw, root, conditions: int, replicates: int, steps: int) -> float:
    start = now()
    result = build(fw, root, conditions, replicates, steps).run()
    elapsed = now() - start
    _common.check(not result.errors, f"replicates failed: {result.errors}")
    _common.check(len(result.metrics.treatments) == conditions - 1, "a treatment is missing from the result")
    return elapsed


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--conditions", type=int, default=4)
    p.add_argument("--replicates", type=int, default=300)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="timed runs (median reported)")
    args = p.parse_args()
    fw = _common.framework(args.framework)
    shape = (args.conditions, args.replicates, args.steps)
    calls = args.conditions * args.replicates * args.steps
    names = ["baseline", *(f"t{i}" for i in range(1, args.conditions))]

    with _common.scratch_dir(args.tmp_dir, "steps") as scratch:
        cold = timed_run(fw, scratch / "cold", *shape)
        _common.warm_up(fw, scratch)
        plain_times, runs = [], []
        for i in range(args.repeats):
            elapsed, last = plain_loop(names, args.replicates, args.steps)
            _common.check(last == args.steps, "the plain loop computed the wrong value")
            plain_times.append(elapsed)
            runs.append(timed_run(fw, scratch / f"warm-{i}", *shape))

    plain, run = statistics.median(plain_times), statistics.median(runs)
    _common.emit(
        "step_overhead",
        fw.name,
        {
            "per_step_us": (run - plain) / calls * 1e6,
            "run_s": run,
            "plain_s": plain,
            "ratio_to_plain": run / plain,
            "cold_run_s": cold,
        },
        {"step_calls": calls, "conditions": args.conditions, "replicates": args.replicates, "steps": args.steps},
    )


if __name__ == "__main__":
    main()
