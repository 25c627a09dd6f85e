"""results_vs_mlflow: log replicates' metrics and small artifacts, then list and read them back.

Shape: ``--conditions`` x ``--replicates`` (default 4 x 100 = 400 replicates),
each logging three metrics and one artifact of ``--artifact-bytes`` (1 KiB).

- ``--framework ours``: one :class:`~crystallize.Experiment` (baseline + 3
  treatments) with ``ArtifactPlugin(versioned=True)``; a step records the
  metrics and writes the artifact. ``log_s`` times its construction and
  ``run()``. Reading back, each timed on its own: ``ls_s``
  (:func:`~crystallize_artifacts.list_runs` of the root), ``load_s``
  (:func:`~crystallize_artifacts.load_result`), ``show_s`` (``load_result``
  and the summary table ``crystallize show`` prints) and ``read_s`` (all three).
  ``artifacts_s`` (information) reads the 400 artifacts' bytes through the
  result's records.
- ``--framework mlflow``: MLflow 3's local tracking with its SQLite backend
  (``sqlite:///mlflow.db``) and its file artifact store (``./mlartifacts``),
  one MLflow run per replicate (params ``condition`` and ``replicate``,
  ``log_metrics``, ``log_artifact`` of a file written beforehand). ``log_s``
  times creating the experiment and the 400 runs. ``read_s`` is
  ``search_runs`` over the experiment (``search_s``) plus
  ``download_artifacts`` of every run's artifact (``download_s``).

Imports are not timed on either side. Every side checks what it read: 400
runs or replicates, every metric value, every artifact's bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

METRICS = ("accuracy", "loss", "f1")


def values_of(condition: int, replicate: int) -> dict[str, float]:
    return {"accuracy": 0.5 + condition / 10 + replicate / 1000, "loss": 1.0 / (1 + replicate), "f1": condition / 7}


def blob(condition: int, replicate: int, size: int) -> bytes:
    head = f"c{condition} r{replicate} ".encode()
    return (head * (size // len(head) + 1))[:size]


def ours(scratch: Path, conditions: int, replicates: int, size: int) -> dict[str, float]:
    from crystallize import Artifact, Experiment, Pipeline, Treatment, data_source, pipeline_step
    from crystallize_artifacts import ArtifactPlugin, list_runs, load_result

    root = scratch / "data"

    @data_source
    def source(ctx):
        return ctx["replicate"]

    @pipeline_step()
    def log(x, ctx, out, c=0):
        for name, value in values_of(c, x).items():
            ctx.metrics.add(name, value)
        out.write(blob(c, x, size))
        return x

    start = time.perf_counter()
    out = Artifact("model.bin")
    experiment = Experiment(
        source(),
        Pipeline([log(out=out)]),
        plugins=[ArtifactPlugin(root_dir=root, versioned=True)],
        outputs=[out],
        treatments=[Treatment(f"c{c}", {"c": c}) for c in range(1, conditions)],
        replicates=replicates,
        name="bench",
    )
    result = experiment.run()
    log_s = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"sanity check failed: {result.error_list()[:1]}")

    start = time.perf_counter()
    runs = list(list_runs(root))
    ls_s = time.perf_counter() - start
    start = time.perf_counter()
    loaded = load_result(root, "bench")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    text = str(load_result(root, "bench").summary())
    show_s = time.perf_counter() - start
    start = time.perf_counter()
    folder = Path(loaded.run.location)
    data = {(r.condition, r.replicate): (folder / r.path).read_bytes() for r in loaded.artifacts}
    artifacts_s = time.perf_counter() - start

    names = ["baseline", *(f"c{c}" for c in range(1, conditions))]
    if len(runs) != 1 or runs[0].status != "completed" or "c1" not in text:
        raise SystemExit("sanity check failed: the run is not listed as completed")
    for c, name in enumerate(names):
        metrics = loaded.metrics.condition(name)
        for r in range(replicates):
            for metric, value in values_of(c, r).items():
                if metrics.by_replicate[metric][r] != value:
                    raise SystemExit(f"sanity check failed: {name} replicate {r} {metric}")
            if data[(name, r)] != blob(c, r, size):
                raise SystemExit(f"sanity check failed: artifact of {name} replicate {r}")
    return {
        "log_s": log_s,
        "ls_s": ls_s,
        "load_s": load_s,
        "show_s": show_s,
        "read_s": ls_s + load_s + show_s,
        "artifacts_s": artifacts_s,
    }


def mlflow_side(scratch: Path, conditions: int, replicates: int, size: int) -> dict[str, float]:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow
    import mlflow.artifacts

    os.chdir(scratch)  # ./mlflow.db and ./mlartifacts, as MLflow's defaults put them
    files = scratch / "to-log"
    for c in range(conditions):
        for r in range(replicates):
            folder = files / f"c{c}" / f"r{r}"
            folder.mkdir(parents=True)
            (folder / "model.bin").write_bytes(blob(c, r, size))

    start = time.perf_counter()
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    experiment_id = mlflow.create_experiment("bench")
    for c in range(conditions):
        for r in range(replicates):
            with mlflow.start_run(experiment_id=experiment_id):
                mlflow.log_params({"condition": c, "replicate": r})
                mlflow.log_metrics(values_of(c, r))
                mlflow.log_artifact(str(files / f"c{c}" / f"r{r}" / "model.bin"))
    log_s = time.perf_counter() - start

    start = time.perf_counter()
    frame = mlflow.search_runs(experiment_ids=[experiment_id], max_results=10_000)
    search_s = time.perf_counter() - start
    start = time.perf_counter()
    downloads = scratch / "downloads"
    data = {}
    for row in frame.itertuples():
        run_id = row.run_id
        target = downloads / run_id
        target.mkdir(parents=True)
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model.bin", dst_path=str(target))
        data[run_id] = Path(path).read_bytes()
    download_s = time.perf_counter() - start

    if len(frame) != conditions * replicates:
        raise SystemExit(f"sanity check failed: search_runs found {len(frame)} runs")
    for row in frame.to_dict("records"):
        c, r = int(row["params.condition"]), int(row["params.replicate"])
        for metric, value in values_of(c, r).items():
            if abs(row[f"metrics.{metric}"] - value) > 1e-12:
                raise SystemExit(f"sanity check failed: run c{c} r{r} {metric}")
        if data[row["run_id"]] != blob(c, r, size):
            raise SystemExit(f"sanity check failed: artifact of c{c} r{r}")
    return {"log_s": log_s, "search_s": search_s, "download_s": download_s, "read_s": search_s + download_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=["ours", "mlflow"], required=True)
    p.add_argument("--tmp-dir", default=None)
    p.add_argument("--conditions", type=int, default=4)
    p.add_argument("--replicates", type=int, default=100)
    p.add_argument("--artifact-bytes", type=int, default=1024)
    args = p.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix=f"crystallize-bench-{args.framework}-", dir=args.tmp_dir))
    try:
        side = ours if args.framework == "ours" else mlflow_side
        values = side(scratch, args.conditions, args.replicates, args.artifact_bytes)
    finally:
        os.chdir(Path(scratch).parent)
        shutil.rmtree(scratch, ignore_errors=True)
    version = None
    try:
        from importlib.metadata import version as dist_version

        version = dist_version("mlflow" if args.framework == "mlflow" else "crystallize-core")
    except Exception:  # noqa: BLE001 - information only
        pass
    record = {"workload": "results_vs_mlflow", "framework": args.framework, "version": version}
    record.update(python=sys.version.split()[0], values=values, info={})
    print(json.dumps(record))


if __name__ == "__main__":
    main()
