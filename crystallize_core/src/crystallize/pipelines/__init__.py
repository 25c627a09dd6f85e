"""Pipelines and their steps."""

from crystallize.pipelines.pipeline import Pipeline
from crystallize.pipelines.pipeline_step import PipelineStep, pipeline_step

__all__ = ["Pipeline", "PipelineStep", "pipeline_step"]
