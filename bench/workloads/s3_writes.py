"""s3_writes: artifacts written to an S3 API server, vs the same uploads made directly with s3fs.

Ours only. A moto S3 server (``moto[server]``) runs in its own process on
127.0.0.1 for the measurement. Shape: ``conditions`` x ``replicates`` x one
artifact of ``size_kib`` KiB (default 4 x 100 x 64 KiB = 400 objects), the
bytes made once before timing. Ours: an experiment with
``ArtifactPlugin(root_dir="s3://bucket/...")`` whose ``@pipeline_step`` calls
``artifact.write(blob)``, run with ``ParallelExecution(executor_type="thread")``
so uploads overlap (every other object the store writes — metadata, journal,
results, markers, manifest — is included). Direct: the same 400 keys uploaded
one after another with ``s3fs.S3FileSystem.pipe_file``. Phases alternate in
the process (direct, ours, direct, ..., ours, direct), each under a fresh
prefix; medians are reported and their ratio.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import uuid

import _common
from _common import now

BLOB = b""


def write_blob(data, ctx, out):
    out.write(BLOB)
    return data


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise SystemExit("moto's S3 server did not start") from None
            time.sleep(0.1)


def main() -> None:
    global BLOB
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--conditions", type=int, default=4)
    p.add_argument("--replicates", type=int, default=100)
    p.add_argument("--size-kib", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=8)
    args = p.parse_args()
    fw = _common.framework(args.framework)
    _common.check(fw.name == "ours", "s3_writes measures ours only")
    server, endpoint = start_server()
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        import s3fs

        fs = s3fs.S3FileSystem()
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        fs.mkdir(bucket)
        BLOB = os.urandom(args.size_kib * 1024)
        names = ["baseline", *(f"t{i}" for i in range(1, args.conditions))]
        files = args.conditions * args.replicates

        def direct(prefix: str) -> float:
            keys = [
                f"{bucket}/{prefix}/s3_writes/v0/replicate_{r}/{c}/write_blob/blob.bin"
                for c in names
                for r in range(args.replicates)
            ]
            start = now()
            for key in keys:
                fs.pipe_file(key, BLOB)
            return now() - start

        def ours(prefix: str) -> float:
            artifact = fw.Artifact("blob.bin")
            start = now()
            exp = fw.Experiment(
                datasource=_common.constant_source(fw),
                pipeline=fw.Pipeline([fw.pipeline_step()(write_blob)(out=artifact)]),
                plugins=[
                    fw.ArtifactPlugin(root_dir=f"s3://{bucket}/{prefix}"),
                    fw.ParallelExecution(max_workers=args.threads, executor_type="thread"),
                ],
                outputs=[artifact],
                treatments=_common.treatments(fw, args.conditions),
                replicates=args.replicates,
                name="s3_writes",
            )
            result = exp.run()
            elapsed = now() - start
            _common.check(not result.errors, f"replicates failed: {result.errors}")
            _common.check(len(result.artifacts) == files, f"expected {files} artifacts")
            return elapsed

        def stored(prefix: str) -> int:
            fs.invalidate_cache()
            return sum(1 for key in fs.find(f"{bucket}/{prefix}") if key.endswith("/blob.bin"))

        with _common.scratch_dir(args.tmp_dir, "s3") as scratch:
            _common.warm_up(fw, scratch)
        ours("warm-up")  # the store's modules and the S3 client, paid untimed
        direct_times, our_times = [], []
        for i in range(args.repeats + 1):
            prefix = f"direct-{i}"
            direct_times.append(direct(prefix))
            _common.check(stored(prefix) == files, "direct uploads are missing")
            if i < args.repeats:
                prefix = f"ours-{i}"
                our_times.append(ours(prefix))
                _common.check(stored(prefix) == files, "artifacts are missing from the bucket")
    finally:
        server.terminate()
        server.wait(timeout=30)
    run, base = statistics.median(our_times), statistics.median(direct_times)
    values = {"run_s": run, "direct_s": base, "ratio_to_direct": run / base}
    _common.emit("s3_writes", fw.name, values, {"objects": files, "object_kib": args.size_kib, "threads": args.threads})


if __name__ == "__main__":
    main()
