"""The live display: one ``rich`` live area per console, redrawn from one background thread.

Hooks never draw. They add to counters (:mod:`crystallize_progress.tally`).
One *ticker* thread per process wakes ``refresh_per_second`` times a second
while some run is shown, samples the counters and redraws an area whose
counts changed — and every area once a second anyway, so clocks move during
long replicates. The cost of drawing is bounded by the refresh rate, whatever
the number of replicates. With no run shown the ticker sleeps without
waking, so an idle process pays nothing; it is started once, not per run,
because starting and joining a thread around every run costs more than a
short run itself on a busy machine.

Every run shown on one console shares one :class:`Display` (a terminal has
room for one live area): runs overlapping in threads get their rows in the
same area. The area appears once the first run has lasted ``delay`` seconds
and stops with the last run, leaving its final state on the screen; a run
that ends while others go on is printed above the area. A run that ends
before the area appeared prints a one-row summary instead. A console that is
not a terminal (``enabled=True`` into a file or pipe) gets the summaries only.

A display whose drawing fails (a closed or broken terminal) turns itself
off, gives ``sys.stdout``/``sys.stderr`` back, and logs one warning; that
console shows no bars again in this process.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from rich.live import Live

from crystallize_progress.board import Board, Rows

if TYPE_CHECKING:
    from rich.console import Console

    from crystallize_progress.tally import RunTally

__all__ = ["Display", "attach", "detach", "STDERR"]

log = logging.getLogger("crystallize.progress")

IDLE_REFRESH_S = 1.0  # redraw at least this often while nothing changes (clocks)

_registry_lock = threading.Lock()
_displays: dict[object, Display] = {}
_broken: set[object] = set()  # consoles whose display failed: never tried again
STDERR = "stderr"  # the registry key of the process's standard error


class Display:
    """The live progress area of one console.

    :param key: what the display is registered under (its console's id, or :data:`STDERR`).
    :param console: where to draw.
    :param refresh_per_second: how often the ticker looks for changes.
    :param delay: seconds the first run must last before the live area appears.
    """

    def __init__(self, key: object, console: Console, refresh_per_second: float, delay: float) -> None:
        self.key = key
        self.console = console
        self.board = Board()
        self.live = Live(self.board, console=console, auto_refresh=False, transient=False)
        self.interval = 1.0 / refresh_per_second
        self.delay = delay
        self.broken = False
        self._lock = threading.Lock()
        self._since = 0.0  # when the area's first run started
        self._next = 0.0  # when the ticker looks next
        self._last_draw = 0.0

    @property
    def drawing(self) -> bool:
        """Whether the live area is on the screen."""
        return self.live.is_started

    def add(self, run: RunTally, condition_bars: int) -> None:
        """Give ``run`` its rows; with the first run, wake the ticker (and draw now if not delayed)."""
        with self._lock:
            first = not self.board.runs
            self.board.runs.append((run, condition_bars))
            if not first or not self.console.is_terminal:  # a file or a pipe gets the summaries only
                return
            self._since = self._next = time.monotonic()
            if self.delay <= 0:
                self._start()
        _ticker.watch(self)

    def remove(self, run: RunTally) -> bool:
        """``run`` ended: draw its final state; stop drawing if it was the last run (returns whether)."""
        with self._lock:
            entry = next((e for e in self.board.runs if e[0] is run), None)
            if entry is None:
                return not self.board.runs
            self.board.sample(time.monotonic())
            others = [e for e in self.board.runs if e[0] is not run]
            if self.drawing:
                if others:  # its rows go above the area; the others stay in it
                    self.board.runs = others
                    self._print([entry])
                    self._draw()
                else:
                    self.live.stop()  # draws the final state, which stays on the screen
                    self.board.runs = []
            else:  # it ended before the area appeared: a short summary, printed once
                self.board.runs = others
                self._print([(run, -1 if entry[1] else 0)])
            last = not others
        if last:
            _ticker.forget(self)
        return last

    def tick(self, now: float) -> float:
        """Sample, and draw what changed; returns when to look next (called by the ticker)."""
        with self._lock:
            if self.broken or not self.board.runs:
                return now + 1.0
            if now >= self._next:
                changed = self.board.sample(now)
                if not self.drawing:
                    if now - self._since >= self.delay:
                        self._start()
                elif changed or now - self._last_draw >= IDLE_REFRESH_S:
                    self._draw()
                self._next = now + self.interval
            return self._next

    def _start(self) -> None:
        self.live.start(refresh=True)
        self._last_draw = time.monotonic()

    def _draw(self) -> None:
        self.live.refresh()
        self._last_draw = time.monotonic()

    def _print(self, runs: list[tuple[RunTally, int]]) -> None:
        self.console.print(Rows(self.board, runs), end="")

    def fail(self, exc: BaseException) -> None:
        """Turn this display off after a drawing error: give the streams back, log once."""
        if self.broken:
            return
        self.broken = True
        _broken.add(self.key)
        _ticker.forget(self)
        log.warning(
            "progress bars turned off: drawing on %s failed with %s: %s",
            _describe(self.console),
            type(exc).__name__,
            exc,
        )
        try:
            self.live.stop()  # gives sys.stdout/sys.stderr back first, then tries to draw
        except Exception:  # noqa: BLE001 - the console failed already
            pass


class _Ticker:
    """The process's one drawing thread: ticks the displays that show a run, sleeps otherwise."""

    def __init__(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._displays: list[Display] = []
        self._thread: threading.Thread | None = None

    def watch(self, display: Display) -> None:
        with self._wake:
            if display not in self._displays:
                self._displays.append(display)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="crystallize-progress", daemon=True)
                self._thread.start()
            self._wake.notify()

    def forget(self, display: Display) -> None:
        with self._wake:
            if display in self._displays:
                self._displays.remove(display)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._displays:
                    self._wake.wait()  # no run shown: sleep until one starts
                displays = list(self._displays)
            now = time.monotonic()
            soonest = now + 1.0
            for display in displays:
                try:
                    soonest = min(soonest, display.tick(now))
                except Exception as exc:  # noqa: BLE001 - a broken terminal must never reach a run
                    display.fail(exc)
            with self._wake:
                if self._displays:
                    self._wake.wait(max(0.0, soonest - time.monotonic()))

    def reset_in_child(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._displays = []
        self._thread = None


_ticker = _Ticker()


def _describe(console: Console) -> str:
    name = getattr(console.file, "name", None)
    return repr(name) if isinstance(name, str) else type(console.file).__name__


def attach(
    console: Console | None, run: RunTally, *, refresh_per_second: float, delay: float, condition_bars: int
) -> Display | None:
    """Show ``run`` on ``console`` (``None``: standard error); ``None`` if drawing there failed (now or before).

    A display of standard error gets a console made when it starts, so that
    colours and size are those of the ``sys.stderr`` of that moment.
    """
    key: object = STDERR if console is None else id(console)
    with _registry_lock:
        if key in _broken:
            return None
        display = _displays.get(key)
        if display is None:
            if console is None:
                from rich.console import Console

                console = Console(stderr=True)
            display = _displays[key] = Display(key, console, refresh_per_second, delay)
        try:
            display.add(run, condition_bars)
        except Exception as exc:  # noqa: BLE001 - a terminal that cannot be drawn on
            display.fail(exc)
            _displays.pop(key, None)
            return None
        return display


def detach(display: Display, run: RunTally) -> None:
    """``run`` ended: draw its final state; stop the display after its last run."""
    with _registry_lock:
        try:
            if display.broken or display.remove(run):
                _drop(display)
        except Exception as exc:  # noqa: BLE001
            display.fail(exc)
            _drop(display)


def _drop(display: Display) -> None:
    if _displays.get(display.key) is display:
        del _displays[display.key]


def _forget_in_child() -> None:
    """In a forked child (a process-pool worker), forget the parent's displays.

    While bars are shown, ``rich`` routes ``sys.stdout``/``sys.stderr``
    through the console so that prints appear above the bars. A worker forked
    meanwhile must not draw the parent's bars (nor wait on a lock the
    parent's drawing thread held at the fork): it gets the real streams back.
    """
    for name in ("stdout", "stderr"):
        real = getattr(getattr(sys, name), "rich_proxied_file", None)
        if real is not None:
            setattr(sys, name, real)
    global _registry_lock
    _registry_lock = threading.Lock()
    _displays.clear()
    _ticker.reset_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
