"""Shared by the Dask test modules: the experiment module, shipped by value, and the serial reference."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle

HERE = Path(__file__).parent


def _load_experiment_module() -> ModuleType:
    """Import ``dask_experiment.py`` and ship its code to workers by value.

    Workers cannot import the test folder's modules; registering the module
    with cloudpickle makes its steps travel inside the payload.
    """
    name = "crystallize_dask_test_experiment"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, HERE / "dask_experiment.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        cloudpickle.register_pickle_by_value(module)
    return module


ex = _load_experiment_module()


@dataclass(frozen=True)
class Reference:
    """The serial run every other execution must reproduce."""

    root: Path
    metrics: Any
    artifacts: dict[str, bytes]


def serial_reference(root: Path) -> Reference:
    result = ex.build(root).run()
    assert result.ok, result.errors
    assert len(ex.artifact_files(root)) == 2 * ex.REPLICATES
    return Reference(root, result.metrics, ex.artifact_files(root))


def artifacts_match(root: Path, reference: Reference, name: str = "dask-equivalence") -> None:
    """Every artifact of the latest run under ``root`` is byte for byte the serial run's."""
    files = ex.artifact_files(root, name)
    assert sorted(files) == sorted(reference.artifacts)
    for path, data in reference.artifacts.items():
        assert files[path] == data, f"{path} differs from the serial run"
