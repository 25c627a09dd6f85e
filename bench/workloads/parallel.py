"""parallel: a CPU-bound step run serially and on two worker processes.

One condition, ``replicates`` replicates; the single step spins
:func:`busy.burn` for ``iterations`` turns (calibrated by the driver to about
0.2 s of pure Python) and records the result as a metric. Timed, in this
order and in the same process, each as the experiment's construction plus
``run()``:

- serial: the framework's default execution;
- process: ``ParallelExecution(max_workers=2, executor_type="process")``
  (pool start-up included — it is part of every such run);
- dask (ours only, when ``crystallize_dask`` is importable): a
  ``distributed.LocalCluster`` of two single-threaded worker processes is
  started first and timed on its own (``dask_cluster_start_s``); the run
  then uses ``DaskExecution(client=...)``, so the cluster start is excluded
  from ``dask_s``. If the plugin takes no ``client``, it is given
  ``n_workers=2`` and the start is included (reported in ``info``).

Speed-ups are serial time / parallel time, measured in the same process.
The host's CPU speed drifts by tens of percent from one second to the next
on this kind of shared machine, so the serial and parallel runs alternate
``--pairs`` times (serial, process, [dask], serial, process, ...), each
speed-up is computed from adjacent runs, and the median is reported.

The Dask cluster's start (``dask_cluster_start_s``) includes importing the
framework on its workers (``client.run``): a long-lived cluster pays that
once, not per run.
"""

from __future__ import annotations

import _common
from _common import now
from busy import burn

import crystallize as cz


@cz.pipeline_step()
def spin(data, ctx, iterations=0):
    value = burn(iterations)
    ctx.metrics.add("spin", value)
    return data


@cz.data_source
def nothing(ctx):
    return 0


def timed_run(fw, root, replicates: int, iterations: int, execution=None) -> float:
    plugins = [fw.ArtifactPlugin(root_dir=str(root))]
    if execution is not None:
        plugins.append(execution)
    start = now()
    exp = fw.Experiment(
        datasource=nothing(),
        pipeline=fw.Pipeline([spin(iterations=iterations)]),
        plugins=plugins,
        replicates=replicates,
        name="parallel",
    )
    result = exp.run()
    elapsed = now() - start
    _common.check(not result.errors, f"replicates failed: {result.errors}")
    values = result.metrics.baseline.metrics.get("spin", [])
    _common.check(len(values) == replicates, f"expected {replicates} metric values, got {len(values)}")
    _common.check(len(set(values)) == 1, "replicates computed different values")
    return elapsed


def start_dask(info: dict, values: dict):
    """A LocalCluster of two single-threaded workers, warmed up; None if unavailable."""
    try:
        from crystallize_dask import DaskExecution  # noqa: F401
    except ImportError as exc:
        info["dask"] = f"not measured: crystallize_dask is not importable ({exc})"
        return None
    from distributed import Client

    from crystallize_dask.cluster import start_local_cluster

    start = now()
    # The private (TLS) cluster DaskExecution() itself would start, so the
    # figure includes what users pay for it.
    cluster = start_local_cluster({"n_workers": 2, "threads_per_worker": 1, "processes": True})
    client = Client(cluster, security=cluster.security)
    client.wait_for_workers(2)
    client.run(lambda: __import__("crystallize") and __import__("crystallize_artifacts"))
    values["dask_cluster_start_s"] = now() - start
    info["dask"] = "DaskExecution(client=...) on a private (TLS) LocalCluster started (and warmed) before timing"
    return cluster, client


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, default=8)
    p.add_argument("--iterations", type=int, required=True, help="burn() turns per replicate (from the driver)")
    p.add_argument("--no-dask", action="store_true")
    p.add_argument("--pairs", type=int, default=3, help="serial/parallel alternations (median reported)")
    args = p.parse_args()
    fw = _common.framework(args.framework)
    values: dict[str, float] = {}
    info: dict[str, object] = {"replicates": args.replicates, "iterations": args.iterations}

    with _common.scratch_dir(args.tmp_dir, "parallel") as scratch:
        _common.warm_up(fw, scratch)
        start = now()
        burn(args.iterations)
        values["one_replicate_s"] = now() - start
        dask = start_dask(info, values) if fw.name == "ours" and not args.no_dask else None
        runs: dict[str, list[float]] = {"serial": [], "process": [], "dask": []}
        try:
            for pair in range(args.pairs):
                runs["serial"].append(timed_run(fw, scratch / f"serial{pair}", args.replicates, args.iterations))
                pool = fw.ParallelExecution(max_workers=2, executor_type="process")
                runs["process"].append(
                    timed_run(fw, scratch / f"process{pair}", args.replicates, args.iterations, pool)
                )
                if dask is not None:
                    from crystallize_dask import DaskExecution

                    execution = DaskExecution(client=dask[1])
                    runs["dask"].append(
                        timed_run(fw, scratch / f"dask{pair}", args.replicates, args.iterations, execution)
                    )
        finally:
            if dask is not None:
                dask[1].close()
                dask[0].close()
        serial = runs["serial"]
        values["serial_s"] = median(serial)
        values["process_s"] = median(runs["process"])
        # each parallel run against the mean of the serial runs on either side of it
        around = [(serial[i] + serial[min(i + 1, len(serial) - 1)]) / 2 for i in range(len(serial))]
        values["process_speedup"] = median([a / p for a, p in zip(around, runs["process"])])
        if runs["dask"]:
            values["dask_s"] = median(runs["dask"])
            values["dask_speedup"] = median([a / d for a, d in zip(around, runs["dask"])])
        info["pairs"] = args.pairs
    _common.emit("parallel", fw.name, values, info)


if __name__ == "__main__":
    main()
