"""Replicates on several cores: :class:`ParallelExecution`."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from crystallize._dispatch import hookimpl
from crystallize.errors import WorkerStartError

if TYPE_CHECKING:
    from collections.abc import Callable

    from crystallize._execution.batch import ReplicateBatch, Unit
    from crystallize._records import Run

__all__ = ["ParallelExecution"]

log = logging.getLogger("crystallize.execution")

EXECUTOR_TYPES = ("thread", "process")


class ParallelExecution:
    """Run replicates concurrently in threads or worker processes.

    Results, artifacts and resume behave exactly as in a serial run: outcomes
    are reported to the main process as they finish and every condition's
    metrics are assembled in replicate order.

    :param max_workers: pool size; defaults to the number of CPUs.
    :param executor_type: ``"thread"`` (shares memory; best when steps release
        the GIL, e.g. NumPy or I/O) or ``"process"`` (true parallelism for pure
        Python; everything a replicate uses must pickle with cloudpickle).
    :param retries: process pools only — how many times a replicate whose
        worker process died is run again before it is recorded as a
        ``WorkerLost`` error (which ``strategy="resume"`` reruns). Replicates
        that merely shared the pool are rerun without being charged.
    :param mp_context: process pools only — the :mod:`multiprocessing` start
        method (``"fork"``, ``"spawn"``, ``"forkserver"``); the platform's
        default when ``None``.
    :param progress: ``True``/``False`` to force progress bars on or off
        (needs ``crystallize-progress``); ``None`` lets the progress plugin decide.
    """

    plugin_name = "parallel-execution"

    def __init__(
        self,
        max_workers: int | None = None,
        executor_type: str = "thread",
        *,
        retries: int = 1,
        mp_context: str | None = None,
        progress: bool | None = None,
    ) -> None:
        if executor_type not in EXECUTOR_TYPES:
            raise ValueError(f"ParallelExecution: executor_type must be 'thread' or 'process', got {executor_type!r}")
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"ParallelExecution: max_workers must be a positive int or None, got {max_workers!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"ParallelExecution: retries must be an int >= 0, got {retries!r}")
        import multiprocessing

        if mp_context is not None and mp_context not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"ParallelExecution: mp_context {mp_context!r} is not available here "
                f"(available: {', '.join(multiprocessing.get_all_start_methods())})"
            )
        if progress is not None and not isinstance(progress, bool):
            raise TypeError(f"ParallelExecution(progress=...) takes True, False or None, got {progress!r}")
        self.max_workers = max_workers
        self.executor_type = executor_type
        self.retries = retries
        self.mp_context = mp_context
        self.progress = progress

    @property
    def workers(self) -> int:
        return self.max_workers or os.cpu_count() or 1

    @hookimpl
    def before_run(self, run: Run) -> None:
        from crystallize._execution.serial import record_progress
        from crystallize._records import EXECUTION_FACT  # not at import: `import crystallize` stays light

        run.facts[EXECUTION_FACT] = {"engine": "parallel", "executor_type": self.executor_type, "workers": self.workers}
        record_progress(run, self.progress)

    @hookimpl
    def execute_replicates(self, run: Run, batch: ReplicateBatch) -> bool:
        if batch.units:
            if self.executor_type == "thread":
                if self.workers > 1 and len(batch.units) > 1:
                    _warn_shared_generators(run)
                self._in_threads(batch)
            else:
                self._in_processes(batch)
        return True

    # -- threads --------------------------------------------------------------

    def _in_threads(self, batch: ReplicateBatch) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="crystallize") as pool:
            batch.report_as_completed([pool.submit(batch.run_here, c, r) for c, r in batch.units])

    # -- processes ------------------------------------------------------------

    def _in_processes(self, batch: ReplicateBatch) -> None:
        """Run units in process pools; survive workers that die.

        When a worker dies, ``ProcessPoolExecutor`` fails every unit still in
        the pool. Units that had not started run again at no charge. Units
        that were running are *suspects*: each reruns alone, in a pool of its
        own, so a replicate that kills its worker is identified and charged
        (``retries``, then a ``WorkerLost`` error) without taking the others
        down with it.
        """
        import multiprocessing

        from crystallize._execution.worker import lost_unit

        payload, token = batch.payload(), batch.token  # fails early, naming what does not pickle
        context = multiprocessing.get_context(self.mp_context)
        deaths: Counter[Unit] = Counter()
        unseen: Counter[Unit] = Counter()
        pending = list(batch.units)
        suspects: list[Unit] = []
        while pending or suspects:
            alone = bool(suspects)
            units = [suspects.pop(0)] if alone else pending
            lost, started, announced = _run_pool(batch, context, payload, token, units, 1 if alone else self.workers)
            if not alone:
                pending = []
            if not lost:
                continue
            if not announced:  # no worker of this pool got as far as our initializer
                raise _start_failure(context)
            log.warning(
                "a worker process died; %d replicate(s) were still in its pool: %s",
                len(lost),
                ", ".join(f"{c}/{r}" for c, r in lost),
            )
            for unit in lost:
                if not alone and unit not in started:
                    unseen[unit] += 1  # queued, never started: not its fault...
                    if unseen[unit] <= 3:
                        pending.append(unit)
                        continue
                    suspects.append(unit)  # ...unless that keeps happening
                elif not alone and len(lost) > 1:
                    suspects.append(unit)  # was running: find out alone
                else:
                    deaths[unit] += 1
                    if deaths[unit] > self.retries:
                        reason = f"the worker process died while running it ({deaths[unit]} time(s))"
                        batch.report(lost_unit(unit[0], unit[1], reason))
                    else:
                        suspects.append(unit)

    def run_experiment_loop(self, experiment: Any, replicate_fn: Callable[[int], Any]) -> list[Any]:
        """crystallize-ml 0.27's engine method: ``replicate_fn(rep)`` for every replicate, in this engine's pool.

        Returns the results in replicate order. ``replicate_fn`` must be a
        plain function (``AsyncExecution`` awaits ``async def`` ones); a
        process pool needs it to pickle with cloudpickle. Runs use the
        ``execute_replicates`` hook; this serves 0.27 code that drives the
        engine itself.
        """
        from crystallize._execution.classic_loop import run_in_pool

        return run_in_pool(experiment, replicate_fn, self.executor_type, self.workers, self.mp_context)

    def __repr__(self) -> str:
        return f"ParallelExecution(max_workers={self.max_workers!r}, executor_type={self.executor_type!r})"


def _run_pool(
    batch: ReplicateBatch, context: Any, payload: bytes, token: str, units: list[Unit], workers: int
) -> tuple[list[Unit], set[Unit], list[int]]:
    """Run ``units`` in one process pool, reporting outcomes as they arrive.

    Returns the units lost because the pool broke, the units whose execution
    had started and the pids of the workers that started (workers announce
    themselves and each unit on the event queue).
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from crystallize._execution.worker import decode_outcome, init_pool_worker, run_pooled

    events = context.SimpleQueue()
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(units)),
        mp_context=context,
        initializer=init_pool_worker,
        initargs=(payload, token, events, os.getpid()),  # workers die with this process
    )
    lost: list[Unit] = []
    pids: list[int] = []
    started: set[Unit] = set()
    try:
        futures = {}
        for index, unit in enumerate(units):
            try:
                futures[pool.submit(run_pooled, token, *unit)] = unit
            except BrokenProcessPool:  # a worker died while we were still submitting
                lost.extend(units[index:])
                break
        for future in as_completed(futures):
            try:
                blob = future.result()
            except BrokenProcessPool:
                lost.append(futures[future])
                continue
            batch.report(decode_outcome(blob))
    except BaseException:
        _drain(events, pids, started)
        _stop_workers(pool, pids)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    _drain(events, pids, started)
    return lost, started, pids


def _warn_shared_generators(run: Run) -> None:
    """Say so when a chosen seed cannot make threaded replicates reproducible.

    The seeding plugin seeds the process's global generators before each
    replicate; threads share them, so replicates running at once interleave
    their draws. Only runs whose code chose the seed expect the same numbers
    again, so only they are told (once per run).
    """
    from crystallize._records import SEED_FACT

    seeding = run.facts.get(SEED_FACT)
    if not seeding or not seeding.get("chosen"):
        return
    log.warning(
        "seed %s seeds the global random generators (random, NumPy), which replicates running at once under "
        "ParallelExecution(executor_type='thread') share: their draws interleave, so they are not reproducible. "
        "Draw from a generator of the replicate's own (random.Random(ctx['seed_used']), "
        "numpy.random.default_rng(ctx['seed_used'])), or use executor_type='process'",
        seeding.get("base"),
    )


def _start_failure(context: Any) -> WorkerStartError:
    """The error for worker processes that exited before reaching :func:`init_pool_worker`."""
    method = context.get_start_method()
    message = (
        f"the worker processes exited while starting, before they could run any replicate (start method "
        f"{method!r}); what they printed is above."
    )
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if method in ("spawn", "forkserver") and script:
        message += (
            f" A {method!r} worker first imports the script that started the run ({script}): put the code that "
            'runs experiments under `if __name__ == "__main__":` there, and make sure a fresh Python process '
            "started in the same folder can import every module that script imports"
        )
    else:
        message += " Make sure a fresh Python process can import crystallize and every module the experiment uses"
    return WorkerStartError(message)


def _drain(events: Any, pids: list[int], started: set[Unit]) -> None:
    while not events.empty():
        event = events.get()
        if event[0] == "pid":
            pids.append(event[1])
        else:
            started.add((event[1], event[2]))


def _stop_workers(pool: Any, pids: list[int]) -> None:
    """Kill every worker process of ``pool`` (the run failed, or Ctrl-C in the main process).

    Every one of them, not only those that announced themselves: a worker
    killed while it holds the pool's task-queue lock leaves the others
    blocked on that lock forever, and the interpreter would then hang at
    exit waiting for them. Python 3.14 has ``ProcessPoolExecutor.kill_workers``;
    before it, the pool's processes are only reachable as ``_processes``.
    """
    kill = getattr(pool, "kill_workers", None)
    if kill is not None:  # pragma: no cover - Python 3.14+
        kill()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        try:
            process.kill()
        except (OSError, ValueError, AttributeError):
            pass
    known = {process.pid for process in processes}
    for pid in pids:
        if pid not in known:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
