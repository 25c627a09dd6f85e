"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import Pipeline, PipelineStep, pipeline_step``.
"""

from crystallize._steps import Pipeline, PipelineStep, pipeline_step

__all__ = ["Pipeline", "PipelineStep", "pipeline_step"]
