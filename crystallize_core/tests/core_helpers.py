"""Small building blocks shared by the core tests."""

from __future__ import annotations

import random

from crystallize import PipelineStep, data_source, pipeline_step


@data_source
def numbers(ctx, n=4):
    return [random.random() for _ in range(n)]


@pipeline_step()
def total(data, ctx, scale=1.0):
    value = sum(data) * scale
    ctx.metrics.add("total", value)
    return value


class FailOn(PipelineStep):
    """Raises for one (condition, replicate)."""

    def __init__(self, condition: str, replicate: int) -> None:
        self.condition = condition
        self.replicate = replicate

    def __call__(self, data, ctx):
        if ctx["condition"] == self.condition and ctx["replicate"] == self.replicate:
            raise RuntimeError(f"planned failure at {self.condition}/{self.replicate}")
        return data
