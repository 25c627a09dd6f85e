"""ProgressPlugin drawing on a recording console: counts, engines, graphs, resume, failures."""

from __future__ import annotations

import io
import logging
import sys
import threading

import pytest
from progress_helpers import experiment, labels_in_order, plain, recording_console, replicate_number, rows, written

from crystallize import Artifact, Experiment, ExperimentGraph, ParallelExecution, Pipeline, PipelineStep, Treatment
from crystallize.plugin import active_plugins
from crystallize_artifacts import ArtifactPlugin
from crystallize_progress import ProgressPlugin

pytestmark = pytest.mark.timeout(120)


def shown(**options):
    """A plugin drawing at once (no delay), fast, on a recording console."""
    console = recording_console()
    options.setdefault("delay", 0)
    options.setdefault("refresh_per_second", 50)
    return ProgressPlugin(enabled=True, console=console, **options), console


def test_bars_count_done_and_failed_per_experiment_and_condition():
    plugin, console = shown()
    exp = experiment(replicates=10, fail_in="fast", fail_replicates=(2, 5, 7), plugins=[plugin])
    result = exp.run()

    assert sum(len(e) for e in result.errors.values()) == 3  # the run went on past the failures
    found = rows(written(console))
    assert (found["demo"]["finished"], found["demo"]["total"]) == (30, 30)
    assert (found["demo"]["done"], found["demo"]["failed"]) == (27, 3)
    assert (found["baseline"]["done"], found["baseline"]["failed"]) == (10, 0)
    assert (found["fast"]["done"], found["fast"]["failed"]) == (7, 3)
    assert (found["slow"]["done"], found["slow"]["failed"]) == (10, 0)
    assert found["demo"]["mark"] == "✗" and found["fast"]["mark"] == "✗" and found["baseline"]["mark"] == "✓"


def test_failures_are_drawn_in_red():
    plugin, console = shown()
    experiment(replicates=4, fail_in="slow", fail_replicates=(1,), plugins=[plugin]).run()
    out = written(console)
    # bold red (1;31) right before the count of failures, and a red bar on the failing rows
    assert "\x1b[1;31m1 failed" in out
    assert "\x1b[31m━" in out


def test_a_run_shows_a_rate_and_an_eta_while_it_runs_and_its_time_at_the_end():
    plugin, console = shown(refresh_per_second=20)
    experiment(replicates=8, treatments=("t",), pause=0.03, plugins=[plugin]).run()
    text = plain(written(console))
    assert "eta " in text  # while running
    assert "/s" in text  # a rate
    final = [line for line in text.replace("\r", "\n").splitlines() if line.strip().startswith("✓ demo")][-1]
    assert "eta" not in final and "0:00:0" in final  # the elapsed time once done


@pytest.mark.parametrize("engine", ["thread", "process"])
def test_counts_are_the_same_under_thread_and_process_pools(engine):
    plugin, console = shown()
    exp = experiment(
        replicates=6,
        fail_in="slow",
        fail_replicates=(0, 3),
        plugins=[plugin, ParallelExecution(max_workers=2, executor_type=engine)],
    )
    exp.run()
    found = rows(written(console))
    assert (found["demo"]["finished"], found["demo"]["done"], found["demo"]["failed"]) == (18, 16, 2)
    assert (found["slow"]["done"], found["slow"]["failed"]) == (4, 2)
    assert (found["fast"]["done"], found["fast"]["failed"]) == (6, 0)


class Produce(PipelineStep):
    def __init__(self, out: Artifact) -> None:
        self.out = out

    def __call__(self, data, ctx):
        self.out.write(str(data).encode())
        return data

    @property
    def params(self):
        return {}


class ReadBack(PipelineStep):
    def __call__(self, path, ctx):
        ctx.metrics.add("value", int(path.read_text()))
        return path

    @property
    def params(self):
        return {}


def test_a_graph_gets_one_bar_per_experiment_in_order(tmp_path):
    plugin, console = shown()
    out = Artifact("value.txt")
    producer = Experiment(
        replicate_number(),
        Pipeline([Produce(out)]),
        plugins=[plugin, ArtifactPlugin(root_dir=str(tmp_path))],
        outputs=[out],
        name="producer",
        treatments=[Treatment("double", {"k": 2})],
        replicates=3,
    )
    consumer = Experiment(
        producer.artifact_datasource(step="Produce", name="value.txt"),
        Pipeline([ReadBack()]),
        plugins=[plugin, ArtifactPlugin(root_dir=str(tmp_path))],
        name="consumer",
    )

    results = ExperimentGraph(consumer, producer).run()

    assert all(r.ok for r in results.values())
    text = written(console)
    order = [label for label in labels_in_order(text) if label in ("producer", "consumer")]
    assert order == ["producer", "consumer"]
    found = rows(text)
    assert (found["producer"]["finished"], found["producer"]["total"]) == (6, 6)
    assert (found["consumer"]["finished"], found["consumer"]["total"]) == (6, 6)  # inherits the treatment


def test_a_resumed_run_counts_earlier_work_as_reused_so_the_total_is_honest(tmp_path):
    store = ArtifactPlugin(root_dir=str(tmp_path / "runs"))
    flag = tmp_path / "failing"
    flag.touch()
    failing = {"fail_in": "fast", "fail_replicates": (1, 3), "fail_while": str(flag)}
    first, _ = shown()
    experiment(replicates=5, plugins=[first, store], **failing).run()

    flag.unlink()
    plugin, console = shown()
    result = experiment(replicates=5, plugins=[plugin, store], **failing).run(strategy="resume")

    assert result.ok
    found = rows(written(console))
    # baseline and slow completed in the first run; fast had 3 of 5: 2 run now
    assert (found["baseline"]["finished"], found["baseline"]["reused"], found["baseline"]["done"]) == (5, 5, 0)
    assert (found["fast"]["finished"], found["fast"]["reused"], found["fast"]["done"]) == (5, 3, 2)
    assert (found["demo"]["finished"], found["demo"]["total"]) == (15, 15)
    assert (found["demo"]["reused"], found["demo"]["done"], found["demo"]["failed"]) == (13, 2, 0)


def test_a_resume_with_nothing_left_shows_everything_reused(tmp_path):
    store = ArtifactPlugin(root_dir=str(tmp_path))
    experiment(replicates=4, plugins=[store]).run()
    plugin, console = shown()
    experiment(replicates=4, plugins=[plugin, store]).run(strategy="resume")
    found = rows(written(console))
    assert (found["demo"]["finished"], found["demo"]["reused"], found["demo"]["done"]) == (12, 12, 0)
    assert found["demo"]["mark"] == "✓"


def test_runs_overlapping_in_threads_share_one_plugin_and_keep_their_own_counts():
    plugin, console = shown()
    results = {}

    def go(name, fail):
        exp = experiment(name, replicates=6, pause=0.01, fail_in="fast" if fail else "", fail_replicates=(0,))
        exp.plugins = [plugin]
        results[name] = exp.run()

    threads = [threading.Thread(target=go, args=(f"exp{i}", i == 1)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 3
    found = rows(written(console))
    for i in range(3):
        row = found[f"exp{i}"]
        assert (row["finished"], row["total"]) == (18, 18)
        assert row["failed"] == (1 if i == 1 else 0)
    assert plugin._shown == {}  # nothing kept once the runs ended


def test_a_run_shorter_than_the_delay_prints_one_summary_row_and_its_failures():
    plugin, console = shown(delay=30)
    experiment(replicates=3, fail_in="slow", fail_replicates=(2,), plugins=[plugin]).run()
    found = rows(written(console))
    assert set(found) == {"demo", "slow"}  # the experiment, and the condition that failed
    assert (found["demo"]["finished"], found["demo"]["failed"]) == (9, 1)
    assert "\x1b[1A" not in written(console)  # no live area was drawn


def test_many_conditions_show_only_running_and_failed_condition_rows():
    plugin, console = shown(condition_bars=3)
    treatments = tuple(f"t{i}" for i in range(6))
    experiment(replicates=2, treatments=treatments, fail_in="t4", fail_replicates=(1,), plugins=[plugin]).run()
    final = _final_frame(written(console))
    assert "demo" in final and "t4" in final
    assert "t1 " not in final and "baseline" not in final


def test_condition_bars_zero_shows_the_experiment_row_only():
    plugin, console = shown(condition_bars=0)
    experiment(replicates=2, plugins=[plugin]).run()
    assert set(rows(written(console))) == {"demo"}


def _final_frame(out: str) -> str:
    """What stays on the screen: the frame drawn after the last cursor movement up."""
    last = max(out.rfind("\x1b[1A"), out.rfind("\x1b[2K"))
    return plain(out[last:])


def test_nothing_is_printed_when_disabled_even_if_forced_by_the_environment(monkeypatch):
    monkeypatch.setenv("CRYSTALLIZE_PROGRESS", "1")
    console = recording_console()
    experiment(replicates=3, plugins=[ProgressPlugin(enabled=False, console=console)]).run()
    assert written(console) == ""


def test_a_broken_terminal_turns_the_bars_off_logs_once_and_never_reaches_the_run(caplog):
    class Broken:
        def write(self, text):
            raise OSError(5, "Input/output error")

        def flush(self):
            raise OSError(5, "Input/output error")

        def isatty(self):
            return True

    from rich.console import Console

    console = Console(file=Broken(), force_terminal=True, width=100)
    plugin = ProgressPlugin(enabled=True, console=console, delay=0)
    stdout, stderr = sys.stdout, sys.stderr
    with caplog.at_level(logging.WARNING, logger="crystallize.progress"):
        first = experiment(replicates=3, pause=0.01, plugins=[plugin]).run()
        second = experiment(replicates=3, plugins=[plugin]).run()
    assert first.ok and second.ok
    warnings = [r for r in caplog.records if r.name == "crystallize.progress"]
    assert len(warnings) == 1 and "progress bars turned off" in warnings[0].getMessage()
    assert "OSError" in warnings[0].getMessage()
    assert (sys.stdout, sys.stderr) == (stdout, stderr)  # the streams were given back


def test_an_error_inside_the_plugin_never_reaches_the_run(monkeypatch, caplog):
    from crystallize_progress import tally

    def explode(self, outcome):
        raise ZeroDivisionError("a bug in the progress plugin")

    monkeypatch.setattr(tally.RunTally, "record", explode)
    plugin, _console = shown()
    with caplog.at_level(logging.WARNING, logger="crystallize.progress"):
        result = experiment(replicates=4, plugins=[plugin]).run()
    assert result.ok and len(result.metrics.baseline.metrics["value"]) == 4
    messages = [r.getMessage() for r in caplog.records if r.name == "crystallize.progress"]
    assert len(messages) == 1 and "on_replicate_outcome" in messages[0] and "ZeroDivisionError" in messages[0]


class _StopAt(PipelineStep):
    """Presses Ctrl-C (raises KeyboardInterrupt) at replicate ``at`` of the baseline."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, data, ctx):
        if ctx["replicate"] == self.at:
            raise KeyboardInterrupt
        return data

    @property
    def params(self):
        return {"at": self.at}


def test_an_interrupted_run_says_so_and_gives_the_streams_back():
    plugin, console = shown()
    exp = experiment(replicates=5, plugins=[plugin])
    exp.pipeline = Pipeline([_StopAt(2)])
    stdout, stderr = sys.stdout, sys.stderr
    with pytest.raises(KeyboardInterrupt):
        exp.run()
    found = rows(written(console))
    assert found["demo"]["ending"] == "interrupted" and found["demo"]["finished"] == 2
    assert found["demo"]["mark"] == "!"
    assert (sys.stdout, sys.stderr) == (stdout, stderr)


def test_a_configured_plugin_replaces_the_installed_one():
    from crystallize.testing import installed_plugins_only

    with installed_plugins_only("progress"):
        plugin = ProgressPlugin(enabled=False)
        exp = experiment(plugins=[plugin])
        progress = [i for i in active_plugins(exp) if i.name == "progress"]
        assert [i.plugin for i in progress] == [plugin]
        assert progress[0].distribution == "crystallize-progress"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"enabled": "yes"}, "enabled=...) takes True, False or None, got 'yes'"),
        ({"refresh_per_second": 0}, "refresh_per_second=0"),
        ({"condition_bars": -1}, "condition_bars=-1"),
        ({"delay": -2}, "delay=-2"),
    ],
)
def test_bad_options_are_refused_naming_the_value(options, message):
    with pytest.raises((TypeError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")):
        ProgressPlugin(**options)


@pytest.mark.slow
def test_counts_are_the_same_under_dask():
    distributed = pytest.importorskip("distributed")
    from crystallize_dask import DaskExecution

    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        plugin, console = shown()
        experiment(
            replicates=5, fail_in="fast", fail_replicates=(4,), plugins=[plugin, DaskExecution(client=client)]
        ).run()
    found = rows(written(console))
    assert (found["demo"]["finished"], found["demo"]["done"], found["demo"]["failed"]) == (15, 14, 1)
    assert (found["fast"]["done"], found["fast"]["failed"]) == (4, 1)


def test_a_narrow_terminal_keeps_rows_on_one_line_and_drops_the_rate_first():
    plugin, console = shown()
    console.width = 60
    experiment(replicates=3, fail_in="fast", fail_replicates=(1,), plugins=[plugin]).run()
    frame = _final_frame(written(console))
    lines = [line for line in frame.splitlines() if line.strip()]
    assert len(lines) == 4 and all(len(line) <= 60 for line in lines)
    assert "/s" not in frame and "0:00:0" in frame  # no room for the rate; the time stays
    assert rows(frame)["fast"]["failed"] == 1


def test_without_colour_the_unfinished_part_of_a_bar_is_a_thinner_line():
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, width=100, no_color=True)
    plugin = ProgressPlugin(enabled=True, console=console, delay=0)
    interrupted = experiment(replicates=4, plugins=[plugin])
    interrupted.pipeline = Pipeline([_StopAt(2)])
    with pytest.raises(KeyboardInterrupt):
        interrupted.run()
    assert "━━━━━━━━━━──────────" in written(console)  # half of a 40-cell bar, then the rest
