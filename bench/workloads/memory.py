"""memory: peak memory of a run of ``calls`` step calls, in a fresh process.

One condition, ``calls / 10`` replicates x 10 trivial steps (``data + 1``),
ArtifactPlugin active, no metrics recorded — so whatever memory grows with
the number of calls is the framework's own bookkeeping, not user data.

Two probes, each in its own process (the driver runs one per size):

- ``rss``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` — the process's peak
  resident set (interpreter, imports and the run), read before the run
  (after import and warm-up) and after it.
- ``tracemalloc``: the peak of Python-level allocations traced from just
  before the experiment is built to the end of its run (excludes the
  interpreter and imports; tracing slows the run down).
"""

from __future__ import annotations

import resource
import sys

import _common

STEPS = 10


def add_one(data, ctx):
    return data + 1


def run(fw, root, replicates: int) -> None:
    step = fw.pipeline_step()(add_one)
    exp = fw.Experiment(
        datasource=_common.constant_source(fw),
        pipeline=fw.Pipeline([step() for _ in range(STEPS)]),
        plugins=[fw.ArtifactPlugin(root_dir=str(root))],
        replicates=replicates,
        name="memory",
    )
    result = exp.run()
    _common.check(not result.errors, f"replicates failed: {result.errors}")
    del result, exp


def peak_rss_mb() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, required=True, help="step calls (a multiple of 10)")
    p.add_argument("--probe", choices=("rss", "tracemalloc"), default="rss")
    p.add_argument("--label", default="", help="prefix of the reported names (e.g. small_, large_)")
    args = p.parse_args()
    fw = _common.framework(args.framework)
    replicates = max(1, args.calls // STEPS)
    values: dict[str, float] = {}

    with _common.scratch_dir(args.tmp_dir, "memory") as scratch:
        _common.warm_up(fw, scratch)
        if args.probe == "rss":
            before = peak_rss_mb()
            run(fw, scratch / "run", replicates)
            after = peak_rss_mb()
            values[f"{args.label}rss_peak_mb"] = after
            values[f"{args.label}rss_growth_mb"] = after - before
        else:
            import tracemalloc

            tracemalloc.start()
            run(fw, scratch / "run", replicates)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            values[f"{args.label}tracemalloc_peak_kib"] = peak / 1024

    _common.emit("memory", fw.name, values, {"calls": replicates * STEPS, "replicates": replicates})


if __name__ == "__main__":
    main()
