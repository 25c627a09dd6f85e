"""The examples of docs/progress.md and of the plugin's README run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[3]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def run_script(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_")}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=150)


@pytest.mark.parametrize("index", [0, 1])
def test_every_example_of_the_progress_page_runs(index, tmp_path):
    blocks = python_blocks(REPO / "docs" / "progress.md")
    assert len(blocks) == 2
    done = run_script(blocks[index], tmp_path)
    assert done.returncode == 0, done.stderr


def test_the_readme_example_runs_and_its_forced_bars_reach_a_pipe(tmp_path):
    blocks = python_blocks(REPO / "plugins" / "progress" / "README.md")
    assert len(blocks) == 2
    done = run_script("\n".join(blocks), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 failed replicates" in done.stdout
    # the first run decided by itself (a pipe: nothing); the second was forced on: one summary row
    assert done.stderr.count("demo ") == 1 and "40/40" in done.stderr
