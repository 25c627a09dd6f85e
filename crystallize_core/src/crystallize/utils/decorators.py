"""Compatibility path for crystallize-ml 0.27 code; the real home is ``crystallize``.

``from crystallize import pipeline_step, data_source, treatment, hypothesis, verifier, pipeline,
inject_from_ctx, resource_factory``.
"""

from crystallize._datasource import data_source
from crystallize._decorators import inject_from_ctx, pipeline, treatment, verifier
from crystallize._hypothesis import hypothesis
from crystallize._resources import resource_factory
from crystallize._steps import pipeline_step

__all__ = [
    "pipeline_step",
    "data_source",
    "treatment",
    "hypothesis",
    "verifier",
    "pipeline",
    "inject_from_ctx",
    "resource_factory",
]
