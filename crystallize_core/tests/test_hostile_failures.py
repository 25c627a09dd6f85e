"""Whatever a replicate raises or records, it fails alone and readably, under every engine.

One capture path (``crystallize._failures``) records every failure, in this
process, in pool workers and while the main process reads back what a
worker sent. These tests run each hostile case under the serial engine,
threads and process pools started with ``fork`` and with ``spawn``: the
run finishes, the other replicates succeed, and the failed one's error has
a type name, a readable message and a traceback. Only Ctrl-C
(``KeyboardInterrupt``) stops a run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest
from core_helpers import numbers

from crystallize import Experiment, ParallelExecution, Pipeline, PipelineStep, hookimpl
from crystallize.plugin import WorkerStartError
from crystallize.testing import MemoryStorage

pytestmark = pytest.mark.timeout(120)

ENGINES = {
    "serial": lambda: [],
    "thread": lambda: [ParallelExecution(2, "thread")],
    "fork": lambda: [ParallelExecution(2, "process", mp_context="fork")],
    "spawn": lambda: [ParallelExecution(2, "process", mp_context="spawn")],
}
PROCESSES = ("fork", "spawn")


# -- hostile exceptions ---------------------------------------------------------------------------


class StrRaises(Exception):
    def __str__(self):
        raise RuntimeError("str() of this exception fails")


class StrAndReprRaise(StrRaises):
    def __repr__(self):
        raise RuntimeError("and so does repr()")


class StrReturnsNumber(Exception):
    def __str__(self):
        return 42


def _exit_while_loading(message):
    raise SystemExit(message)


class ExitsWhenPickled(Exception):
    """Pickling it runs sys.exit: it cannot travel, and must not take the worker down."""

    def __reduce__(self):
        raise SystemExit("pickling ran sys.exit")


class ExitsWhenLoadedInMain(Exception):
    """Travels fine, but loading it in the main process runs sys.exit."""

    def __init__(self, main_pid):
        super().__init__(f"raised in process {os.getpid()}")
        self.main_pid = main_pid

    def __reduce__(self):
        return (_load_exception_elsewhere, (self.main_pid,))


def _load_exception_elsewhere(main_pid):
    if os.getpid() == main_pid:
        raise SystemExit("loading the exception ran sys.exit in the main process")
    return ExitsWhenLoadedInMain(main_pid)


RAISERS = {
    "str raises": lambda main_pid: StrRaises(),
    "str and repr raise": lambda main_pid: StrAndReprRaise(),
    "str returns a number": lambda main_pid: StrReturnsNumber(),
    "SystemExit": lambda main_pid: SystemExit(3),
    "GeneratorExit": lambda main_pid: GeneratorExit("closed"),
    "pickling exits": lambda main_pid: ExitsWhenPickled("cannot travel"),
    "loading exits in main": lambda main_pid: ExitsWhenLoadedInMain(main_pid),
}

#: (type name ends with, message) of each case's recorded error
EXPECTED = {
    "str raises": ("StrRaises", "StrRaises() (str() raised RuntimeError)"),
    "str and repr raise": ("StrAndReprRaise", "<StrAndReprRaise object: str() raised RuntimeError, and so did repr()>"),
    "str returns a number": ("StrReturnsNumber", "StrReturnsNumber() (str() raised TypeError)"),
    "SystemExit": ("SystemExit", "3"),
    "GeneratorExit": ("GeneratorExit", "closed"),
    "pickling exits": ("ExitsWhenPickled", "cannot travel"),
    "loading exits in main": ("ExitsWhenLoadedInMain", "raised in process"),
}


class RaiseInReplicateOne(PipelineStep):
    """Raises the ``kind`` of exception in replicate 1; records ``ok`` in the others."""

    def __init__(self, kind, main_pid):
        self.kind = kind
        self.main_pid = main_pid

    def __call__(self, data, ctx):
        if ctx["replicate"] == 1:
            raise RAISERS[self.kind](self.main_pid)
        ctx.metrics.add("ok", ctx["replicate"])
        return data


class Status:
    plugin_name = "status"

    def __init__(self):
        self.status = None

    @hookimpl
    def after_run(self, run):
        self.status = run.status


def _run(engine, *steps, plugins=(), replicates=3):
    status = Status()
    experiment = Experiment(
        numbers(), Pipeline(list(steps)), plugins=[status, *plugins, *ENGINES[engine]()], replicates=replicates
    )
    return experiment.run(), status


def _only_failure(result, replicate=1):
    assert list(result.errors) == ["baseline"] and list(result.errors["baseline"]) == [replicate], result.errors
    return result.errors["baseline"][replicate]


@pytest.mark.parametrize("kind", RAISERS)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_hostile_exception_fails_only_its_replicate_with_a_readable_error(engine, kind):
    result, status = _run(engine, RaiseInReplicateOne(kind, os.getpid()))

    assert status.status == "failed"  # the run finished and knows a replicate failed
    assert result.metrics.baseline.metrics["ok"] == [0, 2]
    error = _only_failure(result)
    type_end, message = EXPECTED[kind]
    assert error.type_name.endswith(type_end) and message in error.message
    assert error.step == "RaiseInReplicateOne"
    assert error.traceback.startswith("Traceback (most recent call last)") and type_end in error.traceback
    assert "RaiseInReplicateOne" in str(error) and type_end in str(error)
    travelled = engine in PROCESSES
    if kind in ("pickling exits", "loading exits in main") and travelled:
        assert error.exception is None  # it could not be carried back; its text was
    else:
        assert type(error.exception).__name__ == type_end


@pytest.mark.parametrize("engine", ENGINES)
def test_system_exit_in_a_step_never_exits_the_program(engine):
    # Under every engine the run returns: no SystemExit reaches this test.
    result, _ = _run(engine, RaiseInReplicateOne("SystemExit", os.getpid()), replicates=4)
    assert sorted(result.errors["baseline"]) == [1]
    assert result.metrics.baseline.metrics["ok"] == [0, 2, 3]


class Interrupt(PipelineStep):
    def __call__(self, data, ctx):
        if ctx["replicate"] == 0:
            raise KeyboardInterrupt
        return data


@pytest.mark.parametrize("engine", ENGINES)
def test_keyboard_interrupt_still_stops_the_run(engine):
    status = Status()
    experiment = Experiment(numbers(), Pipeline([Interrupt()]), plugins=[status, *ENGINES[engine]()], replicates=3)
    with pytest.raises(KeyboardInterrupt):
        experiment.run()
    assert status.status == "interrupted"


# -- hostile values -------------------------------------------------------------------------------


class LoadsOnlyElsewhere:
    """Pickles anywhere; loading it in process ``main_pid`` raises (or runs sys.exit)."""

    def __init__(self, main_pid, exit):
        self.main_pid = main_pid
        self.exit = exit

    def __reduce__(self):
        return (_load_value_elsewhere, (self.main_pid, self.exit))


def _load_value_elsewhere(main_pid, exit):
    if os.getpid() == main_pid:
        if exit:
            raise SystemExit("loading the metric ran sys.exit in the main process")
        raise ValueError("this metric cannot be loaded in the main process")
    return LoadsOnlyElsewhere(main_pid, exit)


class RecordValue(PipelineStep):
    """Records ``ok`` in every replicate, and a hostile value in replicate 1."""

    def __init__(self, kind, main_pid=0):
        self.kind = kind
        self.main_pid = main_pid

    def __call__(self, data, ctx):
        ctx.metrics.add("ok", ctx["replicate"])
        if ctx["replicate"] == 1:
            if self.kind == "deep":
                value = []
                for _ in range(100_000):  # far deeper than the recursion limit
                    value = [value]
            else:
                value = LoadsOnlyElsewhere(self.main_pid, exit=self.kind == "exits")
            ctx.metrics.add("hostile", value)
        return data


@pytest.mark.parametrize("kind", ["raises", "exits"])
@pytest.mark.parametrize("engine", PROCESSES)
def test_a_metric_that_pickles_but_does_not_unpickle_fails_only_its_replicate(engine, kind):
    result, status = _run(engine, RecordValue(kind, os.getpid()))

    assert status.status == "failed"
    assert result.metrics.baseline.metrics["ok"] == [0, 2]
    error = _only_failure(result)
    assert "could not be read in the main process" in error.message
    assert ("ran sys.exit" if kind == "exits" else "cannot be loaded in the main process") in error.message
    assert error.type_name == ("SystemExit" if kind == "exits" else "ValueError")
    assert "_load_value_elsewhere" in error.traceback


@pytest.mark.parametrize("engine", ENGINES)
def test_a_deeply_nested_metric_fails_only_its_replicate(engine):
    # Serial and threads hand the value to the store (in the main process), which cannot
    # store it; worker processes cannot send it back. Either way: a readable error.
    plugins = [] if engine in PROCESSES else [MemoryStorage()]
    result, status = _run(engine, RecordValue("deep"), plugins=plugins)

    assert status.status == "failed"
    assert result.metrics.baseline.metrics["ok"] == [0, 2]
    error = _only_failure(result)
    if engine in PROCESSES:
        assert "could not be sent back to the main process" in error.message and "recursion" in error.message
    else:
        assert error.type_name.endswith("ReplicateRejected") and "nested too deeply" in error.message


# -- workers that cannot start --------------------------------------------------------------------


def _refuse_to_load(how):
    if how == "exit":
        raise SystemExit("this step runs sys.exit when loaded")
    raise RuntimeError("this step needs a GPU only the main process has")


class RefusesToLoad(PipelineStep):
    """Works where it was built; loading it anywhere else (a worker) fails."""

    def __init__(self, how="raise"):
        self.how = how

    def __call__(self, data, ctx):
        ctx.metrics.add("ran", 1)
        return data

    def __reduce__(self):
        return (_refuse_to_load, (self.how,))


@pytest.mark.parametrize("how", ["raise", "exit"])
@pytest.mark.parametrize("engine", PROCESSES)
def test_a_worker_that_cannot_load_the_run_is_reported_as_such(engine, how):
    status = Status()
    experiment = Experiment(
        numbers(), Pipeline([RefusesToLoad(how)]), plugins=[status, *ENGINES[engine]()], replicates=3
    )
    with pytest.raises(WorkerStartError) as caught:
        experiment.run()

    message = str(caught.value)
    assert "could not load the run" in message and "died while running" not in message
    expected = "runs sys.exit when loaded" if how == "exit" else "needs a GPU only the main process has"
    assert expected in message
    assert "raised while it was unpickled there" in message  # the fix: which object, see the traceback
    assert any("_refuse_to_load" in note for note in caught.value.__notes__)  # the worker's traceback
    assert status.status == "failed"


UNLOADABLE_RUNS = """
import sys
from crystallize import Experiment, ParallelExecution, Pipeline, PipelineStep, data_source
from crystallize.plugin import WorkerStartError


def _refuse():
    raise RuntimeError("cannot load here")


class Refuses(PipelineStep):
    def __call__(self, data, ctx):
        return data

    def __reduce__(self):
        return (_refuse, ())


@data_source
def one(ctx):
    return 1


if __name__ == "__main__":
    for method in ("fork", "spawn"):
        for _ in range(6):
            plugins = [ParallelExecution(max_workers=8, executor_type="process", mp_context=method)]
            try:
                Experiment(one(), Pipeline([Refuses()]), plugins=plugins, replicates=8).run()
            except WorkerStartError:
                pass
    print("done", flush=True)
"""


def test_a_run_whose_workers_cannot_load_leaves_no_worker_behind_and_the_program_exits(tmp_path):
    # Workers are killed while some may hold the pool's task-queue lock; any worker left alive
    # would block on that lock forever, and the interpreter would hang at exit joining it.
    script = tmp_path / "unloadable.py"
    script.write_text(UNLOADABLE_RUNS)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr


GHOST_STEP = """
from crystallize import PipelineStep


class GhostStep(PipelineStep):
    def __call__(self, data, ctx):
        ctx.metrics.add("ghost", 1)
        return data
"""


@pytest.fixture
def ghost_module():
    """A module this process can import but a fresh one cannot (it has no file)."""
    module = types.ModuleType("crystallize_ghost_steps")
    exec(GHOST_STEP, module.__dict__)
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        del sys.modules[module.__name__]


def test_a_spawned_worker_that_cannot_import_a_module_names_it_and_the_fix(ghost_module):
    experiment = Experiment(numbers(), Pipeline([ghost_module.GhostStep()]), plugins=ENGINES["spawn"](), replicates=2)
    with pytest.raises(WorkerStartError) as caught:
        experiment.run()
    message = str(caught.value)
    assert "No module named 'crystallize_ghost_steps'" in message
    assert "ModuleNotFoundError" in message and "register_pickle_by_value" in message
    assert "died while running" not in message


def test_forked_workers_inherit_the_module_and_run(ghost_module):
    experiment = Experiment(numbers(), Pipeline([ghost_module.GhostStep()]), plugins=ENGINES["fork"](), replicates=2)
    assert experiment.run().metrics.baseline.metrics["ghost"] == [1, 1]


# -- the capture path itself ------------------------------------------------------------------------


def test_capture_survives_a_hostile_type_and_traceback():
    from crystallize._failures import capture

    class Odd(Exception):
        __module__ = 5  # not a module name

        def __str__(self):
            raise SystemExit("str() ran sys.exit")

    try:
        raise Odd("x")
    except Odd as exc:
        exc.__notes__ = 5  # not a list of strings: formatting must cope
        error = capture(exc, "baseline", 0)
    assert error.type_name == "Odd"
    assert error.message == "Odd('x') (str() raised SystemExit)"
    assert error.traceback.startswith("Traceback") and "raise Odd" in error.traceback
    assert type(error.message) is str and type(error.traceback) is str
