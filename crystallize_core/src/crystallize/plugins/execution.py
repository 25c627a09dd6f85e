"""Execution plugins by crystallize-ml's import path."""

from crystallize.execution import ParallelExecution, SerialExecution

__all__ = ["SerialExecution", "ParallelExecution"]
