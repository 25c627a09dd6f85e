"""Artifact tests run with the three guide distributions loaded, nothing else."""

from __future__ import annotations

import pytest

from crystallize.testing import installed_plugins_only


@pytest.fixture(autouse=True)
def guide_plugins():
    with installed_plugins_only("metadata", "resume"):
        yield
