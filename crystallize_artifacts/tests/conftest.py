"""Artifact tests run with the three guide distributions loaded, nothing else."""

from __future__ import annotations

import pytest

from crystallize.testing import installed_plugins_only


@pytest.fixture(autouse=True)
def guide_plugins():
    with installed_plugins_only("metadata", "resume"):
        yield


@pytest.fixture(scope="session")
def cli_runs(tmp_path_factory):
    """A project folder with ``experiments.py`` and runs made by ``crystallize run`` in real processes.

    ``train`` v0 (every replicate succeeded), ``train`` v1 (``-S fail_at=2``: one
    failed replicate) and ``evaluate`` v0 (reads ``train`` v1's artifacts).
    Returns ``(project folder, root, [CompletedProcess of each run])``.
    """
    from cli_project import EXPERIMENTS, cli

    project = tmp_path_factory.mktemp("project")
    root = project / "data"
    (project / "experiments.py").write_text(EXPERIMENTS)
    runs = [
        cli("run", "experiments.py:exp", root=root, cwd=project),
        cli("run", "experiments.py:exp", "-S", "fail_at=2", root=root, cwd=project),
        cli("run", "experiments.py:evaluation", root=root, cwd=project),
    ]
    return project, root, runs
