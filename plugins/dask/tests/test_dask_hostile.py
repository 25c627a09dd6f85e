"""Hostile exceptions and values under Dask: each fails its replicate alone, readably.

The same cases as the core's ``test_hostile_failures.py``, on a real (private)
LocalCluster of two worker processes: what a step raises or records cannot
break the run, and a worker that cannot load the run stops it with
:class:`~crystallize.plugin.WorkerStartError`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cloudpickle
import pytest
from dask_helpers import ex
from distributed import Client

from crystallize import Experiment
from crystallize.plugin import WorkerStartError
from crystallize_dask import DaskExecution
from crystallize_dask.cluster import LOCAL_CLUSTER_DEFAULTS, start_local_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _load_steps() -> ModuleType:
    """``dask_hostile_steps.py``, shipped to the workers by value (they cannot import the test folder)."""
    name = "crystallize_dask_test_hostile_steps"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "dask_hostile_steps.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        cloudpickle.register_pickle_by_value(module)
    return module


steps = _load_steps()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    cluster = start_local_cluster({**LOCAL_CLUSTER_DEFAULTS, "n_workers": 2})
    try:
        with Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        cluster.close()


def _run(client: Client, step: object, replicates: int = 3) -> object:
    experiment = Experiment(ex.draws(), [step], plugins=[DaskExecution(client=client)], replicates=replicates)
    return experiment.run()


EXPECTED = {
    "str raises": ("StrRaises", "StrRaises() (str() raised RuntimeError)"),
    "str and repr raise": ("StrAndReprRaise", "<StrAndReprRaise object: str() raised RuntimeError, and so did repr()>"),
    "SystemExit": ("SystemExit", "3"),
    "GeneratorExit": ("GeneratorExit", "closed"),
    "pickling exits": ("ExitsWhenPickled", "cannot travel"),
    "loading exits in main": ("ExitsWhenLoadedInMain", "raised in process"),
}


@pytest.mark.parametrize("kind", EXPECTED)
def test_a_hostile_exception_fails_only_its_replicate_on_dask(client: Client, kind: str) -> None:
    result = _run(client, steps.RaiseInReplicateOne(kind, os.getpid()))

    assert result.run.status == "failed"
    assert result.metrics.baseline.metrics["ok"] == [0, 2]
    assert list(result.errors) == ["baseline"] and list(result.errors["baseline"]) == [1]
    error = result.errors["baseline"][1]
    type_end, message = EXPECTED[kind]
    assert error.type_name.endswith(type_end) and message in error.message
    assert error.step == "RaiseInReplicateOne" and "WorkerLost" not in error.type_name
    assert error.traceback.startswith("Traceback (most recent call last)")
    if kind in ("pickling exits", "loading exits in main"):
        assert error.exception is None
    else:
        assert type(error.exception).__name__ == type_end


@pytest.mark.parametrize("exit", [False, True], ids=["raises", "exits"])
def test_a_metric_that_does_not_unpickle_in_the_main_process_fails_only_its_replicate(
    client: Client, exit: bool
) -> None:
    result = _run(client, steps.RecordUnloadable(os.getpid(), exit))

    assert result.metrics.baseline.metrics["ok"] == [0, 2]
    assert list(result.errors["baseline"]) == [1]
    error = result.errors["baseline"][1]
    assert "could not be read in the main process" in error.message
    assert error.type_name == ("SystemExit" if exit else "ValueError")


def test_a_worker_that_cannot_load_the_run_stops_it_naming_why(client: Client) -> None:
    with pytest.raises(WorkerStartError) as caught:
        _run(client, steps.RefusesToLoad())
    message = str(caught.value)
    assert "could not load the run" in message and "needs a GPU only the main process has" in message
    assert "WorkerLost" not in message and "died" not in message
    assert any("_refuse_to_load" in note for note in caught.value.__notes__)
    # the cluster is left as it was: the next run uses it
    assert _run(client, steps.RaiseInReplicateOne("SystemExit", os.getpid())).metrics.baseline.metrics["ok"] == [0, 2]
