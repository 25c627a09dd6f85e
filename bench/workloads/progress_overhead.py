"""progress_overhead: what live progress bars add to a run (ours only).

The same experiment (with ``ArtifactPlugin`` on, in a scratch folder) runs
with ``ProgressPlugin(enabled=False)`` (installed, switched off: what CI and
pipes get) and with the bars on, drawing to a terminal-like console
(``rich.console.Console(force_terminal=True)``, 120 columns, writing to a
sink that only counts). Two shapes, runs alternating off, on, off, on ...
``--repeats`` times each; the ratio on / off is taken per adjacent pair and
its median reported, for wall-clock time (``*_ratio``) and for the
process's CPU time, all threads included (``*_cpu_ratio``).
``*_drawing_share`` is the drawing thread's own CPU time over the run's
wall time: the part of the cost that can be attributed directly, and that
the load of a shared machine does not blur. Pairs alternate their
order (off-on, on-off, ...), so whatever a run leaves to the next one does
not favour either mode:

- ``busy``: ``conditions`` x ``busy-replicates`` replicates, each spinning
  :func:`busy.burn` for ``busy-iterations`` turns (calibrated to about 2 ms),
  a run of about a second. The bars are drawn from the first instant
  (``delay=0``; the default waits half a second) at the default refresh
  rate, so the whole run pays for drawing. ``busy_ratio`` is the target
  (<= 1.02).
- ``trivial``: the ``step_overhead`` shape, ``conditions`` x ``replicates``
  x ``steps`` steps of ``data + 1`` (a few milliseconds in all), with the
  default delay, as users get it: such a run ends before the bars appear
  and prints one summary row. ``per_replicate_us`` = (on - off) / units
  includes that row's fixed cost.

With ``--without-progress`` the process blocks the plugin
(``CRYSTALLIZE_DISABLE_PLUGINS=progress``) and only runs without it, so the
driver can compare "installed but off" with "not installed"
(``installed_ratio``, across processes, so noisier).

Sanity checks: every run's metrics are complete and identical between the
modes, and the "on" runs really drew (bytes reached the console; the busy
runs redrew the live area).
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from time import process_time

import _common
from _common import now
from busy import burn


def drawing_thread_cpu() -> float:
    """CPU seconds used so far by the plugin's drawing thread (0 before it exists)."""
    for thread in threading.enumerate():
        if thread.name == "crystallize-progress" and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


class CountingFile:
    """A write-only text file that keeps only counts: bytes and live-area redraws."""

    def __init__(self) -> None:
        self.written = 0
        self.redraws = 0

    def write(self, text: str) -> int:
        self.written += len(text)
        self.redraws += text.count("\x1b[1A")  # rich moves the cursor up to redraw the area
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


@dataclass
class Timing:
    """One timed run: wall and process CPU seconds, and the drawing thread's CPU seconds."""

    wall: float
    cpu: float
    drawing: float


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--conditions", type=int, default=4)
    p.add_argument("--replicates", type=int, default=300, help="trivial shape")
    p.add_argument("--steps", type=int, default=10, help="trivial shape")
    p.add_argument("--busy-replicates", type=int, default=100)
    p.add_argument("--busy-iterations", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=4, help="pairs of runs per shape")
    p.add_argument("--without-progress", action="store_true", help="block the plugin; off runs only")
    args = p.parse_args()
    if args.framework != "ours":
        raise SystemExit("progress_overhead measures crystallize-progress, which crystallize-ml does not have")
    if args.without_progress:
        os.environ["CRYSTALLIZE_DISABLE_PLUGINS"] = "progress"
    fw = _common.framework(args.framework)
    from rich.console import Console

    from crystallize_progress import ProgressPlugin

    defaults = ProgressPlugin()
    run_numbers = itertools.count()

    @fw.pipeline_step()
    def add_one(data, ctx):
        return data + 1

    @fw.pipeline_step()
    def spin(data, ctx, iterations=0):
        ctx.metrics.add("spin", burn(iterations))
        return data

    @fw.data_source
    def zero(ctx):
        return 0

    def timed(shape: str, mode: str, scratch: Path, reference: dict) -> Timing:
        """Build and run the ``shape`` experiment with the bars ``off``, ``on`` or ``absent``."""
        plugins: list = [fw.ArtifactPlugin(root_dir=str(scratch / f"run-{next(run_numbers)}"))]
        sink = CountingFile()
        if mode == "on":
            console = Console(file=sink, force_terminal=True, width=120, color_system="truecolor")
            # busy: drawn from the first instant (strict); trivial: the default delay, as users get it
            delay = 0 if shape == "busy" else defaults.delay
            plugins.append(ProgressPlugin(enabled=True, console=console, delay=delay))
        elif mode == "off":
            plugins.append(ProgressPlugin(enabled=False))
        if shape == "busy":
            steps, replicates = [spin(iterations=args.busy_iterations)], args.busy_replicates
        else:
            steps, replicates = [add_one() for _ in range(args.steps)], args.replicates
        exp = fw.Experiment(
            datasource=zero(),
            pipeline=fw.Pipeline(steps),
            plugins=plugins,
            treatments=_common.treatments(fw, args.conditions),
            replicates=replicates,
            name=f"progress_{shape}",
        )
        drawing, cpu, start = drawing_thread_cpu(), process_time(), now()
        result = exp.run()
        timing = Timing(now() - start, process_time() - cpu, drawing_thread_cpu() - drawing)
        _common.check(not result.errors, f"replicates failed: {result.errors}")
        found = {"baseline": result.metrics.baseline.metrics}
        found.update({k: v.metrics for k, v in result.metrics.treatments.items()})
        _common.check(found == reference.setdefault(shape, found), f"{shape}: metrics differ between runs")
        if mode == "on":
            _common.check(sink.written > 0, f"{shape}: the bars drew nothing")
            if shape == "busy":
                _common.check(sink.redraws > 0, "busy: the live area was never redrawn")
        return timing

    modes = ("absent",) if args.without_progress else ("off", "on")
    values: dict[str, float] = {}
    reference: dict = {}
    with _common.scratch_dir(args.tmp_dir, "progress") as scratch:
        _common.warm_up(fw, scratch)
        for shape in ("trivial", "busy"):
            timed(shape, modes[-1], scratch, reference)  # warm: imports rich, starts the drawing thread
            runs: dict[str, list[Timing]] = {mode: [] for mode in modes}
            for repeat in range(args.repeats):
                for mode in modes if repeat % 2 == 0 else modes[::-1]:  # off-on, then on-off: no order bias
                    runs[mode].append(timed(shape, mode, scratch, reference))
            if args.without_progress:
                values[f"{shape}_off_s"] = statistics.median(t.wall for t in runs["absent"])
                continue
            off, on = runs["off"], runs["on"]
            values[f"{shape}_off_s"] = statistics.median(t.wall for t in off)
            values[f"{shape}_on_s"] = statistics.median(t.wall for t in on)
            values[f"{shape}_ratio"] = statistics.median(b.wall / a.wall for a, b in zip(off, on))
            values[f"{shape}_cpu_ratio"] = statistics.median(b.cpu / a.cpu for a, b in zip(off, on))
            values[f"{shape}_drawing_share"] = statistics.median(t.drawing / t.wall for t in on)
        if not args.without_progress:
            units = args.conditions * args.replicates
            values["per_replicate_us"] = (values["trivial_on_s"] - values["trivial_off_s"]) / units * 1e6
    info = {
        "busy_delay_s": 0,
        "trivial_delay_s": defaults.delay,
        "refresh_per_second": defaults.refresh_per_second,
        "console": "rich, force_terminal, 120 columns, to a counting sink",
        "units_trivial": args.conditions * args.replicates,
        "units_busy": args.conditions * args.busy_replicates,
    }
    _common.emit("progress_overhead", fw.name, values, info)


if __name__ == "__main__":
    main()
