"""Typed facts on run.facts: FactKey."""

from __future__ import annotations

import pickle

import pytest
from core_helpers import numbers, total

from crystallize import Experiment, Pipeline, SeedPlugin, hookimpl
from crystallize.plugin import EXECUTION_FACT, SEED_FACT, FactKey, Facts

TIMINGS: FactKey[dict[str, float]] = FactKey("step_timer.timings", "seconds per step")


def test_facts_are_set_and_read_by_key():
    facts = Facts()
    facts[TIMINGS] = {"train": 1.5}
    assert facts[TIMINGS] == {"train": 1.5} and TIMINGS in facts and SEED_FACT not in facts
    assert facts.get(SEED_FACT) is None and facts.get(SEED_FACT, "none") == "none"
    assert facts.to_json() == {"step_timer.timings": {"train": 1.5}}
    with pytest.raises(KeyError, match="no fact 'seed' was recorded for this run \\(facts: 'step_timer.timings'\\)"):
        facts[SEED_FACT]


def test_string_keys_are_refused_with_the_fix():
    facts = Facts()
    with pytest.raises(TypeError, match="run.facts takes FactKey keys, not 'seed'; declare one"):
        facts["seed"] = 1
    with pytest.raises(TypeError, match="FactKey"):
        "seed" in facts  # noqa: B015


def test_a_key_that_travelled_finds_its_fact():
    facts = Facts()
    facts[TIMINGS] = {"train": 1.0}
    copy = pickle.loads(pickle.dumps(facts))
    assert copy[TIMINGS] == {"train": 1.0}  # keys are equal by name, wherever they were unpickled
    assert FactKey("step_timer.timings") == TIMINGS


def test_plugins_share_facts_through_the_run():
    seen = {}

    class Reader:
        @hookimpl(trylast=True)
        def before_run(self, run):
            seen["seed"] = run.facts[SEED_FACT]
            run.facts[TIMINGS] = {}

    result = Experiment(numbers(), Pipeline([total()]), plugins=[SeedPlugin(seed=7), Reader()]).run()
    assert seen["seed"]["base"] == 7
    assert result.run.facts.to_json()["seed"]["base"] == 7 and EXECUTION_FACT not in result.run.facts
