"""Core tests run against crystallize-core alone: installed plugins are not loaded."""

from __future__ import annotations

import pytest

from crystallize.testing import installed_plugins_only


@pytest.fixture(autouse=True)
def core_only():
    with installed_plugins_only():
        yield
