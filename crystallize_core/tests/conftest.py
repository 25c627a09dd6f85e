"""Core tests run against crystallize-core alone: installed plugins are not loaded."""

from __future__ import annotations

import pytest

from crystallize.testing import installed_plugins_only


@pytest.fixture(autouse=True)
def core_only():
    with installed_plugins_only():
        yield


@pytest.fixture(params=["direct", "pluggy"])
def dispatch(request):
    """Run a test with hooks called directly where possible, then with every call through pluggy."""
    from crystallize import _registry

    _registry.set_direct_calls(request.param == "direct")
    try:
        yield request.param
    finally:
        _registry.set_direct_calls(True)
