"""The step cache: reused for the same code, parameters and input; never for changed code."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from crystallize import Experiment, FrozenContext, Pipeline, PipelineStep, Treatment, data_source, pipeline_step
from crystallize.errors import CacheError

CALLS: list[str] = []


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("CRYSTALLIZE_CACHE_DIR", str(folder))
    CALLS.clear()
    return folder


class Square(PipelineStep):
    cacheable = True

    def __init__(self, offset=0):
        self.offset = offset

    def __call__(self, data, ctx):
        CALLS.append("square")
        ctx.metrics.add("squared", data * data)
        ctx.add("squared_by", "Square")
        return data * data + self.offset


@pipeline_step(cacheable=True)
def scaled(data, ctx, factor=2):
    CALLS.append("scaled")
    return data * factor


def test_a_second_pipeline_reuses_the_result_and_replays_metrics_and_context_keys():
    first = FrozenContext()
    assert Pipeline([Square()]).run(3, first) == 9
    again = FrozenContext()
    pipeline = Pipeline([Square()])
    assert pipeline.run(3, again) == 9
    assert CALLS == ["square"]
    assert again.metrics["squared"] == (9,) and again["squared_by"] == "Square"
    assert pipeline.get_provenance()[0]["cache_hit"] is True


def test_other_input_parameters_or_context_values_miss():
    Pipeline([Square()]).run(3, FrozenContext())
    Pipeline([Square()]).run(4, FrozenContext())  # input
    Pipeline([Square(offset=1)]).run(3, FrozenContext())  # parameter
    Pipeline([Square()]).run(3, FrozenContext({"lr": 0.1}))  # a value a step could read
    assert CALLS == ["square"] * 4
    Pipeline([Square()]).run(3, FrozenContext({"replicate": 5, "condition": "x", "seed_used": 9}))
    assert CALLS == ["square"] * 4  # bookkeeping keys do not change what a step computes


def _define(body: str):
    namespace: dict = {"PipelineStep": PipelineStep, "CALLS": CALLS}
    exec(
        textwrap.dedent(
            f"""
            def helper(x):
                return {body}

            class Changing(PipelineStep):
                cacheable = True

                def __call__(self, data, ctx):
                    CALLS.append("changing")
                    return helper(data)
            """
        ),
        namespace,
    )
    return namespace["Changing"]


def test_changed_code_is_never_served_a_result_of_the_old_code():
    old = _define("x + 1")
    assert Pipeline([old()]).run(1, FrozenContext()) == 2
    same = _define("x + 1")
    assert Pipeline([same()]).run(1, FrozenContext()) == 2
    assert CALLS == ["changing"]  # the same code, defined again: a hit
    new = _define("x + 100")  # only the module-level helper changed
    assert Pipeline([new()]).run(1, FrozenContext()) == 101
    assert CALLS == ["changing", "changing"]


def test_function_steps_are_keyed_by_their_code_and_parameters():
    Pipeline([scaled(factor=3)]).run(2, FrozenContext())
    Pipeline([scaled(factor=3)]).run(2, FrozenContext())
    Pipeline([scaled(factor=4)]).run(2, FrozenContext())
    assert CALLS == ["scaled", "scaled"]
    assert scaled().step_hash == scaled(factor=2).step_hash != scaled(factor=5).step_hash


def test_treatments_that_change_a_read_value_get_their_own_entries_in_a_run():
    @data_source
    def two(ctx):
        return 2

    @pipeline_step(cacheable=True)
    def times(data, ctx, factor=1):
        CALLS.append(ctx["condition"])
        ctx.metrics.add("out", data * factor)
        return data * factor

    def run():
        exp = Experiment(
            datasource=two(), pipeline=[times()], treatments=[Treatment("x3", {"factor": 3})], replicates=2
        )
        return exp.run()

    first = run()
    assert first.metrics.baseline.metrics["out"] == [2, 2]
    assert first.metrics.treatments["x3"].metrics["out"] == [6, 6]
    calls = len(CALLS)
    second = run()
    assert len(CALLS) == calls  # every replicate of every condition came from the cache
    assert second.metrics.treatments["x3"].metrics["out"] == [6, 6]  # metrics replayed per condition


def test_a_corrupted_entry_is_recomputed_and_replaced(cache_dir):
    step = Square()
    Pipeline([step]).run(3, FrozenContext())
    (entry,) = cache_dir.rglob("*.pkl")
    entry.write_bytes(b"not a pickle")
    assert Pipeline([Square()]).run(3, FrozenContext()) == 9
    assert CALLS == ["square", "square"]
    assert pickle.loads(entry.read_bytes())["result"] == 9


def test_a_result_that_does_not_pickle_is_an_error_naming_the_fix(cache_dir):
    class Returns(PipelineStep):
        cacheable = True

        def __call__(self, data, ctx):
            return threading.Lock()

    with pytest.raises(CacheError, match=r"cacheable=False") as raised:
        Pipeline([Returns()]).run(1, FrozenContext())
    assert isinstance(raised.value, OSError)
    assert not list(cache_dir.rglob("*.pkl")) and not list(cache_dir.rglob("*.tmp"))


def test_an_input_that_does_not_pickle_is_an_error_naming_the_step():
    with pytest.raises(CacheError, match=r"cacheable step 'Square': its input, a lock, does not pickle"):
        Pipeline([Square()]).run(threading.Lock(), FrozenContext())


def test_a_step_that_writes_artifacts_is_not_stored():
    from crystallize import Artifact
    from crystallize.testing import MemoryStorage

    out = Artifact("x.bin")

    @pipeline_step(cacheable=True)
    def writes(data, ctx, out=out):
        CALLS.append("writes")
        out.write(b"x")
        return data

    @data_source
    def one(ctx):
        return 1

    for _ in range(2):
        Experiment(datasource=one(), pipeline=[writes()], outputs=[out], plugins=[MemoryStorage()]).run()
    assert CALLS == ["writes", "writes"]  # a hit could not have written the artifact again


def test_concurrent_writers_leave_one_whole_entry(cache_dir):
    def run():
        Pipeline([Square()]).run(7, FrozenContext())

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = list(cache_dir.rglob("*.pkl"))
    assert len(entries) == 1 and pickle.loads(entries[0].read_bytes())["result"] == 49
    assert not list(cache_dir.rglob("*.tmp"))


WRITER = """
import os, sys
from crystallize import FrozenContext, Pipeline, PipelineStep

class Big(PipelineStep):
    cacheable = True
    def __call__(self, data, ctx):
        return bytes(range(256)) * (4096 * data)

i = 1
print("ready", flush=True)
while True:
    Pipeline([Big()]).run(i % 7 + 1, FrozenContext())
    i += 1
"""


@pytest.mark.slow
def test_a_writer_killed_at_any_moment_leaves_only_whole_entries(cache_dir, tmp_path):
    import time

    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, CRYSTALLIZE_CACHE_DIR=str(cache_dir), CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD="1")
    for delay in (0.05, 0.2, 0.4, 0.8):
        child = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
    entries = list(cache_dir.rglob("*.pkl"))
    assert entries
    for entry in entries:  # every committed entry is whole; torn writes stayed temporary files
        result = pickle.loads(entry.read_bytes())["result"]
        assert len(result) % (256 * 4096) == 0 and result[:256] == bytes(range(256))
    assert Pipeline([_big()]).run(1, FrozenContext())[:3] == b"\x00\x01\x02"  # and they are used


def _big():
    class Big(PipelineStep):
        cacheable = True

        def __call__(self, data, ctx):
            return bytes(range(256)) * (4096 * data)

    return Big()


def test_the_cache_folder_is_the_environment_variables(cache_dir):
    Pipeline([Square()]).run(2, FrozenContext())
    assert Path(cache_dir).is_dir() and list(Path(cache_dir).rglob("*.pkl"))
