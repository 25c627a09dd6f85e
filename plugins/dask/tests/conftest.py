"""Fixtures of the Dask tests."""

from __future__ import annotations

import pytest
from dask_helpers import Reference, serial_reference


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The serial run of ``dask_experiment.build`` (once per test module)."""
    return serial_reference(tmp_path_factory.mktemp("serial"))
