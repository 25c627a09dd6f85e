"""Names provided by distributions the core does not depend on, resolved on first use.

``from crystallize import ArtifactPlugin`` (and the crystallize-ml path
``crystallize.plugins.plugins``) find ``ArtifactPlugin`` in the separately
installed ``crystallize-artifacts``. Importing it only when asked keeps
``import crystallize`` free of it, and a missing distribution becomes an
``ImportError`` that says what to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["OPTIONAL", "module_getattr", "resolve"]

#: ``{name: (module, distribution)}`` of the names resolved lazily.
OPTIONAL: dict[str, tuple[str, str]] = {
    "ArtifactPlugin": ("crystallize_artifacts", "crystallize-artifacts"),
}


def resolve(name: str) -> Any:
    """Import ``name`` from the distribution that provides it, or raise ``ImportError`` saying which."""
    module, distribution = OPTIONAL[name]
    cause: ImportError | None = None
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError as exc:
        if exc.name != module:
            raise
        found, cause = None, exc
    if found is not None:
        return found
    # Not installed; or a folder of that name on sys.path (a checkout) imported as an empty namespace package.
    raise ImportError(
        f"{name} is provided by the {distribution} distribution, which is not installed: pip install {distribution}",
        name=module,
    ) from cause


def module_getattr(module_name: str) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` resolving :data:`OPTIONAL` names for ``module_name``."""

    def __getattr__(name: str) -> Any:
        if name in OPTIONAL:
            return resolve(name)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
