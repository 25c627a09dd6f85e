"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import DataSource, ExperimentInput`` (0.27's
``MultiArtifactDataSource`` is ``ExperimentInput``).
"""

from crystallize._datasource import DataSource, ExperimentInput
from crystallize._datasource import ExperimentInput as MultiArtifactDataSource

__all__ = ["DataSource", "ExperimentInput", "MultiArtifactDataSource"]
