"""Fixtures for the cross-distribution tests."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from crystallize.testing import installed_plugins_only

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {
    "crystallize-core": REPO / "crystallize_core",
    "crystallize-metadata": REPO / "plugins" / "metadata",
    "crystallize-resume": REPO / "plugins" / "resume",
    "crystallize-artifacts": REPO / "crystallize_artifacts",
    "crystallize-progress": REPO / "plugins" / "progress",
}


@pytest.fixture(autouse=True)
def guide_plugins():
    with installed_plugins_only("metadata", "resume"):
        yield


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """Non-editable wheels of the guide's four distributions and of crystallize-progress, built once."""
    house = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(house),
            *map(str, DISTRIBUTIONS.values()),
        ],
        check=True,
    )
    return house


class Venv:
    """A fresh virtual environment with its own python and pip."""

    def __init__(self, path: Path, wheelhouse: Path) -> None:
        self.path = path
        self.wheelhouse = wheelhouse
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
        self.python = str(path / "bin" / "python")

    def install(self, *requirements: str) -> None:
        subprocess.run(
            [
                self.python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--find-links",
                str(self.wheelhouse),
                *requirements,
            ],
            check=True,
        )

    def uninstall(self, *names: str) -> None:
        subprocess.run([self.python, "-m", "pip", "uninstall", "--quiet", "-y", *names], check=True)

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYSTALLIZE_", "PYTHONPATH"))}
        done = subprocess.run([self.python, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done


@pytest.fixture(scope="session")
def make_venv(tmp_path_factory, wheelhouse):
    def make(name: str) -> Venv:
        return Venv(tmp_path_factory.mktemp(name) / "venv", wheelhouse)

    return make
