"""Crystallize: rigorous, reproducible experiments on a pluggable core.

A datasource feeds a pipeline of steps; the pipeline runs for several
replicates under a baseline and under treatments; steps record metrics and
write artifacts; hypotheses compare conditions. Storage, metadata, resume and
execution engines are plugins (see :mod:`crystallize.hookspecs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from crystallize._artifact import Artifact
from crystallize._context import FrozenContext
from crystallize._datasource import DataSource, ExperimentInput, data_source
from crystallize._dispatch import hookimpl
from crystallize._execution import ParallelExecution, SerialExecution
from crystallize._experiment import Experiment
from crystallize._graph import ExperimentGraph
from crystallize._hypothesis import Hypothesis, HypothesisResult, hypothesis
from crystallize._optional import module_getattr
from crystallize._result import ConditionMetrics, ExperimentMetrics, Result, Series
from crystallize._seeding import SeedPlugin
from crystallize._steps import Pipeline, PipelineStep, pipeline_step
from crystallize._summary import MetricRow, Summary, VerdictRow
from crystallize._treatment import Treatment
from crystallize.errors import (
    ArtifactStoreError,
    ConfigurationError,
    ContextMutationError,
    CrystallizeError,
    PluginError,
    ResumeError,
)

if TYPE_CHECKING:  # imported on first use (crystallize._optional.LAZY); named here for type checkers and docs
    from crystallize._builder import ExperimentBuilder
    from crystallize._decorators import inject_from_ctx, pipeline, treatment, verifier
    from crystallize._execution.asynchronous import AsyncExecution
    from crystallize._logging_plugin import LoggingPlugin
    from crystallize._optimize import BaseOptimizer, Objective
    from crystallize._plugin_adapter import BasePlugin
    from crystallize._quick import quick_experiment, standalone_context
    from crystallize._resources import resource_factory
    from crystallize._source_registry import get_datasource, list_datasources, register_datasource

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
    "ConditionMetrics",
    "ExperimentMetrics",
    "Series",
    "Summary",
    "MetricRow",
    "VerdictRow",
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
    # imported on first use (see crystallize._optional.LAZY)
    "AsyncExecution",
    "BasePlugin",
    "LoggingPlugin",
    "ExperimentBuilder",
    "BaseOptimizer",
    "Objective",
    "treatment",
    "verifier",
    "pipeline",
    "inject_from_ctx",
    "resource_factory",
    "standalone_context",
    "quick_experiment",
    "register_datasource",
    "get_datasource",
    "list_datasources",
]


# ArtifactPlugin comes from the crystallize-artifacts distribution; it is
# resolved on first use and left out of __all__ so that star-imports work
# without it. The names of crystallize._optional.LAZY are the core's own,
# imported on first use.
__getattr__ = module_getattr(__name__)
