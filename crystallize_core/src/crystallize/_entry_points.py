"""Small shims over the standard library."""

from __future__ import annotations

try:  # the backport is faster and has the newer API on every Python we support
    from importlib_metadata import entry_points
    from importlib_metadata import version as dist_version
except ImportError:  # pragma: no cover - installed as a dependency
    from importlib.metadata import entry_points  # type: ignore[assignment]
    from importlib.metadata import version as dist_version

__all__ = ["entry_points", "dist_version"]
