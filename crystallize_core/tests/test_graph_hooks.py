"""before_graph_run and after_graph_run: once per graph, on every plugin of its experiments."""

from __future__ import annotations

import pytest
from core_helpers import numbers, total

from crystallize import Experiment, ExperimentGraph, Pipeline, hookimpl


class GraphSpy:
    def __init__(self, name, log):
        self.plugin_name = name
        self.log = log

    @hookimpl
    def before_graph_run(self, graph, strategy):
        self.log.append((self.plugin_name, "before", tuple(graph.order), strategy))

    @hookimpl
    def after_graph_run(self, graph, results):
        self.log.append((self.plugin_name, "after", tuple(results)))


def test_each_plugin_object_hears_of_the_graph_once(dispatch):
    log = []
    shared = GraphSpy("shared", log)
    first = Experiment(numbers(), Pipeline([total()]), plugins=[shared, GraphSpy("mine", log)], name="first")
    second = Experiment(numbers(), Pipeline([total()]), plugins=[shared, GraphSpy("mine", log)], name="second")
    results = ExperimentGraph(first, second).run()
    assert sorted(entry for entry in log if entry[1] == "before") == [
        ("mine", "before", ("first", "second"), "rerun"),
        ("mine", "before", ("first", "second"), "rerun"),
        ("shared", "before", ("first", "second"), "rerun"),
    ]
    assert [entry for entry in log if entry[0] == "shared"][-1] == ("shared", "after", ("first", "second"))
    assert list(results) == ["first", "second"]


def test_after_graph_run_sees_what_finished_when_an_experiment_raises(dispatch):
    log = []

    class Refuses:
        plugin_name = "refuses"

        @hookimpl
        def before_run(self, experiment):
            if experiment.name == "second":
                raise RuntimeError("second cannot start")

    first = Experiment(numbers(), Pipeline([total()]), plugins=[GraphSpy("spy", log)], name="first")
    second = Experiment(numbers(), Pipeline([total()]), plugins=[Refuses()], name="second")
    with pytest.raises(RuntimeError, match="second cannot start") as caught:
        ExperimentGraph(first, second).run()
    assert log[-1] == ("spy", "after", ("first",))
    assert "(raised by plugin 'refuses' in hook 'before_run')" in caught.value.__notes__
