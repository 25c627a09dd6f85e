"""Smoke test of ``bench/results_bench.py``: quick mode runs our side and judges the targets.

It never asserts times: only that both workloads ran, reported finite
numbers and passed their sanity checks. MLflow is skipped (no venv needed).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "results_bench.py"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_mode_measures_listing_and_reading(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--skip-mlflow", "--json", str(out), "--tmp-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    doc = json.loads(out.read_text())
    assert not doc["errors"]
    [listing] = doc["records"]["listing"]
    [ours] = doc["records"]["ours"]
    assert listing["runs"] == 20
    for record in (listing, ours):
        assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in record.values()), record
    assert doc["records"]["mlflow"] == []
    assert {t["status"] for t in doc["targets"]} <= {"met", "NOT met", "n/a"}
