"""Smoke test of the benchmark: quick mode runs, exits 0 and reports numbers.

It never asserts times — only that every workload ran on our side and
produced finite numbers, and that every target was judged. Run with
``python -m pytest bench/test_bench_quick.py``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent / "run.py"
WORKLOADS = (
    "step_overhead",
    "artifact_writes",
    "resume_noop",
    "import",
    "parallel",
    "memory",
    "progress_overhead",
    "stream_write",
    "s3_writes",
)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_mode_reports_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--skip-cml", "--json", str(out), "--tmp-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "status" in done.stdout  # the targets table was printed

    doc = json.loads(out.read_text())
    assert doc["config"]["quick"] is True
    assert doc["machine"]["cpu_count"] >= 1
    assert set(doc["workloads"]) == set(WORKLOADS)
    for name in WORKLOADS:
        ours = doc["workloads"][name]["frameworks"]["ours"]
        assert not ours["errors"], (name, ours["errors"])
        assert ours["summary"], f"{name} reported no numbers"
        for metric, summary in ours["summary"].items():
            for key in ("median", "min", "max"):
                value = summary[key]
                assert isinstance(value, (int, float)) and math.isfinite(value), (name, metric, key, value)
        assert "cml" not in doc["workloads"][name]["frameworks"]  # --skip-cml

    statuses = {t["status"] for t in doc["targets"]}
    assert statuses <= {"met", "NOT met", "n/a"}
    judged = {t["workload"] for t in doc["targets"]}
    assert judged == set(WORKLOADS)
