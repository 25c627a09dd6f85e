"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize`` and ``crystallize_artifacts``.

``from crystallize import SeedPlugin, SerialExecution, ParallelExecution, AsyncExecution, BasePlugin,
LoggingPlugin`` and ``from crystallize_artifacts import ArtifactPlugin, load_metrics, load_all_metrics``
(resolved on first use).
Plugin authors want :mod:`crystallize.plugin` (singular), not this package.
"""

from crystallize._execution import ParallelExecution, SerialExecution
from crystallize._execution.asynchronous import AsyncExecution
from crystallize._logging_plugin import LoggingPlugin
from crystallize._optional import module_getattr
from crystallize._plugin_adapter import BasePlugin
from crystallize._seeding import SeedPlugin

__all__ = [  # + ArtifactPlugin, lazily
    "BasePlugin",
    "LoggingPlugin",
    "SeedPlugin",
    "ParallelExecution",
    "SerialExecution",
    "AsyncExecution",
]

__getattr__ = module_getattr(__name__, ("ArtifactPlugin", "load_metrics", "load_all_metrics"))
