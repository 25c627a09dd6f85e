"""A program run by the terminal tests: one experiment, some replicates fail, then a line on stdout.

Usage: ``python progress_child.py ENGINE`` with ENGINE ``serial``, ``thread`` or ``process``. The
progress plugin is the installed one, deciding by itself whether to draw.
"""

from __future__ import annotations

import sys
import time

from crystallize import Experiment, ParallelExecution, Pipeline, Treatment, data_source, pipeline_step


@data_source
def replicate_number(ctx):
    return ctx["replicate"]


@pipeline_step()
def work(data, ctx):
    time.sleep(0.08)
    if ctx["condition"] == "flaky" and data in (1, 4):
        raise RuntimeError(f"replicate {data} fails on purpose")
    ctx.metrics.add("value", data)
    return data


if __name__ == "__main__":
    engine = sys.argv[1]
    plugins = [] if engine == "serial" else [ParallelExecution(max_workers=2, executor_type=engine)]
    exp = Experiment(
        replicate_number(),
        Pipeline([work()]),
        plugins=plugins,
        name="pty_demo",
        treatments=[Treatment("flaky", {"level": 1})],
        replicates=12,
    )
    result = exp.run()
    print("failed replicates:", sum(len(errors) for errors in result.errors.values()))
