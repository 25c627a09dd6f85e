"""Pipelines and their steps."""

from crystallize._steps import PipelineStep, pipeline_step
from crystallize.pipelines.pipeline import Pipeline

__all__ = ["Pipeline", "PipelineStep", "pipeline_step"]
