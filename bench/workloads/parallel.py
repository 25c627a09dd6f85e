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


def dask_run(fw, root, replicates: int, iterations: int, values: dict, info: dict) -> None:
    try:
        from crystallize_dask import DaskExecution
    except ImportError as exc:
        info["dask"] = f"not measured: crystallize_dask is not importable ({exc})"
        return
    from distributed import Client, LocalCluster

    start = now()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    client.wait_for_workers(2)
    values["dask_cluster_start_s"] = now() - start
    try:
        try:
            execution = DaskExecution(client=client)
            info["dask"] = "DaskExecution(client=...) on a LocalCluster started before timing"
        except TypeError:
            execution = DaskExecution(n_workers=2)
            info["dask"] = "DaskExecution(n_workers=2): cluster start included in dask_s"
        values["dask_s"] = timed_run(fw, root, replicates, iterations, execution)
    finally:
        client.close()
        cluster.close()
    values["dask_speedup"] = values["serial_s"] / values["dask_s"]


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, default=8)
    p.add_argument("--iterations", type=int, required=True, help="burn() turns per replicate (from the driver)")
    p.add_argument("--no-dask", action="store_true")
    args = p.parse_args()
    fw = _common.framework(args.framework)
    values: dict[str, float] = {}
    info: dict[str, object] = {"replicates": args.replicates, "iterations": args.iterations}

    with _common.scratch_dir(args.tmp_dir, "parallel") as scratch:
        _common.warm_up(fw, scratch)
        start = now()
        burn(args.iterations)
        values["one_replicate_s"] = now() - start
        values["serial_s"] = timed_run(fw, scratch / "serial", args.replicates, args.iterations)
        pool = fw.ParallelExecution(max_workers=2, executor_type="process")
        values["process_s"] = timed_run(fw, scratch / "process", args.replicates, args.iterations, pool)
        values["process_speedup"] = values["serial_s"] / values["process_s"]
        if fw.name == "ours" and not args.no_dask:
            dask_run(fw, scratch / "dask", args.replicates, args.iterations, values, info)

    _common.emit("parallel", fw.name, values, info)


if __name__ == "__main__":
    main()
