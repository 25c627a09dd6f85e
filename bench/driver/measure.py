"""One measurement: a workload script run once in a fresh process of one interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driver.venvs import Interpreter

WORKLOADS_DIR = Path(__file__).resolve().parent.parent / "workloads"


@dataclass
class Measurement:
    workload: str
    framework: str
    round: int
    values: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    python: str | None = None
    error: str | None = None
    wall_s: float = 0.0
    load_1m: float | None = None  # the machine's load average when the process started


def environment(pycache: Path) -> dict[str, str]:
    """The environment of every measured process.

    Bytecode caching is switched on and pointed at one folder (``pycache``,
    under ``bench/.venvs``) for both interpreters. Without this, a shell that
    sets ``PYTHONDONTWRITEBYTECODE`` leaves our editable sources compiled
    from scratch at every import while crystallize-ml's site-packages have
    the ``.pyc`` files pip wrote — an unfair import comparison.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_script(
    interpreter: Interpreter,
    workload: str,
    script: str,
    args: tuple[str, ...],
    *,
    round_no: int,
    scratch: Path,
    env: dict[str, str],
    timeout_s: float,
    prefix: str = "",
) -> Measurement:
    """Run ``script`` under ``interpreter``; parse the JSON line it prints last.

    The process runs in ``scratch`` (so nothing a framework writes by default
    lands in the repository) and gets ``--tmp-dir scratch`` for its folders.
    """
    command = [
        str(interpreter.python),
        str(WORKLOADS_DIR / script),
        "--framework",
        interpreter.framework,
        "--tmp-dir",
        str(scratch),
        *args,
    ]
    found = Measurement(workload, interpreter.framework, round_no)
    if hasattr(os, "getloadavg"):
        found.load_1m = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=scratch, env=env)
    except subprocess.TimeoutExpired:
        found.error = f"timed out after {timeout_s:g} s: {' '.join(command)}"
        return found
    finally:
        found.wall_s = time.perf_counter() - start
    record = _last_json_line(done.stdout)
    if done.returncode != 0 or record is None:
        tail = "\n".join(done.stderr.strip().splitlines()[-12:])
        found.error = f"exit {done.returncode}: {' '.join(command)}\n{tail}"
        return found
    found.values = {f"{prefix}{k}": float(v) for k, v in record.get("values", {}).items()}
    found.info = {f"{prefix}{k}" if prefix else k: v for k, v in record.get("info", {}).items()}
    found.version = record.get("version")
    found.python = record.get("python")
    return found


def _last_json_line(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
