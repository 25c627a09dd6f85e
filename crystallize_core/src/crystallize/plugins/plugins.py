"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize`` and ``crystallize_artifacts``.

``from crystallize import SeedPlugin, BasePlugin, LoggingPlugin, SerialExecution, ParallelExecution`` and
``from crystallize_artifacts import ArtifactPlugin``. ``ArtifactPlugin`` is
imported from the separately installed ``crystallize-artifacts`` on first use;
without it, importing it raises ``ImportError`` saying
``pip install crystallize-artifacts``.
"""

from crystallize._execution import ParallelExecution, SerialExecution
from crystallize._logging_plugin import LoggingPlugin
from crystallize._optional import module_getattr
from crystallize._plugin_adapter import BasePlugin
from crystallize._seeding import SeedPlugin

__all__ = ["SeedPlugin", "BasePlugin", "LoggingPlugin", "SerialExecution", "ParallelExecution"]  # + ArtifactPlugin

__getattr__ = module_getattr(__name__)
