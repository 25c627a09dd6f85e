"""Report each failure with the live exception, where it happened (a debugger could start here)."""

from crystallize import Experiment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class ReportFailures:
    plugin_name = "report-failures"

    def __init__(self):
        self.reports = []

    @hookimpl
    def on_replicate_error(self, ctx, step, error):
        where = step.step_name if step is not None else "outside the steps"
        self.reports.append(f"{ctx['condition']}/{ctx['replicate']} failed in {where}: {error!r}")


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def invert(data, ctx):
    ctx.metrics.add("inverse", 1 / (ctx["replicate"] - 1))  # replicate 1 divides by zero
    return data


reports = ReportFailures()
result = Experiment(numbers(), [invert()], plugins=[reports], replicates=3).run()
assert reports.reports == ["baseline/1 failed in invert: ZeroDivisionError('division by zero')"]
assert result.metrics.baseline.metrics == {"inverse": [-1.0, 1.0]}  # the other replicates carried on
