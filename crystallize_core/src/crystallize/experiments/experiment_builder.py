"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import ExperimentBuilder`` (or ``Experiment.builder()``).
"""

from crystallize._builder import ExperimentBuilder

__all__ = ["ExperimentBuilder"]
