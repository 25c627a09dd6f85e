"""What is measured: the workloads, their sizes (full and quick) and their cases.

A workload is one script in ``bench/workloads``. Each round runs each of its
cases once per framework, each in a fresh process; a case is one set of
arguments (for example one memory size). The values the cases of one round
report are merged into one record per framework and round; ``prefix`` keeps
names of different cases apart, and ``derived`` adds ratios computed from
the merged record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

MEMFS = "/dev/shm"  # a RAM file system, where present: artifact writes without the disk
BOTH = ("ours", "cml")
OURS = ("ours",)


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = BOTH
    prefix: str = ""
    ours_args: tuple[str, ...] = ()  # further arguments for our side only
    timeout_s: float = 900.0

    def arguments(self, framework: str) -> tuple[str, ...]:
        return self.args + (self.ours_args if framework == "ours" else ())


@dataclass(frozen=True)
class Ratio:
    """A value derived per round: ``numerator / denominator`` of the same framework."""

    name: str
    numerator: str
    denominator: str


@dataclass(frozen=True)
class Workload:
    name: str
    script: str
    summary: str
    cases: tuple[Case, ...]
    derived: tuple[Ratio, ...] = field(default=())
    note: str = ""


@dataclass(frozen=True)
class Sizes:
    """Every size knob in one place; ``FULL`` is the issue's, ``QUICK`` a smoke test."""

    step_shape: tuple[int, int, int]  # conditions, replicates, steps
    artifact_shape: tuple[int, int, int]  # conditions, replicates, KiB per file
    in_process_repeats: int  # timed runs per process where a workload repeats (median reported)
    resume_replicates: int
    resume_main: int  # conditions compared with crystallize-ml
    resume_scaling: tuple[int, ...]  # further condition counts, ours only
    parallel_replicates: int
    parallel_seconds: float  # pure-Python work per replicate
    memory_calls: tuple[int, int]  # small, large
    progress_busy_replicates: int  # per condition, each ~progress_replicate_s of pure Python
    progress_replicate_s: float
    stream_mib: int  # one artifact through artifact.open("wb")
    s3_shape: tuple[int, int, int]  # conditions, replicates, KiB per object, to a moto S3 server


FULL = Sizes(
    step_shape=(4, 300, 10),
    artifact_shape=(4, 100, 64),
    in_process_repeats=3,
    resume_replicates=10,
    resume_main=200,
    resume_scaling=(20, 2000),
    parallel_replicates=8,
    parallel_seconds=0.2,
    memory_calls=(1_000, 100_000),
    progress_busy_replicates=100,
    progress_replicate_s=0.002,
    stream_mib=1024,
    s3_shape=(4, 100, 64),
)

QUICK = Sizes(
    step_shape=(4, 30, 10),
    artifact_shape=(4, 10, 64),
    in_process_repeats=1,
    resume_replicates=3,
    resume_main=20,
    resume_scaling=(5, 50),
    parallel_replicates=4,
    parallel_seconds=0.02,
    memory_calls=(1_000, 10_000),
    progress_busy_replicates=10,
    progress_replicate_s=0.002,
    stream_mib=64,
    s3_shape=(4, 10, 64),
)


def options(**values: object) -> tuple[str, ...]:
    """``options(size_kib=64)`` -> ``("--size-kib", "64")``."""
    return tuple(part for key, value in values.items() for part in (f"--{key.replace('_', '-')}", str(value)))


def workloads(sizes: Sizes, iterations: int) -> list[Workload]:
    """The workloads in the order they run; ``iterations`` is the calibrated busy loop."""
    conditions, replicates, steps = sizes.step_shape
    a_conditions, a_replicates, kib = sizes.artifact_shape
    small, large = sizes.memory_calls
    s3_conditions, s3_replicates, s3_kib = sizes.s3_shape
    repeats = sizes.in_process_repeats
    resume_args = {"replicates": sizes.resume_replicates, "repeats": repeats}
    memfs = options(memfs_dir=MEMFS) if os.path.isdir(MEMFS) else ()
    progress_args = options(
        conditions=conditions,
        replicates=replicates,
        steps=steps,
        busy_replicates=sizes.progress_busy_replicates,
        busy_iterations=max(1, int(iterations * sizes.progress_replicate_s / sizes.parallel_seconds)),
        repeats=2 * ((repeats + 2) // 2),  # an even number of pairs, at least 2: their order alternates
    )
    memory_cases = tuple(
        Case(options(calls=calls, probe=probe, label=label), frameworks=frameworks)
        for probe, frameworks in (("rss", BOTH), ("tracemalloc", OURS))
        for label, calls in (("small_", small), ("large_", large))
    )
    return [
        Workload(
            "step_overhead",
            "step_overhead.py",
            f"{conditions} conditions x {replicates} replicates x {steps} trivial steps, ArtifactPlugin on",
            (Case(options(conditions=conditions, replicates=replicates, steps=steps, repeats=repeats)),),
        ),
        Workload(
            "artifact_writes",
            "artifact_writes.py",
            f"{a_conditions} conditions x {a_replicates} replicates x 1 artifact of {kib} KiB, vs plain writes",
            (
                Case(
                    options(conditions=a_conditions, replicates=a_replicates, size_kib=kib, repeats=repeats) + memfs,
                    ours_args=("--durable",),  # crystallize-ml has no durable mode
                ),
            ),
            note="both write from a @pipeline_step taking the Artifact as a parameter, the only form "
            "crystallize-ml 0.27 can write from (its class steps cannot); ours alone also runs durable=True; "
            f"memfs_* repeat the comparison in {MEMFS} (RAM), where only CPU cost counts",
        ),
        Workload(
            "resume_noop",
            "resume_noop.py",
            f"resume of {sizes.resume_main} completed conditions x {sizes.resume_replicates} replicates "
            f"(ours also at {', '.join(map(str, sizes.resume_scaling))} conditions)",
            (
                Case(options(conditions=sizes.resume_main, **resume_args)),
                *(
                    Case(options(conditions=n, **resume_args), frameworks=OURS, prefix=f"c{n}_")
                    for n in sizes.resume_scaling
                ),
            ),
        ),
        Workload(
            "import",
            "import_time.py",
            "`import crystallize` in a fresh process (ours: + entry-point discovery)",
            (Case(),),
        ),
        Workload(
            "parallel",
            "parallel.py",
            f"{sizes.parallel_replicates} replicates of ~{sizes.parallel_seconds:g} s pure Python: "
            "serial vs 2 worker processes (ours: + Dask)",
            (
                Case(
                    options(replicates=sizes.parallel_replicates, iterations=iterations, pairs=sizes.in_process_repeats)
                ),
            ),
        ),
        Workload(
            "memory",
            "memory.py",
            f"peak memory, {large:,} vs {small:,} step calls (1 condition, 10 steps, no metrics)",
            memory_cases,
            note="rss = ru_maxrss of the whole process; tracemalloc = Python-level peak of the run (ours only)",
            derived=(
                Ratio("rss_ratio", "large_rss_peak_mb", "small_rss_peak_mb"),
                Ratio("tracemalloc_ratio", "large_tracemalloc_peak_kib", "small_tracemalloc_peak_kib"),
            ),
        ),
        Workload(
            "progress_overhead",
            "progress_overhead.py",
            f"progress bars on vs off: {conditions} x {sizes.progress_busy_replicates} replicates of "
            f"~{sizes.progress_replicate_s * 1e3:g} ms (busy), and the step_overhead shape (trivial)",
            (
                Case(progress_args, frameworks=OURS),
                Case((*progress_args, "--without-progress"), frameworks=OURS, prefix="absent_"),
            ),
            derived=(
                Ratio("installed_trivial_ratio", "trivial_off_s", "absent_trivial_off_s"),
                Ratio("installed_busy_ratio", "busy_off_s", "absent_busy_off_s"),
            ),
            note="crystallize-progress only (crystallize-ml has no such plugin); bars drawn on a terminal-like "
            "rich console writing to a counting sink; *_ratio = on / off per adjacent pair in one process; "
            "installed_*_ratio = installed-but-off / not installed, across processes",
        ),
        Workload(
            "stream_write",
            "stream_write.py",
            f"one {sizes.stream_mib} MiB artifact through artifact.open('wb') in 1 MiB writes, vs plain file writes",
            (Case(options(size_mib=sizes.stream_mib, repeats=repeats) + memfs, frameworks=OURS),),
            note="crystallize-ml has no streamed artifacts; peak_increase_mb = rise of ru_maxrss during our runs; "
            f"memfs_* repeat the comparison in {MEMFS} (RAM)",
        ),
        Workload(
            "s3_writes",
            "s3_writes.py",
            f"{s3_conditions} conditions x {s3_replicates} replicates x 1 artifact of {s3_kib} KiB to a moto S3 "
            "server, vs the same uploads one after another with s3fs",
            (
                Case(
                    options(conditions=s3_conditions, replicates=s3_replicates, size_kib=s3_kib, repeats=repeats),
                    frameworks=OURS,
                ),
            ),
            note="ours runs with ParallelExecution(executor_type='thread', max_workers=8): uploads overlap; "
            "the server is moto's, in its own process on 127.0.0.1",
        ),
    ]


NAMES = (
    "step_overhead",
    "artifact_writes",
    "resume_noop",
    "import",
    "parallel",
    "memory",
    "progress_overhead",
    "stream_write",
    "s3_writes",
)
