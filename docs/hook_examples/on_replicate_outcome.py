"""A progress line: every finished (condition, replicate), whichever engine ran it, in the main process."""

from crystallize import Experiment, ParallelExecution, Treatment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class Progress:
    plugin_name = "progress-line"

    def __init__(self):
        self.runs = {}  # {run_id: [done, failed]}: one object serves every run

    @hookimpl
    def on_replicate_outcome(self, run, outcome):
        counts = self.runs.setdefault(run.run_id, [0, 0])
        counts[0 if outcome.ok else 1] += 1
        total = len(run.conditions) * run.replicates
        print(f"\r{counts[0]} done, {counts[1]} failed of {total}", end="", flush=True)


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def total(data, ctx, scale=1):
    if scale == 0 and ctx["replicate"] == 2:
        raise RuntimeError("no scale")
    ctx.metrics.add("total", sum(data) * scale)
    return data


if __name__ == "__main__":
    progress = Progress()
    engine = ParallelExecution(max_workers=2, executor_type="process")
    experiment = Experiment(
        numbers(), [total()], plugins=[progress, engine], treatments=[Treatment("zero", {"scale": 0})], replicates=4
    )
    result = experiment.run()
    print()
    assert progress.runs[result.run.run_id] == [7, 1]
