"""ParallelExecution: same results as serial, clear pickling errors, worker death, Ctrl-C."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from crystallize import (
    Artifact,
    ConfigurationError,
    Experiment,
    ParallelExecution,
    Pipeline,
    PipelineStep,
    SeedPlugin,
    Treatment,
    data_source,
    pipeline_step,
)
from crystallize.plugin import EXECUTION_FACT
from crystallize.testing import MemoryStorage

pytestmark = pytest.mark.timeout(120)


@data_source
def draw(ctx):
    return random.random()


@pipeline_step()
def noisy(data, ctx):
    value = data + random.gauss(0, 1)
    ctx.metrics.add("value", value)
    ctx.metrics.add("pid", os.getpid())
    return value


@data_source
def own_draw(ctx):
    """Threads share the global generator; a replicate's own generator is safe anywhere."""
    return random.Random(ctx["seed_used"]).random()


@pipeline_step()
def own_noisy(data, ctx):
    value = data + random.Random(ctx["seed_used"] + 1).gauss(0, 1)
    ctx.metrics.add("value", value)
    ctx.metrics.add("pid", os.getpid())
    return value


class Explode(PipelineStep):
    def __call__(self, data, ctx):
        if ctx["replicate"] == 1:
            raise ValueError(f"bad replicate {ctx['replicate']}")
        return data


class UnpicklableError(Exception):
    def __init__(self, handle):
        super().__init__("cannot travel")
        self.handle = handle


class RaiseUnpicklable(PipelineStep):
    def __call__(self, data, ctx):
        raise UnpicklableError(threading.Lock())


class KillOnce(PipelineStep):
    """SIGKILLs its own (worker) process the first time it runs replicate 1."""

    def __init__(self, marker: str):
        self.marker = marker

    def __call__(self, data, ctx):
        if ctx["replicate"] == 1 and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return data


def build(*extra_plugins, steps=None, replicates=6, source=None):
    return Experiment(
        source or draw(),
        Pipeline(steps or [noisy()]),
        plugins=[SeedPlugin(seed=42), *extra_plugins],
        treatments=[Treatment("t", {"bias": 1})],
        replicates=replicates,
    )


def values(result):
    return {
        "baseline": result.metrics.baseline.metrics["value"],
        "t": result.metrics.treatments["t"].metrics["value"],
    }


@pytest.mark.parametrize("executor_type", ["thread", "process"])
def test_parallel_results_equal_serial(executor_type):
    # Worker processes run one replicate at a time, so even the global generator
    # gives serial results; threads need each replicate's own generator.
    shared = executor_type == "process"
    kwargs = {} if shared else {"source": own_draw(), "steps": [own_noisy()]}
    serial = build(**kwargs).run()
    parallel = build(ParallelExecution(max_workers=2, executor_type=executor_type), **kwargs).run()
    assert values(parallel) == values(serial)
    assert parallel.run.facts[EXECUTION_FACT] == {"engine": "parallel", "executor_type": executor_type, "workers": 2}
    pids = set(parallel.metrics.baseline.metrics["pid"])
    if executor_type == "process":
        assert os.getpid() not in pids
    else:
        assert pids == {os.getpid()}


def test_errors_in_worker_processes_come_back_with_tracebacks():
    result = build(ParallelExecution(2, "process"), steps=[noisy(), Explode()]).run()
    assert set(result.errors["baseline"]) == {1} and set(result.errors["t"]) == {1}
    error = result.errors["baseline"][1]
    assert error.type_name == "ValueError" and "bad replicate 1" in error.message
    assert "raise ValueError" in error.traceback and isinstance(error.exception, ValueError)


def test_unpicklable_exceptions_do_not_break_the_pool():
    result = build(ParallelExecution(2, "process"), steps=[RaiseUnpicklable()], replicates=3).run()
    assert len(result.errors["baseline"]) == 3
    error = result.errors["baseline"][0]
    assert error.exception is None  # could not travel; the text did
    assert "UnpicklableError" in error.type_name and "cannot travel" in error.message


def test_unpicklable_step_is_named_before_any_work():
    class Holder(PipelineStep):
        def __init__(self):
            self.lock = threading.Lock()

        def __call__(self, data, ctx):
            raise AssertionError("must not run")

    exp = build(ParallelExecution(2, "process"), steps=[noisy(), Holder()])
    with pytest.raises(ConfigurationError, match=r"cannot send step 1 \('Holder'\) to worker processes.*lock"):
        exp.run()


def test_a_store_that_cannot_travel_to_workers_is_named_before_any_work():
    out = Artifact("v.txt")

    @pipeline_step()
    def save(data, ctx, out=out):
        out.write(repr(data).encode())
        return data

    exp = Experiment(
        draw(),
        Pipeline([save()]),
        plugins=[MemoryStorage(), ParallelExecution(2, "process")],
        outputs=[out],
        replicates=4,
    )
    with pytest.raises(ConfigurationError, match="cannot send the run's store <MemoryRunStore memory://"):
        exp.run()
    assert (
        ParallelExecution(2, "thread")
        and Experiment(
            draw(), Pipeline([save()]), plugins=[MemoryStorage(), ParallelExecution(2, "thread")], outputs=[out]
        )
        .run()
        .ok
    )


def test_worker_killed_mid_replicate_is_retried(tmp_path, caplog):
    marker = tmp_path / "killed-once"
    result = build(ParallelExecution(2, "process", retries=1), steps=[noisy(), KillOnce(str(marker))]).run()
    assert marker.exists()
    assert result.ok, result.errors
    assert values(result) == values(build().run())
    assert "a worker process died" in caplog.text


class KillAlways(PipelineStep):
    """A poisoned replicate: SIGKILLs its worker every time it runs replicate 1 of the baseline."""

    def __call__(self, data, ctx):
        if (ctx["condition"], ctx["replicate"]) == ("baseline", 1):
            os.kill(os.getpid(), signal.SIGKILL)
        return data


@pytest.mark.parametrize("retries", [0, 1])
def test_a_replicate_that_kills_its_worker_fails_alone(retries, caplog):
    result = build(ParallelExecution(2, "process", retries=retries), steps=[noisy(), KillAlways()]).run()
    assert {c: sorted(e) for c, e in result.errors.items()} == {"baseline": [1]}
    error = result.errors["baseline"][1]
    assert error.type_name == "WorkerLost"
    assert f"died while running it ({retries + 1} time(s))" in error.message
    assert "strategy='resume' reruns this replicate" in error.message
    assert (
        len(result.metrics.baseline.metrics["value"]) == 5 and len(result.metrics.treatments["t"].metrics["value"]) == 6
    )
    assert "a worker process died" in caplog.text


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="executor_type must be 'thread' or 'process', got 'gpu'"):
        ParallelExecution(executor_type="gpu")
    with pytest.raises(ValueError, match="max_workers must be a positive int or None, got 0"):
        ParallelExecution(max_workers=0)
    with pytest.raises(ValueError, match="mp_context 'nope' is not available"):
        ParallelExecution(executor_type="process", mp_context="nope")


def test_two_engines_are_a_configuration_error():
    from crystallize import PluginError, hookimpl

    class OtherEngine:
        @hookimpl
        def execute_replicates(self, batch):
            return None

    with pytest.raises(ConfigurationError, match="several execution engines"):
        build(ParallelExecution(2), OtherEngine()).validate()
    with pytest.raises(PluginError, match="two plugins named 'parallel-execution'"):
        build(ParallelExecution(2), ParallelExecution(3, "process")).validate()


CTRL_C = textwrap.dedent(
    """
    import signal, sys, time
    from crystallize import Experiment, Pipeline, ParallelExecution, data_source, pipeline_step, hookimpl

    # As in a terminal. A process started from a background job of a non-interactive shell
    # (`.ci/run &`) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    @data_source
    def src(ctx):
        return 0

    @pipeline_step()
    def slow(data, ctx):
        time.sleep(0.5)
        return data

    class Status:
        @hookimpl
        def after_run(self, run):
            print("STATUS", run.status, flush=True)

    exp = Experiment(src(), Pipeline([slow()]), plugins=[Status(), ParallelExecution(2, "process")], replicates=200)
    print("START", flush=True)
    exp.run()
    """
)


def test_ctrl_c_cancels_pending_work_promptly(tmp_path):
    # PYTHONFAULTHANDLER: should the run hang, SIGABRT makes it print every thread's stack.
    env = {**os.environ, "CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "START"
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        children = subprocess.run(["ps", "-o", "pid,ppid,stat,args", "--ppid", str(proc.pid)], capture_output=True)
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=30)
        pytest.fail(
            f"the run had not stopped 30 s after Ctrl-C; its children:\n{children.stdout.decode()}\n"
            f"its threads:\n{err[-8000:]}"
        )
    assert time.monotonic() - started < 10
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert "STATUS interrupted" in out
