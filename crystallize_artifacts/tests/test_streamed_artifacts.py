"""Streamed artifacts: ``artifact.open("wb")`` and ``artifact.write_file(path)``, as atomic as ``write``."""

from __future__ import annotations

import os
import pickle
import tracemalloc

import blake3
import pytest

from crystallize import Artifact, Experiment, Pipeline, PipelineStep, data_source
from crystallize.plugin import ArtifactRecord
from crystallize_artifacts import ArtifactPlugin, verify_path


@data_source
def seed(ctx):
    return ctx["replicate"]


class Stream(PipelineStep):
    """Writes through ``open("wb")`` with any writer taking a file object; fails on request."""

    def __init__(self, out, fail_on=None, size=0):
        self.out = out
        self.fail_on = fail_on
        self.size = size

    def __call__(self, data, ctx):
        with self.out.open("wb") as f:
            pickle.dump({"replicate": data}, f)
            block = bytes(range(256)) * 4096  # 1 MiB
            for _ in range(self.size):
                f.write(block)
            if data == self.fail_on:
                raise RuntimeError("the writer failed half-way")
        return data

    @property
    def params(self):
        return {"size": self.size}


def build(root, step, name="streams", replicates=2, out=None):
    out = out or step.out
    return Experiment(
        seed(),
        Pipeline([step]),
        plugins=[ArtifactPlugin(root_dir=root)],
        outputs=[out],
        name=name,
        replicates=replicates,
    )


def test_a_streamed_artifact_is_stored_like_a_written_one(tmp_path):
    out = Artifact("state.pkl")
    result = build(tmp_path, Stream(out)).run()
    assert result.ok
    records = sorted(result.artifacts, key=lambda r: r.replicate)
    assert [r.path for r in records] == [f"replicate_{r}/baseline/Stream/state.pkl" for r in (0, 1)]
    for record in records:
        data = (tmp_path / "streams" / "v0" / record.path).read_bytes()
        assert pickle.loads(data) == {"replicate": record.replicate}
        assert record.size == len(data) and record.digest == f"blake3:{blake3.blake3(data).hexdigest()}"
    assert verify_path(tmp_path / "streams") == {str(tmp_path / "streams" / "v0"): []}


def test_a_step_failing_mid_stream_stores_nothing_and_leaves_no_temporary_file(tmp_path):
    out = Artifact("state.pkl")
    result = build(tmp_path, Stream(out, fail_on=1, size=3)).run()
    assert [(e.condition, e.replicate) for e in result.error_list()] == [("baseline", 1)]
    replicate_1 = tmp_path / "streams" / "v0" / "replicate_1"
    assert [p for p in replicate_1.rglob("*") if p.is_file()] == []  # neither the artifact nor a temporary
    assert (tmp_path / "streams" / "v0" / "replicate_0" / "baseline" / "Stream" / "state.pkl").is_file()


def test_streaming_holds_memory_to_a_buffer_not_the_artifact(tmp_path):
    out = Artifact("big.bin")
    exp = build(tmp_path, Stream(out, size=96), replicates=1)  # 96 MiB through the stream
    tracemalloc.start()
    try:
        result = exp.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok
    assert result.artifacts[0].size > 96 << 20
    # the step's 1 MiB block, the 256 KiB buffer and the run's own bookkeeping (about 2.7 MiB in all)
    assert peak < 5 << 20, f"streaming 96 MiB held {peak / (1 << 20):.1f} MiB at once"


class CopyIn(PipelineStep):
    def __init__(self, out, move):
        self.out = out
        self.move = move

    def __call__(self, data, ctx):
        path = os.path.join(os.environ["SCRATCH"], f"checkpoint-{data}.bin")
        with open(path, "wb") as f:
            f.write(b"weights %d" % data)
        ctx.metrics.add("inode", os.stat(path).st_ino)
        record = self.out.write_file(path, move=self.move)
        assert isinstance(record, ArtifactRecord)
        return data

    @property
    def params(self):
        return {"move": self.move}


@pytest.mark.parametrize("move", [False, True])
def test_write_file_copies_or_moves_an_existing_file_into_the_store(tmp_path, monkeypatch, move):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("SCRATCH", str(scratch))
    out = Artifact("checkpoint.bin")
    result = build(tmp_path / "root", CopyIn(out, move)).run()
    assert result.ok, result.errors
    for replicate in (0, 1):
        stored = (
            tmp_path / "root" / "streams" / "v0" / f"replicate_{replicate}" / "baseline" / "CopyIn" / "checkpoint.bin"
        )
        assert stored.read_bytes() == b"weights %d" % replicate
        inode = result.metrics.baseline.metrics["inode"][replicate]
        assert (stored.stat().st_ino == inode) is move  # moved: renamed into place, never copied
    assert sorted(p.name for p in scratch.iterdir()) == ([] if move else ["checkpoint-0.bin", "checkpoint-1.bin"])
    assert verify_path(tmp_path / "root" / "streams") == {str(tmp_path / "root" / "streams" / "v0"): []}


def test_open_refuses_other_modes_and_write_file_a_missing_file(tmp_path):
    out = Artifact("x.bin")

    class Misuse(PipelineStep):
        def __init__(self, out):
            self.out = out

        def __call__(self, data, ctx):
            with pytest.raises(ValueError, match="mode 'wb' only"):
                self.out.open("ab")
            with pytest.raises(FileNotFoundError, match="not a file"):
                self.out.write_file(tmp_path / "absent.bin")
            return data

        @property
        def params(self):
            return {}

    assert build(tmp_path, Misuse(out), replicates=1, out=out).run().ok


# -- hashing beside the write: lanes ------------------------------------------------------------------


class ListSink:
    """A sink keeping what it is given (copied, as a file would)."""

    def __init__(self):
        self.chunks = []
        self.committed = False

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)

    def commit(self):
        self.committed = True

    def discard(self):
        self.chunks.clear()


def stream_through(sink, blocks):
    from crystallize_artifacts.streams import ArtifactWriter

    writer = ArtifactWriter(sink, lambda size, digest: (size, digest))
    with writer as f:
        for block in blocks:
            f.write(block)
    return writer.record


def lane_threads():
    import threading

    return [t for t in threading.enumerate() if t.name == "crystallize-hash"]


def test_large_writes_are_hashed_on_a_lane_that_later_writers_reuse():
    from crystallize_artifacts.streams import BUFFER_SIZE

    blocks = [os.urandom(BUFFER_SIZE * 2) for _ in range(3)]
    expected = (len(blocks) * BUFFER_SIZE * 2, "blake3:" + blake3.blake3(b"".join(blocks)).hexdigest())
    assert stream_through(ListSink(), blocks) == expected
    lanes = len(lane_threads())
    assert lanes >= 1
    for _ in range(5):  # one writer after another: the same lane serves them all
        assert stream_through(ListSink(), blocks) == expected
    assert len(lane_threads()) == lanes


def test_writers_in_parallel_threads_get_their_own_lanes_and_right_digests():
    import threading

    from crystallize_artifacts.streams import BUFFER_SIZE

    results, expected = {}, {}
    gate = threading.Barrier(4)

    def write(i):
        blocks = [bytes([i]) * BUFFER_SIZE * 2, os.urandom(BUFFER_SIZE * 3)]
        expected[i] = (BUFFER_SIZE * 5, "blake3:" + blake3.blake3(b"".join(blocks)).hexdigest())
        gate.wait()
        for _ in range(10):
            results[i] = stream_through(ListSink(), blocks)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


def test_a_hashing_failure_reaches_the_writer_and_the_lane_serves_on():
    from crystallize_artifacts.streams import BUFFER_SIZE, ArtifactWriter

    class Broken:
        def update(self, data):
            raise MemoryError("no room to hash")

    sink = ListSink()
    writer = ArtifactWriter(sink, lambda size, digest: (size, digest))
    writer._raw.digest = Broken()
    with pytest.raises(MemoryError, match="no room to hash"), writer as f:
        f.write(bytes(BUFFER_SIZE))
    assert writer.record is None and not sink.committed and sink.chunks == []
    block = os.urandom(BUFFER_SIZE)
    assert stream_through(ListSink(), [block]) == (BUFFER_SIZE, "blake3:" + blake3.blake3(block).hexdigest())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_streams_with_new_lanes():
    from crystallize_artifacts.streams import BUFFER_SIZE

    block = os.urandom(BUFFER_SIZE * 2)
    expected = (len(block), "blake3:" + blake3.blake3(block).hexdigest())
    assert stream_through(ListSink(), [block]) == expected  # the parent has an idle lane now
    pid = os.fork()
    if pid == 0:  # the child: the parent's lane threads do not exist here
        import signal

        signal.alarm(30)  # a borrowed dead lane would wait forever: die instead
        ok = False
        try:
            ok = stream_through(ListSink(), [block]) == expected
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_child_forked_while_another_thread_borrows_a_lane_still_streams():
    import threading

    from crystallize_artifacts import streams

    block = os.urandom(streams.BUFFER_SIZE)
    expected = (len(block), "blake3:" + blake3.blake3(block).hexdigest())
    holding, release = threading.Event(), threading.Event()

    def hold():
        with streams._lanes_lock:  # as a writer in another thread would, at the moment of the fork
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(30)
    try:
        pid = os.fork()
        if pid == 0:
            import signal

            signal.alarm(30)  # a lock inherited held would block the child forever: die instead
            ok = False
            try:
                ok = stream_through(ListSink(), [block]) == expected
            finally:
                os._exit(0 if ok else 1)
    finally:
        release.set()
        holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_idle_lane_keeps_no_reference_to_what_was_written():
    import gc
    import weakref

    from crystallize_artifacts.streams import BUFFER_SIZE

    class Blob(bytearray):
        pass

    blob = Blob(os.urandom(BUFFER_SIZE * 4))
    alive = weakref.ref(blob)
    stream_through(ListSink(), [blob])
    del blob
    gc.collect()
    assert alive() is None
