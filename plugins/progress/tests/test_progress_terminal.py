"""The installed plugin in real processes: a pseudo-terminal shows the bars, a pipe shows nothing extra."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from progress_helpers import plain, rows

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CHILD = Path(__file__).with_name("progress_child.py")


def child_env(**extra: str) -> dict[str, str]:
    """The test process's environment without anything that decides for the plugin."""
    drop = ("CI", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_") and k not in drop}
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def run_in_terminal(engine: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the child with stdin, stdout and stderr on a 120x40 pseudo-terminal; returns (status, output)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    child = subprocess.Popen(
        [sys.executable, str(CHILD), engine],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: every holder of the terminal closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif child.poll() is not None:
                break
        status = child.wait(timeout=30)
    finally:
        os.close(leader)
        if child.poll() is None:
            child.kill()
    return status, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("engine", ["serial", "process"])
def test_a_terminal_shows_live_bars_with_the_right_counts(engine, tmp_path):
    status, output = run_in_terminal(engine, child_env(), tmp_path)
    assert status == 0, output
    found = rows(output)
    demo, baseline, flaky = found["pty_demo"], found["baseline"], found["flaky"]
    assert (demo["finished"], demo["total"], demo["done"], demo["failed"]) == (24, 24, 22, 2)
    assert (baseline["finished"], baseline["done"], baseline["failed"]) == (12, 12, 0)
    assert (flaky["finished"], flaky["done"], flaky["failed"]) == (12, 10, 2)
    assert demo["mark"] == "✗"
    text = plain(output)
    assert "eta " in text  # it was drawn while running, not only at the end
    assert "\x1b[1A" in output or "\x1b[2K" in output  # redrawn in place
    assert "\x1b[1;31m2 failed" in output  # failures in bold red
    assert "failed replicates: 2" in text  # the program's own output is intact


def test_a_terminal_in_ci_shows_no_bars(tmp_path):
    status, output = run_in_terminal("serial", child_env(CI="true"), tmp_path)
    assert status == 0, output
    assert "━" not in output and rows(output) == {}
    assert "failed replicates: 2" in output


def test_the_same_program_through_a_pipe_prints_nothing_extra(tmp_path):
    def piped(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(CHILD), "serial"],
            capture_output=True,
            text=True,
            env=child_env(**extra),
            cwd=tmp_path,
            timeout=120,
        )

    installed = piped()
    without = piped(CRYSTALLIZE_DISABLE_PLUGINS="progress")
    assert installed.returncode == without.returncode == 0
    assert installed.stdout == without.stdout == "failed replicates: 2\n"
    assert installed.stderr == without.stderr  # the core's warning about the failures, nothing else
    assert "━" not in installed.stderr and "pty_demo " not in installed.stderr

    forced = piped(CRYSTALLIZE_PROGRESS="1")  # asked for: one summary row per experiment (and failures)
    found = rows(forced.stderr)
    assert (found["pty_demo"]["finished"], found["pty_demo"]["failed"]) == (24, 2)
    assert "\x1b[" not in forced.stderr
