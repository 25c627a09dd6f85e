"""Running replicates in other processes: payloads and worker entry points.

An executor that runs replicates outside the main process ships one
*payload* per run — the experiment, the run, the resolved datasource, the
treatments and the plugins that implement replicate-level hooks, pickled with
cloudpickle — and then asks workers to run units with :func:`run_unit`.
Workers rebuild a plugin manager from the shipped plugins (so artifacts are
written through the same storage plugin, with the same layout and atomic
commits) and cache the runner per payload token, so a worker unpickles a
payload once however many units it runs.

Outcomes travel back as cloudpickle bytes. Exceptions that do not pickle,
and metrics that do not, are turned into readable
:class:`~crystallize._records.ReplicateError` records instead of breaking the pool.
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

from crystallize._records import ReplicateError, ReplicateOutcome
from crystallize.errors import ConfigurationError

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
    runner = ReplicateRunner(experiment, run, source, treatments, hooks_for(pm), portable_errors=True).start()
    if len(_RUNNERS) >= 4:  # a long-lived worker serving many runs
        _RUNNERS.clear()
    _RUNNERS[token] = runner
    return runner


def run_unit(payload: bytes, token: str, condition: str, replicate: int) -> bytes:
    """Run one unit in this (worker) process; returns the encoded outcome.

    The first call for a ``token`` in a process unpickles ``payload`` and
    builds the runner; later calls reuse it.
    """
    return encode_outcome(_runner(token, payload)(condition, replicate))


def prepare_worker(payload: bytes, token: str) -> None:
    """Get this process ready to run units of ``token`` before the first one arrives.

    Optional: :func:`run_unit` does the same on first use. Call it from a
    worker's start-up code (a process pool's ``initializer``) to pay the
    unpickling there.
    """
    _runner(token, payload)


def encode_outcome(outcome: ReplicateOutcome) -> bytes:
    """Pickle an outcome; unpicklable results become a readable error."""
    import cloudpickle

    try:
        return cloudpickle.dumps(outcome)
    except Exception as exc:  # noqa: BLE001
        error = ReplicateError(
            condition=outcome.condition,
            replicate=outcome.replicate,
            step=None,
            type_name=type(exc).__name__,
            message=(
                f"the replicate's metrics or artifact records could not be sent back to the "
                f"main process: {exc}; record plain numbers, strings and lists"
            ),
            traceback="",
        )
        return cloudpickle.dumps(attrs.evolve(outcome, metrics={}, error=error, artifacts=()))


def decode_outcome(blob: bytes) -> ReplicateOutcome:
    """Inverse of :func:`encode_outcome`."""
    return pickle.loads(blob)


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
    process), announce our pid, build the runner."""
    global _EVENTS
    if parent is not None:
        die_with_parent(parent)
    # Ctrl-C is handled by the main process, which cancels and stops workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _EVENTS = events
    events.put(("pid", os.getpid()))
    _runner(token, payload)


def run_pooled(token: str, condition: str, replicate: int) -> bytes:
    """Pool task: announce the unit, run it with the runner the initializer built."""
    if _EVENTS is not None:
        _EVENTS.put(("start", condition, replicate))
    return encode_outcome(_runner(token, None)(condition, replicate))


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
