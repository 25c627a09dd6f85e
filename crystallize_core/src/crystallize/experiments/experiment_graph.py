"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import ExperimentGraph``; ``find_experiments_root`` is in
``crystallize._folders`` (used by ``ExperimentGraph.from_yaml``).
"""

from crystallize._folders import find_experiments_root
from crystallize._graph import ExperimentGraph

__all__ = ["ExperimentGraph", "find_experiments_root"]
