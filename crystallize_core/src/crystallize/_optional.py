"""Names resolved on first use: other distributions' names, and the core's rarely used ones.

``from crystallize import ArtifactPlugin`` (and the crystallize-ml path
``crystallize.plugins.plugins``) find ``ArtifactPlugin`` in the separately
installed ``crystallize-artifacts``. Importing it only when asked keeps
``import crystallize`` free of it, and a missing distribution becomes an
``ImportError`` that says what to install.

:data:`LAZY` names live in the core's own modules, imported when first
asked for, so that ``import crystallize`` pays only for what every run uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["OPTIONAL", "LAZY", "module_getattr", "resolve"]

#: ``{name: (module, distribution)}`` of the names resolved lazily.
OPTIONAL: dict[str, tuple[str, str]] = {
    "ArtifactPlugin": ("crystallize_artifacts", "crystallize-artifacts"),
    "load_metrics": ("crystallize_artifacts", "crystallize-artifacts"),
    "load_all_metrics": ("crystallize_artifacts", "crystallize-artifacts"),
}


#: ``{name: core module}`` of names imported on first use.
LAZY: dict[str, str] = {
    "AsyncExecution": "crystallize._execution.asynchronous",
    "BasePlugin": "crystallize._plugin_adapter",
    "LoggingPlugin": "crystallize._logging_plugin",
    "ExperimentBuilder": "crystallize._builder",
    "BaseOptimizer": "crystallize._optimize",
    "Objective": "crystallize._optimize",
    "treatment": "crystallize._decorators",
    "verifier": "crystallize._decorators",
    "pipeline": "crystallize._decorators",
    "inject_from_ctx": "crystallize._decorators",
    "resource_factory": "crystallize._resources",
    "standalone_context": "crystallize._quick",
    "quick_experiment": "crystallize._quick",
    "register_datasource": "crystallize._source_registry",
    "get_datasource": "crystallize._source_registry",
    "list_datasources": "crystallize._source_registry",
    "ArtifactLog": "crystallize._artifact",
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


def module_getattr(module_name: str, optional: Iterable[str] = ("ArtifactPlugin",)) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` resolving the ``optional`` names of :data:`OPTIONAL`, and :data:`LAZY`."""
    offered = frozenset(optional)

    def __getattr__(name: str) -> Any:
        if name in offered:
            return resolve(name)
        if name in LAZY:
            return getattr(importlib.import_module(LAZY[name]), name)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
