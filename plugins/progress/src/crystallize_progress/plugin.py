"""The :class:`ProgressPlugin`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crystallize import hookimpl
from crystallize_progress.activation import should_display
from crystallize_progress.tally import RunTally

if TYPE_CHECKING:
    from rich.console import Console

    from crystallize.plugin import ReplicateError, ReplicateOutcome, Run
    from crystallize_progress.display import Display

__all__ = ["ProgressPlugin"]

log = logging.getLogger("crystallize.progress")


class ProgressPlugin:
    """Live progress bars: one per experiment and one per condition, with done and failed
    counts, rate and ETA.

    Installed, it is on when standard error is a terminal and off in CI (the
    ``CI`` variable), in Jupyter notebooks, in pipes and files;
    ``CRYSTALLIZE_PROGRESS=1``/``0`` forces it on/off. Pass a configured one
    to an experiment to decide in code::

        Experiment(..., plugins=[ProgressPlugin(enabled=True)])

    The bars are driven only by hooks that run in the main process
    (``before_run``, ``on_replicate_outcome``, ``on_condition_complete``,
    ``after_run``), so they work the same under every executor — serial,
    threads, processes, Dask — and for every experiment of an
    :class:`~crystallize.ExperimentGraph`, one after the other. A resumed
    run counts what an earlier run finished as *reused*. A failed replicate
    shows in red and the run carries on.

    One plugin object serves every run of the process, also runs overlapping
    in threads: what it shows is kept per run. It never raises into a run:
    if drawing fails, the bars turn off and one warning is logged.

    :param enabled: ``True`` or ``False`` to decide in code; ``None`` (the
        default) lets the environment decide (see
        ``crystallize_progress.activation``).
    :param console: the ``rich.console.Console`` to draw on; by default one
        on standard error. Pass ``Console(file=..., force_terminal=True)``
        to capture the bars (tests do).
    :param refresh_per_second: redraws per second while counts change (at
        most); while nothing changes the bars are redrawn once a second.
    :param condition_bars: an experiment with at most this many conditions
        shows a row for each; with more, rows appear only for conditions
        that are running or have failed. ``0`` shows the experiment's row only.
    :param delay: seconds a run must last before its bars appear. A run
        that ends sooner prints one summary row instead (and a row per
        failed condition), so quick runs cost almost nothing and do not
        flicker.
    """

    plugin_name = "progress"

    def __init__(
        self,
        enabled: bool | None = None,
        *,
        console: Console | None = None,
        refresh_per_second: float = 5.0,
        condition_bars: int = 8,
        delay: float = 0.5,
    ) -> None:
        if enabled is not None and not isinstance(enabled, bool):
            raise TypeError(f"ProgressPlugin(enabled=...) takes True, False or None, got {enabled!r}")
        if isinstance(refresh_per_second, bool) or not isinstance(refresh_per_second, (int, float)):
            raise TypeError(f"ProgressPlugin(refresh_per_second=...) takes a number, got {refresh_per_second!r}")
        if not 0 < refresh_per_second <= 60:
            raise ValueError(
                f"ProgressPlugin(refresh_per_second={refresh_per_second!r}): use a rate above 0 and at most 60"
            )
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay < float("inf"):
            raise ValueError(f"ProgressPlugin(delay={delay!r}): use a number of seconds >= 0 (0: draw at once)")
        if isinstance(condition_bars, bool) or not isinstance(condition_bars, int) or condition_bars < 0:
            raise ValueError(
                f"ProgressPlugin(condition_bars={condition_bars!r}): use a whole number >= 0 (0: experiment rows only)"
            )
        self.enabled = enabled
        self.console = console
        self.refresh_per_second = float(refresh_per_second)
        self.condition_bars = condition_bars
        self.delay = float(delay)
        self._shown: dict[str, tuple[RunTally, Display]] = {}  # run_id -> what is drawn for it
        self._warned = False

    # -- hooks (all run in the main process) --------------------------------------------

    @hookimpl
    def before_run(self, run: Run) -> None:
        """Decide whether this run shows bars; if so, give it rows."""
        try:
            from crystallize.plugin import PROGRESS_FACT

            # An engine's progress=True/False decides when this plugin was not configured in code.
            enabled = self.enabled if self.enabled is not None else run.facts.get(PROGRESS_FACT)
            if not should_display(enabled, self.console):
                return
            from crystallize_progress.display import attach

            tally = RunTally(run)
            display = attach(
                self.console,
                tally,
                refresh_per_second=self.refresh_per_second,
                delay=self.delay,
                condition_bars=self.condition_bars,
            )
            if display is not None:
                self._shown[run.run_id] = (tally, display)
        except Exception as exc:  # noqa: BLE001 - progress must never stop a run
            self._failed("before_run", exc)

    @hookimpl(trylast=True)
    def on_replicate_outcome(self, run: Run, outcome: ReplicateOutcome) -> None:
        """Count one finished replicate (O(1); drawing happens elsewhere)."""
        shown = self._shown.get(run.run_id)
        if shown is not None:
            try:
                shown[0].record(outcome)
            except Exception as exc:  # noqa: BLE001
                self._failed("on_replicate_outcome", exc)

    @hookimpl
    def on_condition_complete(self, run: Run, condition: str, errors: Mapping[int, ReplicateError]) -> None:
        """Settle a finished condition's counts on the core's own count of failures."""
        shown = self._shown.get(run.run_id)
        if shown is not None:
            try:
                shown[0].close(condition, len(errors))
            except Exception as exc:  # noqa: BLE001
                self._failed("on_condition_complete", exc)

    @hookimpl
    def after_run(self, run: Run) -> None:
        """Draw the run's final state; stop drawing after the last overlapping run."""
        shown = self._shown.pop(run.run_id, None)
        if shown is None:
            return
        tally, display = shown
        try:
            from crystallize_progress.display import detach

            tally.finish(run.status)
            detach(display, tally)
        except Exception as exc:  # noqa: BLE001
            self._failed("after_run", exc)

    # -- helpers ------------------------------------------------------------------------

    def _failed(self, hook: str, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning("progress bars: %s failed (%s: %s); the run goes on", hook, type(exc).__name__, exc)

    def __repr__(self) -> str:
        options: list[Any] = [f"enabled={self.enabled!r}"]
        if self.console is not None:
            options.append(f"console={self.console!r}")
        return f"ProgressPlugin({', '.join(options)})"
