"""The ``LocalCluster`` that :class:`~crystallize_dask.DaskExecution` starts, private by default.

A Dask scheduler runs whatever its clients submit, and a worker whatever
its peers send it, as the user who started them. A cluster listening on
127.0.0.1 without authentication therefore lets every local user run code
as the experiment's owner. The cluster started here accepts nobody but
itself:

- worker processes talk over ``tls://`` with credentials made for this
  cluster only (``distributed.security.Security.temporary()``: a key and a
  self-signed certificate, held in memory, handed to the worker processes
  through their start-up pipes). Every side requires its peer to present
  them, so a client, worker or raw connection without them is refused
  during the TLS handshake;
- in-process workers (``processes=False``) talk over ``inproc://``, which
  nothing outside the process can reach;
- no dashboard, and the HTTP servers Dask starts anyway (on a random
  port) serve no pages: without a dashboard they would still publish the
  cluster's workers, tasks, logs and metrics to anyone on the machine.

``cluster_options`` that choose ``security``, ``protocol``,
``dashboard_address`` or ``worker_dashboard_address`` take over the
corresponding part.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import LocalCluster

__all__ = ["LOCAL_CLUSTER_DEFAULTS", "private_cluster_options", "start_local_cluster"]

log = logging.getLogger("crystallize.dask")

#: ``LocalCluster`` settings used unless ``cluster_options`` overrides them.
#: One thread per worker process: replicates seeded through the global
#: ``random``/NumPy state must not share a process with another replicate.
#: No dashboard: it would publish the cluster to every local user.
LOCAL_CLUSTER_DEFAULTS: Mapping[str, Any] = {"processes": True, "threads_per_worker": 1, "dashboard_address": None}


def private_cluster_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``LocalCluster`` keyword arguments that keep the cluster to this process.

    Adds what ``options`` does not choose itself: temporary TLS credentials
    for worker processes (``inproc://`` for in-process workers); without a
    dashboard, a scheduler HTTP server on a random port of the scheduler's
    host instead of 8787, and, for worker processes, a worker configuration
    without HTTP routes.
    """
    options = dict(options)
    processes = options.get("processes", True)
    if "security" not in options and "protocol" not in options:
        if processes:
            options["security"] = _temporary_security()
        else:
            options["protocol"] = "inproc://"
    if options.get("dashboard_address") is None:
        scheduler_kwargs = dict(options.get("scheduler_kwargs") or {})
        scheduler_kwargs.setdefault("dashboard_address", "127.0.0.1:0")
        options["scheduler_kwargs"] = scheduler_kwargs
    if processes and options.get("worker_dashboard_address") is None and "worker_class" not in options:
        # Read by each Nanny's worker process when it starts, restarts included.
        options["config"] = {"distributed.worker.http.routes": [], **(options.get("config") or {})}
    return options


def start_local_cluster(options: Mapping[str, Any]) -> LocalCluster:
    """Start a ``LocalCluster`` with :func:`private_cluster_options` applied to ``options``."""
    import dask
    from distributed import LocalCluster

    options = private_cluster_options(options)
    log.info(
        "starting a Dask LocalCluster (%s)",
        ", ".join(f"{k}={'<temporary credentials>' if k == 'security' else repr(v)}" for k, v in options.items()),
    )
    routes: dict[str, Any] = {}
    if options.get("dashboard_address") is None:
        routes["distributed.scheduler.http.routes"] = []
    if options.get("worker_dashboard_address") is None:
        routes["distributed.worker.http.routes"] = []  # in-process workers
    # The scheduler and in-process workers read their routes once, when they are created.
    with dask.config.set(routes):
        return LocalCluster(**options)


def _temporary_security() -> Any:
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError as exc:
        raise ImportError(
            "DaskExecution: the LocalCluster it starts uses TLS with temporary credentials, which needs the "
            "'cryptography' package: pip install cryptography (a dependency of crystallize-dask)"
        ) from exc
