"""The examples run as documented."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.timeout(300)


def run(args, cwd):
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_quickstart(tmp_path):
    out = run([str(EXAMPLES / "quickstart.py"), "--root", str(tmp_path)], cwd=tmp_path)
    assert "trained 24 models" in out and "nothing reran" in out and "best learning rate" in out
    verify = subprocess.run(
        [sys.executable, "-m", "crystallize", "verify", str(tmp_path)], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout


def test_artifact_chaining(tmp_path):
    for name in ("experiment1.py", "experiment2.py"):
        shutil.copy(EXAMPLES / "artifact_chaining" / name, tmp_path)
    first = run(["experiment1.py"], cwd=tmp_path)
    second = run(["experiment2.py"], cwd=tmp_path)
    means = first.split("means ")[1].strip()
    assert f"read 2 replicates: means {means}" in second
    assert "disagrees with the datasource, which has 2 replicates" in second
