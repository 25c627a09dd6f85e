"""Core tests run against crystallize-core alone: installed plugins are not loaded."""

from __future__ import annotations

import pytest

from crystallize import manager


@pytest.fixture(autouse=True)
def core_only(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", "1")
    manager.reset_autoload()
    yield
    manager.reset_autoload()
