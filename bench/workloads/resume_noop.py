"""resume_noop: ``run(strategy="resume")`` when every condition is already complete.

Set-up (not timed): an experiment of ``conditions`` conditions (the baseline
and the rest as treatments) x ``replicates`` replicates, one step recording
one metric per replicate, runs to completion with ArtifactPlugin. Then a new
Experiment object with the same definition is built and resumed; the timed
region is that construction plus ``run(strategy="resume")``, in the same
process as the set-up (so lazy imports are already paid on both sides). It
is timed ``repeats`` times, each with a new Experiment object; the median is
reported.

Sanity checks: the resumed result holds every condition with one metric
value per replicate, equal to what the set-up run recorded, and the step was
not called again.
"""

from __future__ import annotations

import statistics

import _common
from _common import now

CALLS = 0


def score(data, ctx):
    global CALLS
    CALLS += 1
    ctx.metrics.add("score", data + ctx["replicate"])
    return data


def build(fw, root, conditions: int, replicates: int):
    return fw.Experiment(
        datasource=_common.constant_source(fw, 1),
        pipeline=fw.Pipeline([fw.pipeline_step()(score)()]),
        plugins=[fw.ArtifactPlugin(root_dir=str(root))],
        treatments=_common.treatments(fw, conditions),
        replicates=replicates,
        name="resume_noop",
    )


def metrics_of(result) -> dict[str, list]:
    found = {"baseline": list(result.metrics.baseline.metrics.get("score", []))}
    for name, metrics in result.metrics.treatments.items():
        found[name] = list(metrics.metrics.get("score", []))
    return found


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--conditions", type=int, default=200)
    p.add_argument("--replicates", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="timed resumes (median reported)")
    args = p.parse_args()
    fw = _common.framework(args.framework)

    with _common.scratch_dir(args.tmp_dir, "resume") as scratch:
        _common.warm_up(fw, scratch)
        root = scratch / "root"
        start = now()
        first = build(fw, root, args.conditions, args.replicates).run()
        setup = now() - start
        _common.check(not first.errors, f"the set-up run failed: {first.errors}")
        expected = metrics_of(first)
        _common.check(len(expected) == args.conditions, "the set-up run lacks conditions")
        calls_before = CALLS

        times = []
        for _ in range(args.repeats):
            start = now()
            resumed = build(fw, root, args.conditions, args.replicates).run(strategy="resume")
            times.append(now() - start)
            found = metrics_of(resumed)
            _common.check(found == expected, "the resumed metrics differ from the completed run's")
        elapsed = statistics.median(times)

    _common.check(calls_before == CALLS, f"resume ran {CALLS - calls_before} step call(s); nothing was left to do")
    _common.check(all(len(v) == args.replicates for v in found.values()), "a condition lacks some replicates' metrics")
    _common.emit(
        "resume_noop",
        fw.name,
        {
            "resume_ms": elapsed * 1e3,
            "per_condition_us": elapsed / args.conditions * 1e6,
            "setup_run_s": setup,
        },
        {"conditions": args.conditions, "replicates": args.replicates},
    )


if __name__ == "__main__":
    main()
