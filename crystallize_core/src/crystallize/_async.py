"""Async steps: awaiting ``async def`` steps wherever a replicate runs.

A step written as ``async def __call__(self, data, ctx)`` (or an ``async def``
function given to ``@pipeline_step()``) returns a coroutine; the replicate
must await it before the next step sees the result. The runner wraps such a
step once, with :func:`sync_step`, so ordinary steps keep their plain call.

Where the coroutine runs:

- by default, on an event loop owned by the current thread (made on first
  use and kept for the thread's life, so a client created by one async step
  can be used by the next, and by the next replicate in that thread);
- when an event loop already runs in this thread (Jupyter, an ``async``
  caller), on a helper thread's loop: a running loop cannot be re-entered;
- under :class:`~crystallize.plugin.AsyncExecution` and
  :meth:`Experiment.arun <crystallize.Experiment.arun>`, on the *target
  loop* they set with :func:`target_loop`: the replicates' own code runs in
  worker threads, and their coroutines all interleave on that one loop.

A coroutine always runs in a copy of the calling thread's
:mod:`contextvars` context, so ``artifact.write(...)`` inside an async step
finds its replicate exactly as in a sync step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

__all__ = ["sync_step", "run_coroutine", "target_loop", "LoopThread"]

T = TypeVar("T")

_local = threading.local()
_helper: concurrent.futures.ThreadPoolExecutor | None = None
_helper_lock = threading.Lock()


def sync_step(step: Any) -> Callable[[Any, Any], Any]:
    """A plain ``call(data, ctx)`` for an async step: it awaits the step and returns its result."""
    acall = step.__acall__

    def call(data: Any, ctx: Any) -> Any:
        return run_coroutine(acall(data, ctx))

    return call


class _OwnLoop:
    """This thread's event loop; closed when the thread ends (its thread-local is dropped)."""

    __slots__ = ("loop",)

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        try:
            if not self.loop.is_closed():
                self.loop.close()
        except Exception:  # noqa: BLE001 - at interpreter exit, modules may already be gone
            pass


def _own_loop() -> asyncio.AbstractEventLoop:
    own = getattr(_local, "own", None)
    if own is None or own.loop.is_closed():
        own = _local.own = _OwnLoop()
    return own.loop


def run_coroutine(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` to completion from synchronous code and return its result."""
    target = getattr(_local, "target", None)
    context = contextvars.copy_context()
    if target is not None:
        return _run_on(target, awaitable, context)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = _own_loop()
        return context.run(loop.run_until_complete, _as_coroutine(awaitable))
    # A loop runs in this thread already (a notebook, an async caller): it cannot be re-entered.
    return _helper_pool().submit(context.run, run_coroutine, awaitable).result()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _run_on(loop: asyncio.AbstractEventLoop, awaitable: Awaitable[T], context: contextvars.Context) -> T:
    """Run ``awaitable`` on another thread's ``loop``, in ``context``; block until it is done."""
    if loop.is_closed():
        raise RuntimeError("the event loop async steps run on is closed; the run that set it has ended")
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start() -> None:
        try:
            task = context.run(loop.create_task, _as_coroutine(awaitable))
        except BaseException as exc:  # noqa: BLE001 - handed back to the waiting thread
            done.set_exception(exc)
            return

        def finished(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                done.set_exception(asyncio.CancelledError("the async step was cancelled"))
            elif task.exception() is not None:
                done.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                done.set_result(task.result())

        task.add_done_callback(finished)

    loop.call_soon_threadsafe(start)
    return done.result()


def _helper_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="crystallize-async")
        return _helper


@contextlib.contextmanager
def target_loop(loop: asyncio.AbstractEventLoop | None) -> Iterator[None]:
    """In this thread, run async steps on ``loop`` (another thread's running loop) while inside."""
    previous = getattr(_local, "target", None)
    _local.target = loop
    try:
        yield
    finally:
        _local.target = previous


class LoopThread:
    """An event loop running in a daemon thread, for :class:`AsyncExecution`.

    ``with LoopThread() as loop:`` starts it; leaving the block stops the
    loop, cancels what is still pending and closes it.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="crystallize-async-loop", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def __enter__(self) -> asyncio.AbstractEventLoop:
        self._thread.start()
        return self.loop

    def __exit__(self, *exc_info: object) -> None:
        async def cancel_pending() -> None:
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        try:
            asyncio.run_coroutine_threadsafe(cancel_pending(), self.loop).result(timeout=10)
        except Exception:  # noqa: BLE001 - stopping must not mask the run's own outcome
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
