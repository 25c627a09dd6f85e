"""Print one line per experiment once the whole graph has run."""

from crystallize import Experiment, ExperimentGraph, data_source, pipeline_step
from crystallize.plugin import hookimpl


class GraphReport:
    plugin_name = "graph-report"

    def __init__(self):
        self.lines = []

    @hookimpl
    def after_graph_run(self, graph, results):
        for name, result in results.items():
            self.lines.append(f"{name}: {result.run.status}, reran because {graph.reasons.get(name, ['-'])}")


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def total(data, ctx):
    ctx.metrics.add("total", sum(data))
    return data


report = GraphReport()
graph = ExperimentGraph(
    Experiment(numbers(), [total()], plugins=[report], name="first"),
    Experiment(numbers(), [total()], plugins=[report], name="second"),
)
graph.run()
assert report.lines == ["first: completed, reran because ['-']", "second: completed, reran because ['-']"]
