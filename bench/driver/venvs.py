"""The interpreters measured: ours (the one running the driver) and crystallize-ml's.

crystallize-ml 0.27 lives in its own venv, created once with ``python -m
venv`` and pip under ``bench/.venvs/crystallize-ml-0.27/`` (git-ignored) and
reused afterwards. It is made from the same base interpreter as the
workspace venv, so both frameworks run on the same Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CML_REQUIREMENT = "crystallize-ml==0.27.0"
CML_VERSION = "0.27.0"
VENV_NAME = "crystallize-ml-0.27"
MARKER = ".bench-installed"  # written last: a venv without it is incomplete

OURS_DISTRIBUTIONS = ("crystallize-core", "crystallize-artifacts")


@dataclass(frozen=True)
class Interpreter:
    """A Python able to run the workload scripts for one framework."""

    framework: str
    python: Path


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ours() -> Interpreter:
    """The driver's own interpreter; it must hold our distributions."""
    from importlib import metadata

    missing = []
    for dist in OURS_DISTRIBUTIONS:
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            missing.append(dist)
    if missing:
        raise SystemExit(
            f"{sys.executable} lacks {', '.join(missing)}: run bench/run.py with the workspace's Python "
            "(the one where `pip install -r requirements-dev.txt` installed the distributions)"
        )
    return Interpreter("ours", Path(sys.executable))


def crystallize_ml(venvs_dir: Path, log=print) -> tuple[Interpreter | None, str]:
    """crystallize-ml's interpreter, creating its venv on first use.

    Returns ``(interpreter, how)``, or ``(None, why)`` when the venv cannot be
    made (no network, pip failure...): the caller then measures ours alone.
    """
    venv = venvs_dir / VENV_NAME
    python = venv_python(venv)
    if (venv / MARKER).is_file() and python.is_file() and _installed_version(python) == CML_VERSION:
        return Interpreter("cml", python), f"cached venv {venv}"
    log(f"creating {venv} with {CML_REQUIREMENT} (once; later runs reuse it)")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", CML_REQUIREMENT],
    ]
    for command in steps:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"`{' '.join(command)}` failed: {exc}"
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            return None, f"`{' '.join(command)}` exited {done.returncode}:\n{tail}"
    found = _installed_version(python)
    if found != CML_VERSION:
        return None, f"{python} holds crystallize-ml {found!r} after installing, not {CML_VERSION}"
    (venv / MARKER).write_text(CML_REQUIREMENT + "\n")
    return Interpreter("cml", python), f"created venv {venv}"


def _installed_version(python: Path) -> str | None:
    code = "import importlib.metadata as m; print(m.version('crystallize-ml'))"
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


MLFLOW_REQUIREMENT = "mlflow==3.17.2"
MLFLOW_VERSION = "3.17.2"
MLFLOW_VENV = "mlflow-3"


def mlflow(venvs_dir: Path, log=print) -> tuple[Interpreter | None, str]:
    """MLflow 3's interpreter (``bench/.venvs/mlflow-3``), created on first use like crystallize-ml's."""
    venv = venvs_dir / MLFLOW_VENV
    python = venv_python(venv)
    code = "import importlib.metadata as m; print(m.version('mlflow'))"

    def installed() -> str | None:
        try:
            done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if (venv / MARKER).is_file() and python.is_file() and installed() == MLFLOW_VERSION:
        return Interpreter("mlflow", python), f"cached venv {venv}"
    log(f"creating {venv} with {MLFLOW_REQUIREMENT} (once; a few minutes; later runs reuse it)")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", MLFLOW_REQUIREMENT],
    ]
    for command in steps:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"`{' '.join(command)}` failed: {exc}"
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            return None, f"`{' '.join(command)}` exited {done.returncode}:\n{tail}"
    if installed() != MLFLOW_VERSION:
        return None, f"{python} does not hold mlflow {MLFLOW_VERSION} after installing"
    (venv / MARKER).write_text(MLFLOW_REQUIREMENT + "\n")
    return Interpreter("mlflow", python), f"created venv {venv}"
