"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import Experiment``.
"""

from crystallize._experiment import Experiment

__all__ = ["Experiment"]
