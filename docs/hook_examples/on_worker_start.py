"""Set up, once per worker process, what every replicate there shares (here: the process's id)."""

import os

from crystallize import Experiment, ParallelExecution, data_source, pipeline_step
from crystallize.plugin import hookimpl


class PerProcess:
    plugin_name = "per-process"

    def __init__(self):
        self.started_in = None  # set on each worker's copy of the plugin

    @hookimpl
    def on_worker_start(self):
        self.started_in = os.getpid()  # a database client, a tracer, a logger...

    @hookimpl
    def before_replicate(self, ctx):
        ctx["set_up_by"] = self.started_in


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def check(data, ctx):
    ctx.metrics.add("set_up_here", ctx["set_up_by"] == os.getpid())
    return data


if __name__ == "__main__":  # worker processes may import this file
    engine = ParallelExecution(max_workers=2, executor_type="process")
    result = Experiment(numbers(), [check()], plugins=[PerProcess(), engine], replicates=6).run()
    assert result.metrics.baseline.metrics == {"set_up_here": [True] * 6}
