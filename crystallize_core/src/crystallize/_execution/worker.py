"""Running replicates in other processes: payloads and worker entry points.

An executor that runs replicates outside the main process ships one
*payload* per run — the experiment, the run, the resolved datasource, the
treatments and the plugins that implement replicate-level hooks, pickled with
cloudpickle — and then asks workers to run units with :func:`run_unit`.
Workers rebuild a plugin manager from the shipped plugins (so artifacts are
written through the same storage plugin, with the same layout and atomic
commits) and cache the runner per payload token, so a worker unpickles a
payload once however many units it runs.

Outcomes travel back as bytes (:func:`encode_outcome`, :func:`decode_outcome`)
whose unit and error text are plain data, so exceptions and metrics that do
not pickle, or do not unpickle in the main process, become readable
:class:`~crystallize._records.ReplicateError` records instead of breaking the
pool or the run. A worker that cannot load the run makes the main process
raise :class:`~crystallize.errors.WorkerStartError`.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from crystallize._failures import NEVER_CAPTURED, capture, failed_outcome, plain, text, traceback_text, type_name
from crystallize._records import ReplicateError, ReplicateOutcome
from crystallize.errors import ConfigurationError, WorkerStartError

if TYPE_CHECKING:
    from crystallize._datasource import DataSource
    from crystallize._experiment import Experiment
    from crystallize._records import Run
    from crystallize._registry import PluginInfo
    from crystallize._treatment import Treatment

__all__ = [
    "RunnerSpec",
    "make_spec",
    "run_unit",
    "prepare_worker",
    "encode_outcome",
    "decode_outcome",
    "lost_unit",
    "init_pool_worker",
    "run_pooled",
    "StartFailure",
    "refuse_while_starting_a_worker",
    "die_with_parent",
    "watch_parent",
    "WORKER_HOOKS",
]

#: Hooks that run where the replicate runs; only plugins implementing one of
#: them are shipped to workers.
WORKER_HOOKS = frozenset(
    {
        "on_worker_start",
        "wrap_replicate",
        "before_replicate",
        "before_step",
        "after_step",
        "on_artifact_write",
        "on_replicate_error",
    }
)


@attrs.frozen
class RunnerSpec:
    """A run's runner, pickled: ``token`` names it, ``payload`` holds it."""

    token: str
    payload: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")


def _unpicklable(label: str, obj: Any) -> ConfigurationError | None:
    import cloudpickle

    try:
        cloudpickle.dumps(obj)
    except Exception as exc:  # noqa: BLE001 - any pickling failure
        return ConfigurationError(
            f"cannot send {label} to worker processes: {type(exc).__name__}: {exc}. "
            "Everything a replicate uses must pickle with cloudpickle; create such "
            "objects inside the step (or a datasource) instead of holding them, "
            "or use ParallelExecution(executor_type='thread')"
        )
    return None


def _find_culprit(
    experiment: Experiment, run: Run, source: Any, treatments: Any, plugins: list[PluginInfo]
) -> Exception:
    candidates: list[tuple[str, Any]] = [(f"the run's store {run.store!r}", run.store)]
    candidates.append((f"the datasource {source!r}", source))
    for index, step in enumerate(experiment.pipeline.steps):
        candidates.append((f"step {index} ({step.step_name!r})", step))
    for name, treatment in treatments.items():
        candidates.append((f"treatment {name!r}", treatment))
    for name, artifact in experiment.outputs.items():
        candidates.append((f"artifact {name!r} (its loader or writer)", artifact))
    for info in plugins:
        candidates.append((info.label, info.plugin))
    for label, obj in candidates:
        error = _unpicklable(label, obj)
        if error is not None:
            return error
    return ConfigurationError("cannot send the experiment to worker processes: it does not pickle")


def make_spec(
    experiment: Experiment,
    run: Run,
    source: DataSource,
    treatments: dict[str, Treatment],
    plugins: list[PluginInfo],
    hook_names: dict[int, set[str]],
) -> RunnerSpec:
    """Pickle what workers need; raise naming the object that does not pickle."""
    import cloudpickle

    shipped = [info for info in plugins if hook_names.get(id(info.plugin), set()) & WORKER_HOOKS]
    rows = [(i.name, i.plugin, i.source, i.distribution, i.version) for i in shipped]
    try:
        payload = cloudpickle.dumps((experiment, run, source, treatments, rows))
    except Exception as exc:
        raise _find_culprit(experiment, run, source, treatments, shipped) from exc
    return RunnerSpec(token=uuid.uuid4().hex, payload=payload)


_RUNNERS: dict[str, Callable[[str, int], ReplicateOutcome]] = {}
#: Payloads this process could not load, by token: every unit of theirs reports it.
_START_FAILURES: dict[str, StartFailure] = {}


@attrs.frozen
class StartFailure:
    """Why this worker process could not load a run's payload (the text of a :class:`WorkerStartError`)."""

    message: str
    traceback: str


def _runner(token: str, payload: bytes | None) -> Callable[[str, int], ReplicateOutcome]:
    """What runs units of ``token`` in this process: built (and started) on first use."""
    runner = _RUNNERS.get(token)
    if runner is not None:
        return runner
    if payload is None:
        raise RuntimeError(f"worker {os.getpid()} has no runner for payload {token}")
    from crystallize._execution.runner import ReplicateRunner
    from crystallize._registry import PluginInfo, hooks_for, manager_for

    experiment, run, source, treatments, rows = pickle.loads(payload)
    pm = manager_for([PluginInfo(*row) for row in rows])
    # Exceptions travel (or not) with encode_outcome: no need to try pickling them here.
    runner = ReplicateRunner(experiment, run, source, treatments, hooks_for(pm)).start()
    if len(_RUNNERS) >= 4:  # a long-lived worker serving many runs
        _RUNNERS.clear()
    _RUNNERS[token] = runner
    return runner


def _load(token: str, payload: bytes | None) -> Callable[[str, int], ReplicateOutcome] | StartFailure:
    """:func:`_runner`, or — when the payload cannot be loaded here — why (remembered per token)."""
    failure = _START_FAILURES.get(token)
    if failure is not None:
        return failure
    try:
        return _runner(token, payload)
    except NEVER_CAPTURED:
        raise
    except BaseException as exc:  # noqa: BLE001 - reported with every unit of this payload
        failure = StartFailure(_start_message(exc), traceback_text(exc))
        if len(_START_FAILURES) >= 4:
            _START_FAILURES.clear()
        _START_FAILURES[token] = failure
        return failure


def _start_message(exc: BaseException) -> str:
    import socket

    where = f"worker process {os.getpid()} on {socket.gethostname()}"
    what = f"{type_name(exc)}: {text(exc)}"
    if isinstance(exc, (ImportError, AttributeError)):  # pickle names a module or attribute it cannot find
        fix = (
            "Workers import every module the experiment's steps, datasource, treatments and plugins come "
            "from: install the same packages (and versions) where the workers run and make your own modules "
            "importable there, or ship a module's code with cloudpickle.register_pickle_by_value(module)"
        )
    else:
        fix = (
            "An object the run holds (a step, the datasource, a treatment, a plugin or the store) raised while "
            "it was unpickled there; the traceback below shows which"
        )
    return f"{where} could not load the run: {what}. {fix}"


def _run(runner: Callable[[str, int], ReplicateOutcome], condition: str, replicate: int) -> ReplicateOutcome:
    """``runner(condition, replicate)``; whatever escapes it still becomes the unit's outcome."""
    try:
        return runner(condition, replicate)
    except NEVER_CAPTURED:
        raise
    except BaseException as exc:  # noqa: BLE001 - the runner records replicate failures itself; this is a backstop
        return failed_outcome(exc, condition, replicate)


def run_unit(payload: bytes, token: str, condition: str, replicate: int) -> bytes:
    """Run one unit in this (worker) process; returns the encoded outcome.

    The first call for a ``token`` in a process unpickles ``payload`` and
    builds the runner; later calls reuse it. Never raises (but for
    ``KeyboardInterrupt``): a replicate's failure is in its outcome, and a
    payload this process cannot load makes :func:`decode_outcome` raise
    :class:`~crystallize.errors.WorkerStartError` in the main process.
    """
    runner = _load(token, payload)
    if isinstance(runner, StartFailure):
        return _encode_not_started(runner, condition, replicate)
    return encode_outcome(_run(runner, condition, replicate))


def prepare_worker(payload: bytes, token: str) -> None:
    """Get this process ready to run units of ``token`` before the first one arrives.

    Optional: :func:`run_unit` does the same on first use. Call it from a
    worker's start-up code (a process pool's ``initializer``) to pay the
    unpickling there. Never raises: when the payload cannot be loaded here,
    every unit run here reports why.
    """
    _load(token, payload)


# -- outcomes on the wire ----------------------------------------------------------
#
# An encoded outcome is a pickle of plain data only — the unit, its seed and
# duration, its error as strings — holding two further pickles: the body
# (metrics, artifact records, seed) and the exception. Whatever the user's
# values do when pickled or unpickled, the main process always learns which
# unit it was and why it failed.

_FORMAT = "crystallize-outcome/2"
_OUTCOME = "outcome"
_NOT_STARTED = "not-started"
_SEND_HINT = "record plain numbers, strings, lists and dicts (values that pickle and unpickle in any process)"


def _error_fields(error: ReplicateError) -> tuple[str | None, ...]:
    return (
        plain(error.step),
        plain(error.type_name),
        plain(error.message),
        plain(error.traceback),
        plain(error.plugin),
        plain(error.hook),
    )


def encode_outcome(outcome: ReplicateOutcome) -> bytes:
    """An outcome as bytes for :func:`decode_outcome`; never raises (but for ``KeyboardInterrupt``).

    Metrics or artifact records that do not pickle turn a successful outcome
    into a readable error (a failed one keeps its own error); an exception
    that does not pickle travels as its text only.
    """
    import cloudpickle

    error = outcome.error
    try:
        body: bytes | None = cloudpickle.dumps((outcome.metrics, outcome.artifacts, outcome.seed))
    except NEVER_CAPTURED:
        raise
    except BaseException as exc:  # noqa: BLE001 - user values may fail to pickle in any way
        body = None
        if error is None:
            error = capture(
                exc,
                outcome.condition,
                outcome.replicate,
                context="the replicate's metrics or artifact records could not be sent back to the main process",
            )
            error = attrs.evolve(error, message=f"{error.message}; {_SEND_HINT}")
    exception = None
    if error is not None and error.exception is not None:
        try:
            exception = cloudpickle.dumps(error.exception)
        except NEVER_CAPTURED:
            raise
        except BaseException:  # noqa: BLE001 - its text travels all the same
            exception = None
    seed = outcome.seed if type(outcome.seed) is int else None
    fields = None if error is None else _error_fields(error)
    unread = tuple(key for key in outcome.unread if type(key) is str)  # treatment keys nothing read
    header = (
        _FORMAT,
        _OUTCOME,
        outcome.condition,
        outcome.replicate,
        seed,
        outcome.duration,
        fields,
        body,
        exception,
        unread,
    )
    return pickle.dumps(header, protocol=pickle.HIGHEST_PROTOCOL)


def _encode_not_started(failure: StartFailure, condition: str, replicate: int) -> bytes:
    fields = (None, "crystallize.errors.WorkerStartError", failure.message, failure.traceback, None, None)
    header = (_FORMAT, _NOT_STARTED, condition, replicate, None, 0.0, fields, None, None, ())
    return pickle.dumps(header, protocol=pickle.HIGHEST_PROTOCOL)


def _loads(blob: bytes | None) -> tuple[Any, BaseException | None]:
    """``(pickle.loads(blob), None)``, or ``(None, the exception)`` when that fails."""
    if blob is None:
        return None, None
    try:
        return pickle.loads(blob), None
    except NEVER_CAPTURED:
        raise
    except BaseException as exc:  # noqa: BLE001 - even SystemExit from a hostile __reduce__
        return None, exc


def decode_outcome(blob: bytes) -> ReplicateOutcome:
    """The outcome :func:`encode_outcome` encoded, read back in the main process.

    Metrics or artifact records that do not unpickle here turn a successful
    outcome into a readable error; an exception that does not unpickle is
    left out of its error (``exception`` is ``None``, the text is kept).
    Nothing the user's values do while unpickling (not even ``SystemExit``)
    escapes.

    :raises ~crystallize.errors.WorkerStartError: when the worker could not
        load the run at all (every unit would fail the same way).
    :raises ValueError: when ``blob`` is not an encoded outcome of this
        version of crystallize-core.
    """
    header, problem = _loads(blob)
    if type(header) is not tuple or len(header) != 10 or header[0] != _FORMAT:
        found = f"{type_name(problem)}: {text(problem)}" if problem is not None else f"a {type(header).__name__}"
        raise ValueError(
            f"decode_outcome: {len(blob)} bytes that are not an outcome encoded by this version of "
            f"crystallize-core ({found}); the workers must run the same crystallize-core as the main process"
        )
    _, kind, condition, replicate, seed, duration, fields, body, exception_blob, unread = header
    if kind == _NOT_STARTED:
        raise _start_error(fields)
    error = None
    if fields is not None:
        step, kind_name, message, trace, plugin, hook = fields
        exception, _ = _loads(exception_blob)
        error = ReplicateError(
            condition=condition,
            replicate=replicate,
            step=step,
            type_name=kind_name,
            message=message,
            traceback=trace,
            exception=exception if isinstance(exception, BaseException) else None,
            plugin=plugin,
            hook=hook,
        )
    metrics: Any = {}
    artifacts: Any = ()
    if body is not None:
        values, problem = _loads(body)
        if problem is None:
            metrics, artifacts, seed = values
        elif error is None:
            error = capture(
                problem,
                condition,
                replicate,
                context="the replicate finished, but its metrics or artifact records could not be read in the "
                "main process",
            )
            error = attrs.evolve(error, message=f"{error.message}; {_SEND_HINT}")
    return ReplicateOutcome(condition, replicate, metrics, error, artifacts, seed, duration, unread)


def _start_error(fields: tuple[str | None, ...]) -> WorkerStartError:
    error = WorkerStartError(fields[2])
    if fields[3]:
        error.add_note(f"Traceback in the worker process:\n{fields[3]}".rstrip())
    return error


def lost_unit(
    condition: str,
    replicate: int,
    reason: str,
    *,
    type_name: str = "WorkerLost",
    traceback: str = "",
    exception: BaseException | None = None,
) -> ReplicateOutcome:
    """The outcome of a unit that never reported back (its worker died, or the
    engine could not run it); ``strategy='resume'`` reruns it."""
    error = ReplicateError(
        condition=condition,
        replicate=replicate,
        step=None,
        type_name=type_name,
        message=f"{reason}; strategy='resume' reruns this replicate",
        traceback=traceback,
        exception=exception,
    )
    return ReplicateOutcome(condition, replicate, {}, error)


# -- process pools -----------------------------------------------------------


_EVENTS: Any = None  # the pool's event queue, in a worker process


def init_pool_worker(payload: bytes, token: str, events: Any, parent: int | None = None) -> None:
    """``ProcessPoolExecutor`` initializer: die with ``parent`` (the run's
    process), announce our pid, build the runner.

    Never raises (an initializer that does breaks the pool, and the run would
    see only dead workers): a payload this process cannot load is reported
    with every unit it is given.
    """
    global _EVENTS
    if parent is not None:
        die_with_parent(parent)
    # Ctrl-C is handled by the main process, which cancels and stops workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _EVENTS = events
    events.put(("pid", os.getpid()))
    _load(token, payload)


def run_pooled(token: str, condition: str, replicate: int) -> bytes:
    """Pool task: announce the unit, run it with the runner the initializer built."""
    if _EVENTS is not None:
        _EVENTS.put(("start", condition, replicate))
    runner = _load(token, None)
    if isinstance(runner, StartFailure):
        return _encode_not_started(runner, condition, replicate)
    return encode_outcome(_run(runner, condition, replicate))


def refuse_while_starting_a_worker() -> None:
    """Raise :class:`WorkerStartError` if this process is a worker still importing the run's script.

    A worker started with the ``spawn`` (or ``forkserver``) method first
    imports the script that started the run. Code at that script's top level
    runs again there; an experiment it runs would allocate a run of its own
    and start workers of its own. Called before a run touches anything.
    """
    process = sys.modules.get("multiprocessing.process")
    # multiprocessing marks a process that is still importing its parent's main module with this
    # flag (its own "bootstrapping phase" check reads it too).
    if process is None or not getattr(process.current_process(), "_inheriting", False):
        return
    # While a 'spawn' worker imports the script, runpy holds it as "__mp_main__".
    main = sys.modules.get("__mp_main__") or sys.modules.get("__main__")
    script = getattr(main, "__file__", None) or "the main module"
    raise WorkerStartError(
        "Experiment.run() was called while this process was starting as a worker of another run. A worker "
        f"started with the 'spawn' or 'forkserver' method first imports the script that started the run "
        f"({script}), so the code at its top level runs again in every worker. Put the code that runs "
        'experiments under `if __name__ == "__main__":` in that script'
    )


# -- dying with the parent ------------------------------------------------------
#
# A pool worker that outlives the run's process (SIGKILL, SIGTERM, a crash)
# would finish its replicate and commit artifacts into a run that is no longer
# its own. Nothing tells it to stop: the pool's queues only fail once it asks
# for the next unit.

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent: int, *, interval: float = 0.25) -> None:
    """Make this process die (``SIGKILL``) as soon as process ``parent`` does.

    On Linux, when ``parent`` started this process (``fork``, ``spawn``), the
    kernel does it: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Elsewhere, and when
    a fork server started this process (its parent is then the server), a
    daemon thread checks every ``interval`` seconds (:func:`watch_parent`).
    If ``parent`` is already gone when this is called, the process dies at once.

    The kernel's signal follows the *thread* that started this process: a
    pool's workers are started by the thread that runs the pool and waits for
    it (``ParallelExecution``), so it fires only once that process is gone.
    Processes a step starts are not covered. Does nothing on Windows.
    """
    if os.name != "posix":
        return
    ppid = os.getppid()
    if ppid == parent and sys.platform.startswith("linux") and _set_parent_death_signal():
        # The parent may have died before prctl: then we were already handed to a reaper.
        if os.getppid() != parent:
            _die()
        return
    if ppid != parent and ((ppid == 1 and parent != 1) or not _running(parent)):
        _die()  # orphaned already (our parent was not init), or the run's process is gone
    watch_parent(parent, interval=interval)


def watch_parent(parent: int, *, interval: float = 0.25) -> threading.Thread:
    """Start a daemon thread that kills this process once ``parent`` is gone.

    It notices the death of our direct parent (``os.getppid()`` changes) and,
    when ``parent`` is not our direct parent (a fork server's child), the end
    of ``parent`` itself. A thread needs the GIL to act: a step stuck in C
    code that holds it delays the kill until it returns. POSIX only.
    """
    direct = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != direct or (direct != parent and not _running(parent)):
                _die()

    thread = threading.Thread(target=watch, name="crystallize-parent-watchdog", daemon=True)
    thread.start()
    return thread


def _set_parent_death_signal() -> bool:
    """``prctl(PR_SET_PDEATHSIG, SIGKILL)`` through ctypes; False if unavailable."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split()[:1]
    except OSError:  # no /proc (macOS): existing is all we can tell
        return True
    return state not in ([b"Z"], [b"X"])


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
