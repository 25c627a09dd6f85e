"""crystallize-progress: live progress bars for Crystallize runs, drawn with ``rich``.

Installed, :class:`ProgressPlugin` shows one bar per experiment and one per
condition — done and failed replicates, rate and ETA — whenever standard
error is a terminal, and stays silent in CI, pipes, files and notebooks
(``CRYSTALLIZE_PROGRESS=1``/``0`` forces it on/off). ``rich`` is imported
only when bars are drawn.
"""

from crystallize_progress.activation import ENV_PROGRESS
from crystallize_progress.plugin import ProgressPlugin

__version__ = "0.1.0"

__all__ = ["ProgressPlugin", "ENV_PROGRESS", "__version__"]
