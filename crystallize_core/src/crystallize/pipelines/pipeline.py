"""An ordered list of steps: :class:`Pipeline`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from crystallize._steps import PipelineStep, pipeline_step

__all__ = ["Pipeline", "PipelineStep", "pipeline_step"]


class Pipeline:
    """Steps run in order for every replicate; each gets the previous one's output.

    :param steps: :class:`PipelineStep` instances (call a ``@pipeline_step``
        factory to get one).
    """

    def __init__(self, steps: Iterable[PipelineStep]) -> None:
        self.steps: list[PipelineStep] = list(steps)
        for i, step in enumerate(self.steps):
            if isinstance(step, PipelineStep):
                continue
            hint = ""
            if getattr(step, "__crystallize_factory__", None) == "step":
                hint = f" (did you mean {step.__name__}()? @pipeline_step functions are factories)"
            elif isinstance(step, type) and issubclass(step, PipelineStep):
                hint = f" (did you mean {step.__name__}(...)? pass an instance, not the class)"
            raise TypeError(f"Pipeline step {i} is {step!r}, not a PipelineStep{hint}")

    def signature(self) -> list[Any]:
        """The canonical description of every step (what the experiment id hashes)."""
        from crystallize._identity import describe

        return [describe(step) for step in self.steps]

    def __iter__(self) -> Iterator[PipelineStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"
