"""``async def`` steps are awaited wherever replicates run; AsyncExecution overlaps their waits."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from crystallize import (
    AsyncExecution,
    Experiment,
    FrozenContext,
    ParallelExecution,
    Pipeline,
    PipelineStep,
    Treatment,
    data_source,
    pipeline_step,
)
from crystallize.testing import MemoryStorage


@data_source
def start(ctx, value=1):
    return value


@pipeline_step()
async def add_later(data, ctx, amount=1):
    await asyncio.sleep(0)
    return data + amount


@pipeline_step()
def record(data, ctx):
    ctx.metrics.add("value", data)
    return data


class AsyncDouble(PipelineStep):
    async def __call__(self, data, ctx):
        await asyncio.sleep(0)
        return data * 2


@pytest.mark.parametrize(
    "engine",
    [None, ParallelExecution(max_workers=2), ParallelExecution(executor_type="process", max_workers=2)],
    ids=["serial", "threads", "processes"],
)
def test_async_steps_are_awaited_before_the_next_step_sees_their_output(engine):
    exp = Experiment(
        datasource=start(value=3),
        pipeline=[add_later(amount=2), AsyncDouble(), record()],
        plugins=[] if engine is None else [engine],
        treatments=[Treatment("more", {"amount": 5})],
        replicates=2,
    )
    result = exp.run()
    assert result.errors == {}
    assert result.metrics.baseline.metrics["value"] == [10, 10]  # (3 + 2) * 2, not a coroutine
    assert result.metrics.treatments["more"].metrics["value"] == [10, 10]  # explicit amount=2 wins


def test_an_injected_parameter_reaches_an_async_step():
    exp = Experiment(
        datasource=start(value=3), pipeline=[add_later(), record()], treatments=[Treatment("t", {"amount": 7})]
    )
    result = exp.run()
    assert result.metrics.treatments["t"].metrics["value"] == [10]
    assert result.metrics.baseline.metrics["value"] == [4]


def test_an_exception_in_an_async_step_is_the_replicates_error_naming_the_step():
    @pipeline_step()
    async def explode(data, ctx):
        await asyncio.sleep(0)
        raise ValueError("no luck")

    result = Experiment(datasource=start(), pipeline=[explode(), record()], replicates=2).run()
    errors = result.errors["baseline"]
    assert sorted(errors) == [0, 1]
    assert errors[0].step == "explode" and "no luck" in errors[0].message


def test_async_execution_overlaps_the_waits_of_many_replicates():
    @pipeline_step()
    async def wait(data, ctx):
        await asyncio.sleep(0.3)
        return data

    exp = Experiment(
        datasource=start(), pipeline=[wait(), record()], plugins=[AsyncExecution(max_concurrency=20)], replicates=20
    )
    began = time.perf_counter()
    result = exp.run()
    elapsed = time.perf_counter() - began
    assert result.metrics.baseline.metrics["value"] == [1] * 20
    assert elapsed < 3.0, f"20 waits of 0.3 s took {elapsed:.1f} s: they did not overlap"


def test_async_execution_runs_every_coroutine_on_one_loop():
    loops = set()

    @pipeline_step()
    async def note_loop(data, ctx):
        loops.add(id(asyncio.get_running_loop()))
        return data

    exp = Experiment(datasource=start(), pipeline=[note_loop(), record()], plugins=[AsyncExecution()], replicates=6)
    assert exp.run().errors == {}
    assert len(loops) == 1


def test_an_async_step_writes_artifacts_of_its_own_replicate():
    from crystallize import Artifact

    out = Artifact("value.txt")

    @pipeline_step()
    async def save(data, ctx, out=out):
        await asyncio.sleep(0)
        out.write(f"{ctx['replicate']}:{data}".encode())
        return data

    storage = MemoryStorage()
    exp = Experiment(
        datasource=start(), pipeline=[save()], outputs=[out], plugins=[storage, AsyncExecution()], replicates=3
    )
    exp.run()
    (run,) = storage.runs[exp.key].values()
    written = {path: data.decode() for path, data in run.artifacts.items()}
    assert written == {f"replicate_{r}/baseline/save/value.txt": f"{r}:1" for r in range(3)}


def test_arun_runs_async_steps_on_the_callers_event_loop():
    seen = []

    @pipeline_step()
    async def on_loop(data, ctx):
        seen.append(asyncio.get_running_loop())
        return data

    exp = Experiment(datasource=start(), pipeline=[on_loop(), record()], replicates=2)

    async def main():
        result = await exp.arun()
        return result, asyncio.get_running_loop()

    result, loop = asyncio.run(main())
    assert result.metrics.baseline.metrics["value"] == [1, 1]
    assert seen == [loop, loop]


def test_run_works_while_an_event_loop_runs_in_this_thread_as_in_a_notebook():
    exp = Experiment(datasource=start(value=2), pipeline=[add_later(), record()])

    async def cell():
        return exp.run()  # a notebook cell calls the sync API inside the kernel's running loop

    assert asyncio.run(cell()).metrics.baseline.metrics["value"] == [3]


def test_each_thread_keeps_one_loop_for_its_async_steps():
    loops_by_thread: dict[int, set[int]] = {}

    @pipeline_step()
    async def note(data, ctx):
        loops_by_thread.setdefault(threading.get_ident(), set()).add(id(asyncio.get_running_loop()))
        return data

    Experiment(datasource=start(), pipeline=[note(), note(), record()], replicates=3).run()
    assert all(len(loops) == 1 for loops in loops_by_thread.values())


def test_pipeline_run_awaits_async_steps_outside_an_experiment():
    pipeline = Pipeline([add_later(amount=4), AsyncDouble()])
    assert pipeline.run(1, FrozenContext()) == 10

    async def main():
        return await pipeline.arun(1, FrozenContext())

    assert asyncio.run(main()) == 10


def test_acall_awaits_sync_and_async_steps_alike():
    ctx = FrozenContext({"amount": 3})
    assert asyncio.run(add_later().__acall__(2, ctx)) == 5
    assert asyncio.run(record().__acall__(2, ctx)) == 2
    assert ctx.metrics["value"] == (2,)
