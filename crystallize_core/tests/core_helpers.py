"""Small building blocks shared by the core tests."""

from __future__ import annotations

import random

from crystallize import PipelineStep, data_source, hookimpl, pipeline_step


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


class MemoryStore:
    """A storage plugin keeping artifacts in a dict (proves the hooks suffice)."""

    plugin_name = "memory-store"

    def __init__(self) -> None:
        self.files: dict[tuple[str, int, str, str], bytes] = {}

    @hookimpl
    def open_store(self, run):
        return _MemoryRunStore()

    @hookimpl
    def on_artifact_write(self, artifact, data, ctx, step_name):
        from crystallize._records import ArtifactRecord

        key = (ctx["condition"], ctx["replicate"], step_name, artifact.name)
        self.files[key] = data
        return ArtifactRecord(artifact.name, step_name, key[0], key[1], "/".join(map(str, key)), len(data), "")


class _MemoryRunStore:
    """A RunStore that keeps documents in a dict and knows of no earlier run."""

    version = 0
    location = "memory://"
    resumed = False

    def __init__(self):
        self.documents = {}

    def read_json(self, path):
        return self.documents.get(path)

    def write_json(self, path, document):
        self.documents[path] = document

    def completed_condition(self, condition):
        return None

    def finished_replicates(self, condition):
        return {}
