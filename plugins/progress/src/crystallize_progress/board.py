"""What is drawn: :class:`Board`, the rows of every run on one console, as ``rich`` text.

One row per experiment and, below it, one per condition::

    ✗ demo         ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  60/60  57 done  3 failed  39.8/s  0:00:01
    ✓   baseline   ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  20/20  20 done            34.2/s  0:00:00
    ✗   fast       ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  20/20  17 done  3 failed  29.4/s  0:00:01
    •   slow       ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  12/20  12 done            41.8/s  eta 0:00:01

The columns are aligned by hand and rows are yielded as ``rich`` segments
with styles parsed once: a redraw of a few rows then costs about a quarter
of a millisecond, where a ``rich`` progress table (which measures every cell
each time) costs several. The rate is the number of replicates finished
(done or failed; reused ones do not count) per second over the last
:data:`WINDOW_S` seconds; the ETA is what is left at that rate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions

    from crystallize_progress.tally import RunTally, Tally

__all__ = ["Board", "Rows", "WINDOW_S", "rate", "clock"]

WINDOW_S = 30.0
BAR, THIN = "━", "─"

_style = Style.parse
PLAIN, BOLD, DIM = Style(), _style("bold"), _style("dim")
GREEN, RED, BOLD_RED, YELLOW, BOLD_YELLOW, CYAN = (
    _style(s) for s in ("green", "red", "bold red", "yellow", "bold yellow", "cyan")
)
BAR_RUNNING, BAR_DONE, BAR_FAILED, BAR_BACK = _style("magenta"), GREEN, RED, _style("grey23")

#: ``(glyph, style)`` by state.
MARKS = {
    "waiting": ("·", DIM),
    "running": ("•", CYAN),
    "completed": ("✓", GREEN),
    "failed": ("✗", BOLD_RED),
    "interrupted": ("!", BOLD_YELLOW),
}

Row = list[Segment]


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

    def rows(
        self,
        width: int,
        now: float | None = None,
        runs: list[tuple[RunTally, int]] | None = None,
        colour: bool = True,
    ) -> list[Row]:
        """The segments of each row (of ``runs``, by default every run shown), columns aligned.

        The bar gets what ``width`` leaves of the row (4 to 40 cells); on a
        terminal too narrow even for that, the rate column goes. Without
        colour, the unfinished part of a bar is drawn with a thinner line.
        """
        now = time.monotonic() if now is None else now
        cells = [
            (run, tally, _cells(run, tally, now))
            for run, condition_bars in (self.runs if runs is None else runs)
            for tally in self.tallies(run, condition_bars)
        ]
        if not cells:
            return []
        label_w = max(cell_len(c[1]) for _, _, c in cells)
        count_w = max(len(c[2]) for _, _, c in cells)
        outcome_w = max(_width(c[3]) for _, _, c in cells)
        rate_w = max(len(c[4]) for _, _, c in cells)
        fixed = 2 + label_w + 1 + 1 + count_w + 2 + outcome_w + 2 + rate_w + 2 + len("eta 0:00:00")
        with_rate = width - fixed >= 4 or width - fixed + rate_w + 2 < 4
        if not with_rate:
            fixed -= rate_w + 2
        bar_w = max(4, min(40, width - fixed))
        back = BAR if colour else THIN
        rows = []
        for run, tally, (mark, label, count, outcome, speed, when) in cells:
            glyph, style = MARKS[mark]
            row = [
                Segment(glyph, style),
                Segment(" "),
                Segment(label + " " * (label_w - cell_len(label)), BOLD if tally is run.experiment else PLAIN),
                Segment(" "),
                *_bar(tally, bar_w, mark, back),
                Segment(" " + count.rjust(count_w) + "  "),
                *outcome,
                Segment(" " * (outcome_w - _width(outcome)) + "  "),
            ]
            if speed or when:
                if with_rate:
                    row += [Segment(speed.rjust(rate_w), CYAN), Segment("  ")]
                row.append(Segment(when, YELLOW if when.startswith("eta") else DIM))
            rows.append(row)
        return rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        yield from _join(self.rows(options.max_width, colour=_coloured(console)))


class Rows:
    """The rows of some runs, to print once (a summary, or a run leaving the live area)."""

    def __init__(self, board: Board, runs: list[tuple[RunTally, int]]) -> None:
        self.board = board
        self.runs = runs

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        rows = self.board.rows(options.max_width, runs=self.runs, colour=_coloured(console))
        yield from _join(rows)
        if rows:
            yield Segment.line()


def _coloured(console: Console) -> bool:
    return console.color_system is not None and not console.no_color


def _join(rows: list[Row]) -> Iterator[Segment]:
    for index, row in enumerate(rows):
        if index:
            yield Segment.line()
        yield from row


def _width(segments: list[Segment]) -> int:
    return sum(cell_len(segment.text) for segment in segments)


def _cells(run: RunTally, tally: Tally, now: float) -> tuple[str, str, str, list[Segment], str, str]:
    """``(state, label, count, outcome, rate, time)`` of one row, before padding."""
    mark = state(run, tally)
    label = tally.label if tally is run.experiment else "  " + tally.label
    count = f"{tally.finished}/{tally.total}"
    outcome: list[Segment] = []
    if mark != "waiting" and (tally.done or tally.failed or not tally.reused):
        outcome.append(Segment(f"{tally.done} done", GREEN if tally.done else PLAIN))
        if tally.failed:
            outcome += [Segment("  "), Segment(f"{tally.failed} failed", BOLD_RED)]
    if tally.reused:
        if outcome:
            outcome.append(Segment("  "))
        outcome.append(Segment(f"{tally.reused} reused", DIM))
    if tally is run.experiment and run.status in ("interrupted", "failed") and tally.finished < tally.total:
        ending = BOLD_YELLOW if run.status == "interrupted" else BOLD_RED
        outcome += [Segment("  "), Segment(run.status, ending)]
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


def _bar(tally: Tally, width: int, mark: str, back: str) -> list[Segment]:
    filled = min(width, round(width * tally.finished / max(1, tally.total)))
    style = BAR_FAILED if tally.failed else BAR_DONE if mark == "completed" else BAR_RUNNING
    return [Segment(BAR * filled, style), Segment(back * (width - filled), BAR_BACK)]
