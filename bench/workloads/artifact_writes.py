"""artifact_writes: writing artifact files through the framework vs plain Python.

Shape: ``conditions`` conditions x ``replicates`` replicates, one step that
writes one artifact of ``size_kib`` KiB per replicate (default 4 x 100 x 64
KiB = 400 files). The bytes are random and generated once, before timing.

The step is a ``@pipeline_step`` function receiving the :class:`Artifact` as
a parameter and calling ``artifact.write(blob)``. That is the only way
crystallize-ml 0.27 can write an artifact (its ``Artifact.write`` works only
for artifacts bound as ``@pipeline_step`` parameters; a class step holding
the artifact cannot write), so both frameworks use it.

Plain Python writes the same files to the same layout
(``<root>/<experiment>/v0/replicate_<r>/<condition>/<step>/<name>``) with
``mkdir(parents=True, exist_ok=True)`` and ``write_bytes``. Disk timings are
noisy, so within one process the phases alternate, plain first and last —
plain, framework, plain, ..., framework, plain (``repeats`` framework runs) —
each in a fresh folder that is deleted afterwards, with ``os.sync()`` before
every timed phase; the medians of each side are reported and their ratio.

Ours also runs with ``ArtifactPlugin(durable=True)`` (every file and folder
fsync'ed), compared with plain Python that fsyncs each file and its folder.

With ``--memfs-dir`` (e.g. ``/dev/shm``, a RAM file system) the non-durable
comparison is repeated there too (``memfs_*``): without the disk, the
framework's own CPU cost is a larger share, so that ratio is the stricter
one. The main ratio uses ``--tmp-dir``, the kind of disk artifacts land on.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import statistics
from pathlib import Path

import _common
from _common import now

ARTIFACT = "blob.bin"
STEP_DIR = {"ours": "write_blob", "cml": "Write_BlobStep"}  # each framework's name for the step


def write_blob(data, ctx, out):
    out.write(BLOB)
    return data


BLOB = b""


def plain_paths(root: Path, *, fw_name: str, conditions: list[str], replicates: int) -> list[Path]:
    version_dir = root / "artifact_writes" / "v0"
    return [
        version_dir / f"replicate_{r}" / c / STEP_DIR[fw_name] / ARTIFACT for c in conditions for r in range(replicates)
    ]


def plain_writes(paths: list[Path], blob: bytes) -> float:
    os.sync()
    start = now()
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    return now() - start


def plain_durable_writes(paths: list[Path], blob: bytes) -> float:
    os.sync()
    start = now()
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return now() - start


def framework_writes(fw, root: Path, conditions: int, replicates: int, durable: bool) -> float:
    extra = {"durable": True} if durable else {}
    os.sync()
    start = now()
    artifact = fw.Artifact(ARTIFACT)
    exp = fw.Experiment(
        datasource=_common.constant_source(fw),
        pipeline=fw.Pipeline([fw.pipeline_step()(write_blob)(out=artifact)]),
        plugins=[fw.ArtifactPlugin(root_dir=str(root), **extra)],
        outputs=[artifact],
        treatments=_common.treatments(fw, conditions),
        replicates=replicates,
        name="artifact_writes",
    )
    result = exp.run()
    elapsed = now() - start
    _common.check(not result.errors, f"replicates failed: {result.errors}")
    return elapsed


def count_files(root: Path, size: int) -> int:
    return sum(1 for p in root.rglob(ARTIFACT) if p.stat().st_size == size)


def alternate(repeats: int, plain, framework) -> tuple[float, float]:
    """Median seconds of (plain, framework) over the sequence P F P F ... F P."""
    plain_times = [plain()]
    framework_times = []
    for _ in range(repeats):
        framework_times.append(framework())
        plain_times.append(plain())
    return statistics.median(plain_times), statistics.median(framework_times)


def main() -> None:
    global BLOB
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--conditions", type=int, default=4)
    p.add_argument("--replicates", type=int, default=100)
    p.add_argument("--size-kib", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="framework runs per mode (plain runs: one more)")
    p.add_argument("--durable", action="store_true", help="also time durable writes (ours only)")
    p.add_argument("--memfs-dir", default=None, help="also compare in a folder on a RAM file system")
    args = p.parse_args()
    fw = _common.framework(args.framework)
    files = args.conditions * args.replicates
    size = args.size_kib * 1024
    BLOB = os.urandom(size)
    names = ["baseline", *(f"t{i}" for i in range(1, args.conditions))]
    paths = functools.partial(plain_paths, fw_name=fw.name, conditions=names, replicates=args.replicates)
    values: dict[str, float] = {}

    counter = itertools.count()

    def phase(parent: Path, timed) -> float:
        root = parent / f"phase-{next(counter)}"
        elapsed = timed(root)
        _common.check(count_files(root, size) == files, f"expected {files} files of {size} bytes in {root}")
        shutil.rmtree(root)
        return elapsed

    def compare(parent: Path, durable: bool) -> tuple[float, float]:
        writer = plain_durable_writes if durable else plain_writes
        return alternate(
            args.repeats,
            lambda: phase(parent, lambda root: writer(paths(root), BLOB)),
            lambda: phase(parent, lambda root: framework_writes(fw, root, args.conditions, args.replicates, durable)),
        )

    with _common.scratch_dir(args.tmp_dir, "artifacts") as scratch:
        _common.warm_up(fw, scratch)
        plain, run = compare(scratch, durable=False)
        values.update(run_s=run, plain_s=plain, ratio_to_plain=run / plain)
        if args.durable:
            plain, run = compare(scratch, durable=True)
            values.update(durable_run_s=run, plain_fsync_s=plain, durable_ratio_to_plain_fsync=run / plain)
    if args.memfs_dir:
        with _common.scratch_dir(args.memfs_dir, "artifacts") as scratch:
            plain, run = compare(scratch, durable=False)
            values.update(memfs_run_s=run, memfs_plain_s=plain, memfs_ratio_to_plain=run / plain)

    _common.emit(
        "artifact_writes", fw.name, values, {"files": files, "file_kib": args.size_kib, "repeats": args.repeats}
    )


if __name__ == "__main__":
    main()
