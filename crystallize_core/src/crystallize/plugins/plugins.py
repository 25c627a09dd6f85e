"""Plugins by their classic import path.

``ArtifactPlugin`` lives in the separately installed ``crystallize-artifacts``
distribution and is imported from there on first use; without it, importing
it raises ``ImportError`` saying ``pip install crystallize-artifacts``.
"""

from __future__ import annotations

from typing import Any

from crystallize._execution import ParallelExecution, SerialExecution
from crystallize._seeding import SeedPlugin

__all__ = ["SeedPlugin", "SerialExecution", "ParallelExecution"]  # + ArtifactPlugin, lazily


def __getattr__(name: str) -> Any:
    if name == "ArtifactPlugin":
        try:
            from crystallize_artifacts import ArtifactPlugin
        except ImportError as exc:
            if exc.name != "crystallize_artifacts":
                raise
            raise ImportError(
                "ArtifactPlugin is provided by the crystallize-artifacts distribution, which is not "
                "installed: pip install crystallize-artifacts",
                name="crystallize_artifacts",
            ) from exc
        return ArtifactPlugin
    raise AttributeError(f"module 'crystallize.plugins.plugins' has no attribute {name!r}")
