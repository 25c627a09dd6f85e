"""Microbenchmark: what a per-replicate hook with several implementations costs.

Not one of the driver's workloads (it compares our own dispatch modes, not
the two frameworks); run it directly with the workspace's Python::

    python bench/micro/replicate_dispatch.py            # about 20 seconds
    python bench/micro/replicate_dispatch.py --json     # one JSON line instead of the table

It prints two measurements, each for hooks called the default way
(``direct``: the core's own calls where it can) and with every call through
pluggy (``pluggy``), with 1, 2 and 3 plain implementations of
``on_replicate_outcome``:

- **hook call**: one call of the hook through the core's hook table, in
  nanoseconds (the fastest of 30 timings, interleaved between the modes);
- **per replicate**: an experiment of 1 condition x ``--replicates``
  replicates of one trivial step, no store, minus a plain Python loop making
  the same calls (the datasource, the step, each counter), divided by the replicates, in microseconds (fastest of
  ``--repeats`` runs, which alternate between modes and counts; the median
  is shown too). ``SeedPlugin`` is on (as by default), so
  ``before_replicate`` is called too.

Installed plugins are not loaded (``installed_plugins_only``), so the counts
are exactly the ones listed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import timeit

from crystallize import Experiment, Pipeline, data_source, hookimpl, pipeline_step
from crystallize._dispatch import Hooks
from crystallize._registry import build_manager, set_direct_calls
from crystallize.testing import installed_plugins_only


class Counter:
    """Counts outcomes, as a progress display would."""

    def __init__(self, name: str) -> None:
        self.plugin_name = name
        self.count = 0

    @hookimpl
    def on_replicate_outcome(self, outcome):
        self.count += 1


def source(ctx):
    return 0


def step(data, ctx):
    return data + 1


zero = data_source(source)
add_one = pipeline_step()(step)


def plain_loop(implementations: int, replicates: int) -> float:
    """The same calls without a framework: the datasource, the step, each counter."""
    counters = [Counter(f"counter-{i}") for i in range(implementations)]
    start = time.perf_counter()
    for replicate in range(replicates):
        ctx = {"condition": "baseline", "replicate": replicate}
        data = step(source(ctx), ctx)
        for counter in counters:
            counter.on_replicate_outcome(data)
    return time.perf_counter() - start


MODES = ("direct", "pluggy")
COUNTS = (1, 2, 3)


def timed_run(implementations: int, replicates: int) -> float:
    counters = [Counter(f"counter-{i}") for i in range(implementations)]
    experiment = Experiment(zero(), Pipeline([add_one()]), plugins=counters, replicates=replicates)
    start = time.perf_counter()
    result = experiment.run()
    elapsed = time.perf_counter() - start
    assert not result.errors and all(c.count == replicates for c in counters)
    return elapsed


def hook_call_ns(rounds: int = 30, number: int = 20_000) -> dict[tuple[str, int], float]:
    """One call of the hook, per (mode, implementations), in ns: the fastest of ``rounds`` interleaved timings."""
    calls = {}
    for n in COUNTS:
        pm, _ = build_manager([Counter(f"counter-{i}") for i in range(n)])
        for mode in MODES:
            calls[mode, n] = Hooks(pm, direct=mode == "direct").on_replicate_outcome
    kwargs = {"experiment": None, "run": None, "outcome": None}
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for key, call in calls.items():
            best[key] = min(best[key], timeit.timeit(lambda call=call: call(**kwargs), number=number))
    empty = min(timeit.repeat(lambda: None, number=number, repeat=rounds))
    return {key: (seconds - empty) / number * 1e9 for key, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    values: dict[str, float] = {}
    runs: dict[tuple[str, int], list[float]] = {(m, n): [] for m in MODES for n in COUNTS}
    plains: dict[int, list[float]] = {n: [] for n in COUNTS}
    with installed_plugins_only():
        Experiment(zero(), Pipeline([add_one()]), replicates=2).run()  # warm-up
        for (mode, n), nanoseconds in hook_call_ns().items():
            values[f"{mode}_call_{n}_ns"] = nanoseconds
        # Runs alternate between modes and counts, so that a change in the machine's load hits all alike;
        # the fastest run of each is kept (the one least disturbed).
        for _ in range(args.repeats):
            for n in COUNTS:
                plains[n].append(plain_loop(n, args.replicates))
                for mode in MODES:
                    set_direct_calls(mode == "direct")
                    try:
                        runs[mode, n].append(timed_run(n, args.replicates))
                    finally:
                        set_direct_calls(True)
    for (mode, n), times in runs.items():
        plain = min(plains[n])
        values[f"{mode}_replicate_{n}_us"] = (min(times) - plain) / args.replicates * 1e6
        values[f"{mode}_replicate_{n}_median_us"] = (statistics.median(times) - plain) / args.replicates * 1e6
    if args.json:
        sys.stdout.write(json.dumps(values) + "\n")
        return
    print(f"{'implementations':>15} {'mode':>7} {'hook call (ns)':>15} {'per replicate (us)':>19} {'(median)':>9}")
    for n in COUNTS:
        for mode in MODES:
            call, rep = values[f"{mode}_call_{n}_ns"], values[f"{mode}_replicate_{n}_us"]
            median = values[f"{mode}_replicate_{n}_median_us"]
            print(f"{n:>15} {mode:>7} {call:>15.0f} {rep:>19.2f} {median:>9.2f}")


if __name__ == "__main__":
    main()
