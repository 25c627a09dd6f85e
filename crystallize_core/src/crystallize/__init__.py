"""Crystallize: rigorous, reproducible experiments on a pluggable core.

A datasource feeds a pipeline of steps; the pipeline runs for several
replicates under a baseline and under treatments; steps record metrics and
write artifacts; hypotheses compare conditions. Storage, metadata, resume and
execution engines are plugins (see :mod:`crystallize.hookspecs`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from crystallize.artifact import Artifact
from crystallize.context import FrozenContext
from crystallize.datasource import DataSource, ExperimentInput, data_source
from crystallize.errors import (
    ArtifactStoreError,
    ConfigurationError,
    ContextMutationError,
    CrystallizeError,
    PluginError,
    ResumeError,
)
from crystallize.execution import ParallelExecution, SerialExecution
from crystallize.experiment import Experiment
from crystallize.graph import ExperimentGraph
from crystallize.hooks import hookimpl
from crystallize.hypothesis import Hypothesis, HypothesisResult, hypothesis
from crystallize.pipelines.pipeline import Pipeline
from crystallize.pipelines.pipeline_step import PipelineStep, pipeline_step
from crystallize.result import Result
from crystallize.seeding import SeedPlugin
from crystallize.treatment import Treatment

__all__ = [
    "Experiment",
    "Pipeline",
    "PipelineStep",
    "pipeline_step",
    "DataSource",
    "ExperimentInput",
    "data_source",
    "Treatment",
    "Hypothesis",
    "HypothesisResult",
    "hypothesis",
    "Artifact",
    "ExperimentGraph",
    "FrozenContext",
    "Result",
    "hookimpl",
    "SeedPlugin",
    "SerialExecution",
    "ParallelExecution",
    "CrystallizeError",
    "ConfigurationError",
    "ContextMutationError",
    "ArtifactStoreError",
    "PluginError",
    "ResumeError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # ArtifactPlugin comes from the crystallize-artifacts distribution; it is
    # resolved on first use and left out of __all__ so that star-imports work
    # without it.
    if name == "ArtifactPlugin":
        from crystallize.plugins.plugins import ArtifactPlugin

        return ArtifactPlugin
    raise AttributeError(f"module 'crystallize' has no attribute {name!r}")
