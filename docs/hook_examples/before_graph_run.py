"""Announce a graph's plan: which experiments run, in which order."""

from crystallize import Experiment, ExperimentGraph, data_source, pipeline_step
from crystallize.plugin import hookimpl


class Plan:
    plugin_name = "plan"

    def __init__(self):
        self.announced = []

    @hookimpl
    def before_graph_run(self, graph, strategy):
        self.announced.append(f"{strategy}: {' -> '.join(graph.order)}")


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def total(data, ctx):
    ctx.metrics.add("total", sum(data))
    return data


plan = Plan()  # one object in both experiments: called once per graph run
first = Experiment(numbers(), [total()], plugins=[plan], name="first")
second = Experiment(numbers(), [total()], plugins=[plan], name="second")
ExperimentGraph(first, second).run()
assert plan.announced == ["rerun: first -> second"]
