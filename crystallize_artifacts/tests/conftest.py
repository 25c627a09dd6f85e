"""Artifact tests run with the three guide distributions loaded, nothing else."""

from __future__ import annotations

import pytest

from crystallize import manager


@pytest.fixture(autouse=True)
def guide_plugins(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("CRYSTALLIZE_LOAD_PLUGINS", "artifacts,metadata,resume")
    manager.reset_autoload()
    yield
    manager.reset_autoload()
