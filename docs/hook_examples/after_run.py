"""Say how each run ended — also when it failed — once everything is done."""

from crystallize import Experiment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class RunReport:
    plugin_name = "run-report"

    def __init__(self):
        self.lines = []

    @hookimpl
    def after_run(self, run, result):
        failed = sum(len(replicates) for replicates in result.errors.values())
        self.lines.append(f"{run.key}: {run.status}, {failed} failed replicate(s)")


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def fragile(data, ctx, fail=False):
    if fail:
        raise RuntimeError("broken")
    return data


report = RunReport()
Experiment(numbers(), [fragile()], plugins=[report], name="fine").run()
Experiment(numbers(), [fragile(fail=True)], plugins=[report], name="broken", replicates=2).run()
assert report.lines == ["fine: completed, 0 failed replicate(s)", "broken: failed, 2 failed replicate(s)"]
