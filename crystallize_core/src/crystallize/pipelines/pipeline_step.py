"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import PipelineStep, pipeline_step``.
"""

from crystallize._steps import FunctionStep, PipelineStep, pipeline_step

__all__ = ["PipelineStep", "FunctionStep", "pipeline_step"]
