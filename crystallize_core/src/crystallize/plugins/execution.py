"""Execution plugins by crystallize-ml's import path."""

from crystallize._execution import ParallelExecution, SerialExecution

__all__ = ["SerialExecution", "ParallelExecution"]
