"""Experiments to show progress for, and a reader for what the bars printed."""

from __future__ import annotations

import io
import os
import re
import time

from rich.console import Console

from crystallize import Experiment, Pipeline, Treatment, data_source, pipeline_step

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ROW = re.compile(
    r"^(?P<mark>\S) +(?P<label>\S+) +[━─]+ +(?P<finished>\d+)/(?P<total>\d+)"
    r"(?: +(?P<done>\d+) done)?(?: +(?P<failed>\d+) failed)?(?: +(?P<reused>\d+) reused)?"
    r"(?: +(?P<ending>interrupted|failed))?"
)


def recording_console(width: int = 120) -> Console:
    """A console that behaves like a colour terminal and keeps everything written to it."""
    return Console(file=io.StringIO(), force_terminal=True, width=width, color_system="standard")


def written(console: Console) -> str:
    return console.file.getvalue()


def plain(text: str) -> str:
    """``text`` without colours and cursor movements."""
    return ANSI.sub("", text)


def rows(text: str) -> dict[str, dict[str, object]]:
    """The last row printed for each label: ``{label: {mark, finished, total, done, failed, reused, ...}}``."""
    found: dict[str, dict[str, object]] = {}
    for line in re.split(r"[\r\n]", plain(text)):
        match = ROW.match(line.strip())
        if match:
            row: dict[str, object] = {
                k: int(v) if v is not None and v.isdigit() else v for k, v in match.groupdict().items()
            }
            for key in ("done", "failed", "reused"):
                row[key] = row[key] or 0
            found[str(row["label"])] = row
    return found


def labels_in_order(text: str) -> list[str]:
    """Experiment and condition labels in the order they first appear."""
    seen: list[str] = []
    for line in re.split(r"[\r\n]", plain(text)):
        match = ROW.match(line.strip())
        if match and match["label"] not in seen:
            seen.append(match["label"])
    return seen


@data_source
def replicate_number(ctx):
    return ctx["replicate"]


@pipeline_step()
def work(data, ctx, pause=0.0, fail_in="", fail_replicates=(), fail_while=""):
    """Sleep ``pause``; fail in condition ``fail_in`` for the listed replicates (while ``fail_while`` exists)."""
    if pause:
        time.sleep(pause)
    failing = not fail_while or os.path.exists(fail_while)
    if failing and ctx["condition"] == fail_in and data in fail_replicates:
        raise RuntimeError(f"replicate {data} fails on purpose")
    ctx.metrics.add("value", data)
    return data


def experiment(
    name: str = "demo",
    *,
    replicates: int = 10,
    treatments: tuple[str, ...] = ("fast", "slow"),
    pause: float = 0.0,
    fail_in: str = "",
    fail_replicates: tuple[int, ...] = (),
    fail_while: str = "",
    plugins: list[object] | None = None,
) -> Experiment:
    """An experiment of ``1 + len(treatments)`` conditions x ``replicates`` replicates."""
    return Experiment(
        datasource=replicate_number(),
        pipeline=Pipeline([work(pause=pause, fail_in=fail_in, fail_replicates=fail_replicates, fail_while=fail_while)]),
        plugins=plugins or [],
        name=name,
        treatments=[Treatment(t, {"level": i}) for i, t in enumerate(treatments, 1)],
        replicates=replicates,
    )
