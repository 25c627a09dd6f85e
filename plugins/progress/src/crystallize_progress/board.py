"""What is drawn: :class:`Board`, the rows of every run on one console, as ``rich`` text.

One row per experiment and, below it, one per condition::

    ✗ demo         ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  60/60  57 done  3 failed  39.8/s  0:00:01
    ✓   baseline   ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  20/20  20 done            34.2/s  0:00:00
    ✗   fast       ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  20/20  17 done  3 failed  29.4/s  0:00:01
    •   slow       ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  12/20  12 done            41.8/s  eta 0:00:01

The columns are aligned by hand and each row is one :class:`rich.text.Text`:
a ``rich`` table measures every cell on every redraw and costs several
times more. The rate is the number of replicates finished (done or failed;
reused ones do not count) per second over the last :data:`WINDOW_S`
seconds; the ETA is what is left at that rate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions

    from crystallize_progress.tally import RunTally, Tally

__all__ = ["Board", "WINDOW_S", "rate", "clock"]

WINDOW_S = 30.0
BAR = "━"

#: ``(glyph, style)`` by state.
MARKS = {
    "waiting": ("·", "dim"),
    "running": ("•", "cyan"),
    "completed": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "interrupted": ("!", "bold yellow"),
}


def sample(tally: Tally, now: float, since: float) -> bool:
    """Record ``tally``'s count for its rate if it changed; whether it did.

    ``since`` is when the bar's first unit is taken to have started, used
    for a condition's first sample: the last time its experiment's count
    changed before (a worker became free then), or the run's start.
    """
    count = tally.done + tally.failed
    samples = tally.samples
    if samples is None:
        if not count:
            return False
        tally.started_at = since
        samples = tally.samples = deque([(since, 0)])
    if samples[-1][1] == count:
        return False
    samples.append((now, count))
    horizon = now - WINDOW_S
    while len(samples) > 2 and samples[1][0] < horizon:  # keep one sample at or before the window's start
        samples.popleft()
    return True


def rate(tally: Tally, now: float) -> float | None:
    """Replicates finished per second: over the last half minute while running, overall once ended."""
    count = tally.done + tally.failed
    if tally.ended_at is not None:
        spent = tally.ended_at - tally.started_at
        return count / spent if count and spent > 0 else None
    samples = tally.samples
    since, before = samples[0] if samples else (tally.started_at, 0)
    spent = now - since
    return (count - before) / spent if count > before and spent > 0 else None


def clock(seconds: float) -> str:
    """``H:MM:SS``."""
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def state(run: RunTally, tally: Tally) -> str:
    """``waiting``, ``running``, ``completed``, ``failed`` or ``interrupted``."""
    if tally is run.experiment:
        if run.status == "completed" and tally.failed:
            return "failed"
        return run.status if run.status in MARKS else "failed"
    if tally.closed or tally.finished >= tally.total:
        return "failed" if tally.failed else "completed"
    if run.status == "interrupted":
        return "interrupted"
    if run.status != "running":
        return "failed"
    return "running" if tally.started else "waiting"


class Board:
    """The rows of the runs shown on one console; a ``rich`` renderable.

    :ivar runs: ``(run, condition_bars)`` for each run shown, in start order.
    """

    def __init__(self) -> None:
        self.runs: list[tuple[RunTally, int]] = []

    def tallies(self, run: RunTally, condition_bars: int) -> list[Tally]:
        """The bars of ``run`` that get a row: the experiment's, then the conditions worth showing.

        With at most ``condition_bars`` conditions, every condition has a
        row; with more, only those running now and those that failed. A
        negative ``condition_bars`` keeps only the conditions that failed
        (the summary of a run too short to be drawn live).
        """
        rows = [run.experiment]
        if condition_bars == 0:
            return rows
        if condition_bars > 0 and len(run.conditions) <= condition_bars:
            rows.extend(run.conditions.values())
        else:
            live = condition_bars > 0
            rows.extend(t for t in run.conditions.values() if t.failed or (live and t.started and not t.closed))
        return rows

    def sample(self, now: float) -> bool:
        """Record counts for the rates; whether any changed since the last call."""
        changed = False
        for run, _ in self.runs:
            experiment = run.experiment
            previous = experiment.samples[-1][0] if experiment.samples else experiment.started_at
            if sample(experiment, now, experiment.started_at):
                changed = True
                for tally in run.conditions.values():
                    sample(tally, now, previous)
        return changed

    def lines(self, width: int, now: float | None = None, runs: list[tuple[RunTally, int]] | None = None) -> list[Text]:
        """One :class:`~rich.text.Text` per row (of ``runs``, by default every run), columns aligned.

        The bar gets what ``width`` leaves of the row (10 to 40 cells); a row
        still too wide is cut with an ellipsis, never wrapped.
        """
        now = time.monotonic() if now is None else now
        rows = [
            (run, tally, _cells(run, tally, now))
            for run, condition_bars in (self.runs if runs is None else runs)
            for tally in self.tallies(run, condition_bars)
        ]
        if not rows:
            return []
        label_w = max(len(c[1]) for _, _, c in rows)
        count_w = max(len(c[2]) for _, _, c in rows)
        outcome_w = max(c[3].cell_len for _, _, c in rows)
        rate_w = max(len(c[4]) for _, _, c in rows)
        fixed = 2 + label_w + 1 + 1 + count_w + 2 + outcome_w + 2 + rate_w + 2 + len("eta 0:00:00")
        bar_w = max(10, min(40, width - fixed))
        lines = []
        for run, tally, (mark, label, count, outcome, speed, when) in rows:
            glyph, style = MARKS[mark]
            line = Text(no_wrap=True, overflow="ellipsis", end="")
            line.append(glyph, style=style)
            line.append(" ")
            line.append(label.ljust(label_w), style="bold" if tally is run.experiment else "")
            line.append(" ")
            _bar(line, tally, bar_w, mark)
            line.append(" ")
            line.append(count.rjust(count_w))
            line.append("  ")
            line.append_text(outcome)
            line.append(" " * (outcome_w - outcome.cell_len))
            line.append("  ")
            line.append(speed.rjust(rate_w), style="cyan")
            line.append("  ")
            line.append(when, style="yellow" if when.startswith("eta") else "dim")
            line.rstrip()
            lines.append(line)
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        lines = self.lines(options.max_width)
        if lines:
            yield Text("\n", end="", no_wrap=True, overflow="ellipsis").join(lines)


def _cells(run: RunTally, tally: Tally, now: float) -> tuple[str, str, str, Text, str, str]:
    """``(state, label, count, outcome, rate, time)`` of one row, before padding."""
    mark = state(run, tally)
    label = tally.label if tally is run.experiment else "  " + tally.label
    count = f"{tally.finished}/{tally.total}"
    outcome = Text()
    if mark != "waiting":
        outcome.append(f"{tally.done} done", style="green" if tally.done else "")
        if tally.failed:
            outcome.append("  ")
            outcome.append(f"{tally.failed} failed", style="bold red")
    if tally.reused:
        outcome.append("  " if outcome else "")
        outcome.append(f"{tally.reused} reused", style="dim")
    if tally is run.experiment and run.status in ("interrupted", "failed") and tally.finished < tally.total:
        outcome.append("  ")
        outcome.append(run.status, style="bold yellow" if run.status == "interrupted" else "bold red")
    speed = rate(tally, now)
    speed_text = "" if not speed else f"{speed:.1f}/s" if speed >= 1 else f"{1 / speed:.1f}s each"
    if tally.ended_at is not None:
        when = clock(tally.ended_at - tally.started_at) if tally.started else ""
    elif not tally.started:
        when = ""
    else:
        left = tally.total - tally.finished
        when = "eta " + (clock(left / speed) if speed else "-:--:--")
    return mark, label, count, outcome, speed_text, when


def _bar(line: Text, tally: Tally, width: int, mark: str) -> None:
    total = max(1, tally.total)
    filled = min(width, round(width * tally.finished / total))
    if tally.failed:
        style = "red"
    elif mark == "completed":
        style = "green"
    else:
        style = "magenta"
    line.append(BAR * filled, style=style)
    line.append(BAR * (width - filled), style="grey23")
