"""When bars are shown: terminals, pipes, CI, notebooks, CRYSTALLIZE_PROGRESS, enabled=."""

from __future__ import annotations

import io
import json
import logging
import os
import select
import subprocess
import sys
import textwrap
import types

import pytest
from progress_helpers import experiment, recording_console, rows, written

from crystallize_progress import ProgressPlugin
from crystallize_progress.activation import env_choice, in_ci, in_notebook, should_display


class TerminalStderr:
    """``sys.stderr`` on a real pseudo-terminal while the ``with`` block runs.

    Set inside the test, not in a fixture: pytest puts its own capture back
    on ``sys.stderr`` when a test starts.
    """

    def __init__(self) -> None:
        self.leader, follower = os.openpty()
        self.stream = open(follower, "w", encoding="utf-8", closefd=True)  # noqa: SIM115 - closed in close()

    def __enter__(self) -> TerminalStderr:
        self.saved, sys.stderr = sys.stderr, self.stream
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stderr = self.saved

    def read(self) -> str:
        self.stream.flush()
        chunks = []
        while select.select([self.leader], [], [], 0.05)[0]:
            chunks.append(os.read(self.leader, 65536))
        return b"".join(chunks).decode("utf-8", "replace")

    def close(self) -> None:
        self.stream.close()
        os.close(self.leader)


@pytest.fixture
def terminal():
    tty = TerminalStderr()
    yield tty
    tty.close()


def test_the_installed_default_draws_when_stderr_is_a_terminal(terminal):
    plugin = ProgressPlugin(delay=0)  # enabled=None: decided by the environment
    with terminal:
        experiment(replicates=3, plugins=[plugin]).run()
    found = rows(terminal.read())
    assert (found["demo"]["finished"], found["demo"]["total"]) == (9, 9)


def test_ci_silences_the_bars_even_on_a_terminal(terminal, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with terminal:
        experiment(replicates=3, plugins=[ProgressPlugin(delay=0)]).run()
    assert "demo" not in terminal.read()


def test_crystallize_progress_0_silences_a_terminal_and_1_overrides_ci(terminal, monkeypatch):
    monkeypatch.setenv("CRYSTALLIZE_PROGRESS", "0")
    with terminal:
        experiment(replicates=2, plugins=[ProgressPlugin(delay=0)]).run()
    assert "demo" not in terminal.read()

    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("CRYSTALLIZE_PROGRESS", "1")
    with terminal:
        experiment(replicates=2, plugins=[ProgressPlugin(delay=0)]).run()
    assert rows(terminal.read())["demo"]["finished"] == 6


def test_a_pipe_or_a_file_gets_nothing_unless_forced(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    experiment(replicates=2, plugins=[ProgressPlugin(delay=0)]).run()
    assert "demo" not in sys.stderr.getvalue()

    monkeypatch.setenv("CRYSTALLIZE_PROGRESS", "1")  # forced on: a log file gets the final summary
    experiment(replicates=2, plugins=[ProgressPlugin(delay=0)]).run()
    text = sys.stderr.getvalue()
    assert rows(text)["demo"]["finished"] == 6
    assert "\x1b[" not in text  # no colours, no cursor movements in a file


def test_a_jupyter_kernel_is_silent_unless_asked(monkeypatch):
    class ZMQInteractiveShell:  # the class name IPython gives a notebook kernel's shell
        pass

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    console = recording_console()  # even a console that claims to be a terminal
    assert in_notebook()
    experiment(replicates=2, plugins=[ProgressPlugin(console=console, delay=0)]).run()
    assert written(console) == ""
    experiment(replicates=2, plugins=[ProgressPlugin(enabled=True, console=console, delay=0)]).run()
    assert rows(written(console))["demo"]["finished"] == 6


def test_a_dumb_terminal_is_not_drawn_on(terminal, monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    with terminal:
        experiment(replicates=2, plugins=[ProgressPlugin(delay=0)]).run()
    assert "demo" not in terminal.read()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("ON", True), ("0", False), ("no", False), ("", None), (None, None)],
)
def test_crystallize_progress_values(value, expected):
    environ = {} if value is None else {"CRYSTALLIZE_PROGRESS": value}
    assert env_choice(environ) is expected


def test_an_unknown_crystallize_progress_value_is_ignored_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="crystallize.progress"):
        assert env_choice({"CRYSTALLIZE_PROGRESS": "sometimes"}) is None
        assert env_choice({"CRYSTALLIZE_PROGRESS": "sometimes"}) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "'sometimes'" in messages[0] and "use 1" in messages[0]


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False), ("0", False)])
def test_the_ci_variable(value, expected):
    assert in_ci({"CI": value}) is expected
    assert in_ci({}) is False


def test_the_code_decides_before_the_environment(monkeypatch):
    monkeypatch.setenv("CRYSTALLIZE_PROGRESS", "0")
    assert should_display(True) is True
    monkeypatch.setenv("CRYSTALLIZE_PROGRESS", "1")
    assert should_display(False) is False


def test_deciding_off_imports_no_rich_and_prints_nothing(tmp_path):
    """Installed but silent (stderr is a pipe): rich is never imported, nothing is written."""
    script = textwrap.dedent(
        """
        import sys
        from crystallize import Experiment, Pipeline, data_source, pipeline_step

        @data_source
        def src(ctx):
            return 1

        @pipeline_step()
        def step(data, ctx):
            return data

        Experiment(src(), Pipeline([step()]), name="quiet", replicates=3).run()
        print("rich imported" if "rich" in sys.modules else "rich not imported")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_") and k != "CI"}
    listed = subprocess.run(
        [sys.executable, "-m", "crystallize", "plugins", "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert "progress" in [row["name"] for row in json.loads(listed.stdout)]  # installed, hence active
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "rich not imported\n"
    assert done.stderr == ""


def test_an_engines_progress_setting_decides_when_the_plugin_was_not_configured(monkeypatch):
    from crystallize import AsyncExecution, ParallelExecution, SerialExecution

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe: off by default
    for engine in (
        SerialExecution(progress=True),
        ParallelExecution(max_workers=2, progress=True),
        AsyncExecution(progress=True),
    ):
        sys.stderr = io.StringIO()
        experiment(replicates=2, plugins=[ProgressPlugin(delay=0), engine]).run()
        assert rows(sys.stderr.getvalue())["demo"]["finished"] == 6, engine

    console = recording_console()  # a terminal: on by default
    experiment(replicates=2, plugins=[ProgressPlugin(console=console, delay=0), SerialExecution(progress=False)]).run()
    assert written(console) == ""
    experiment(
        replicates=2, plugins=[ProgressPlugin(enabled=True, console=console, delay=0), SerialExecution(progress=False)]
    ).run()
    assert rows(written(console))["demo"]["finished"] == 6  # the plugin's own setting wins


def test_engines_refuse_a_progress_setting_that_is_not_a_bool():
    from crystallize import ParallelExecution, SerialExecution

    with pytest.raises(TypeError, match="progress=...\\) takes True, False or None, got 'yes'"):
        SerialExecution(progress="yes")
    with pytest.raises(TypeError, match="progress=...\\) takes True, False or None, got 1"):
        ParallelExecution(progress=1)
