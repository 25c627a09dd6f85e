"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import BaseOptimizer, Objective``.
"""

from crystallize._optimize import BaseOptimizer, Objective

__all__ = ["BaseOptimizer", "Objective"]
