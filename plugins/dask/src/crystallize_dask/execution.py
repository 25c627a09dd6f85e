"""Replicates on a Dask cluster: :class:`DaskExecution`.

The engine ships the run's payload (see :func:`crystallize.plugin.run_unit`)
to the cluster once, submits one task per (condition, replicate) and reports
each outcome as its task finishes. ``distributed`` is imported only when a
run actually starts, so importing this module costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from crystallize.plugin import EXECUTION_FACT, hookimpl
from crystallize_dask.cluster import LOCAL_CLUSTER_DEFAULTS, start_local_cluster

if TYPE_CHECKING:
    from distributed import Client, Future
    from distributed.security import Security

    from crystallize.plugin import ReplicateBatch, ReplicateOutcome, Run, Unit

__all__ = ["DaskExecution"]

log = logging.getLogger("crystallize.dask")

#: Address schemes whose connections are neither encrypted nor authenticated.
UNAUTHENTICATED_SCHEMES = ("tcp://", "ws://", "ucx://")


class DaskExecution:
    """Run replicates as tasks on a Dask cluster.

    Choose where with at most one of ``address`` and ``client``:

    - ``DaskExecution(address="tcp://host:8786")`` connects a new
      ``distributed.Client`` to a running scheduler for each run and closes
      that client afterwards (the cluster keeps running);
    - ``DaskExecution(client=client)`` uses your client as it is and never
      closes it;
    - ``DaskExecution()`` / ``DaskExecution(n_workers=4)`` starts a
      ``LocalCluster`` of worker processes (one thread each) for the run and
      shuts it down afterwards.

    Nothing connects or starts until a run has replicates to execute.

    A LocalCluster started here is private: its scheduler, nannies and
    workers listen on 127.0.0.1 over TLS with credentials created for this
    run only, and accept only peers that present them (mutual
    authentication); it has no dashboard unless ``cluster_options`` asks for
    one. A scheduler you name with ``address=`` or reach with ``client=`` is
    yours to secure: whoever can submit work to it runs code as its workers'
    user.

    Every unit is one task running :func:`crystallize.plugin.run_unit`
    (through ``crystallize_dask.task.run_replicate``, which first stops
    Dask's own threads from drawing from the global :mod:`random` generator
    that seeded replicates use) on the payload, which is scattered to the
    workers once per run. Workers
    must be able to import crystallize-core, every plugin that runs inside
    replicates (e.g. crystallize-artifacts) and your experiment's modules, and
    must see the artifact root on their file system.

    A replicate whose worker dies is rescheduled by Dask on another worker,
    up to ``distributed.scheduler.allowed-failures`` times (scheduler
    configuration, 3 by default); after that, and when a task fails for any
    reason other than the replicate itself, the replicate is recorded as a
    ``WorkerLost`` error in ``result.errors`` and the run carries on;
    ``strategy="resume"`` reruns it.

    Records ``run.facts[EXECUTION_FACT] = {"engine": "dask", "scheduler":
    <address>, "workers": <count>}``.

    :param address: the scheduler's address.
    :param client: a connected, synchronous ``distributed.Client``.
    :param n_workers: LocalCluster only: the number of worker processes;
        Dask's default (one per core) when ``None``.
    :param cluster_options: LocalCluster only: further keyword arguments for
        ``distributed.LocalCluster`` (``memory_limit``, ``dashboard_address``,
        ``security``, ...); they override ``processes=True,
        threads_per_worker=1, dashboard_address=None`` and the temporary
        credentials.
    :param security: ``address=`` only: the ``distributed.security.Security``
        (TLS certificates) to connect with; Dask's configuration
        (``distributed.comm.tls.*``) when ``None``.
    """

    plugin_name = "dask"

    def __init__(
        self,
        address: str | None = None,
        client: Client | None = None,
        n_workers: int | None = None,
        *,
        cluster_options: Mapping[str, Any] | None = None,
        security: Security | None = None,
    ) -> None:
        if address is not None and client is not None:
            raise ValueError("DaskExecution: pass address= or client=, not both")
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise TypeError(f"DaskExecution: address must be a scheduler address string, got {address!r}")
        if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
            raise ValueError(f"DaskExecution: n_workers must be a positive int or None, got {n_workers!r}")
        if (n_workers is not None or cluster_options) and (address is not None or client is not None):
            raise ValueError(
                "DaskExecution: n_workers= and cluster_options= configure the LocalCluster started when neither "
                "address= nor client= is given; size an existing cluster where you start it"
            )
        if security is not None:
            if address is None:
                raise ValueError(
                    "DaskExecution: security= goes with address=; a client= connects with its own security, and "
                    "the LocalCluster started without either gets temporary credentials (choose others with "
                    "cluster_options={'security': ...})"
                )
            from distributed.security import Security

            if not isinstance(security, Security):
                raise TypeError(f"DaskExecution: security must be a distributed.security.Security, got {security!r}")
        if client is not None:
            from distributed import Client

            if not isinstance(client, Client):
                raise TypeError(f"DaskExecution: client must be a distributed.Client, got {client!r}")
            if client.asynchronous:
                raise ValueError("DaskExecution: client must be synchronous (created with asynchronous=False)")
        self.address = address
        self.client = client
        self.n_workers = n_workers
        self.cluster_options: dict[str, Any] = dict(cluster_options or {})
        self.security = security

    # -- pickling: a copy refers to the scheduler by address, never holds a live client

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        client = state.pop("client", None)
        if client is not None and state.get("address") is None:
            state["address"] = _scheduler_address(client)
        state["client"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- hooks ----------------------------------------------------------------

    @hookimpl
    def before_run(self, run: Run) -> None:
        """Record what is known of the cluster before it is used.

        With ``client=`` everything is known; with ``address=`` the worker
        count, and with a LocalCluster the address too, are filled in when
        the run connects (``None`` until then).
        """
        if self.client is not None:
            run.facts[EXECUTION_FACT] = _describe(self.client)
        else:
            run.facts[EXECUTION_FACT] = {"engine": "dask", "scheduler": self.address, "workers": self.n_workers}

    @hookimpl
    def execute_replicates(self, run: Run, batch: ReplicateBatch) -> bool:
        """Run every unit of ``batch`` as a Dask task and report outcomes as they finish."""
        if not batch.units:
            return True
        # Pickle first: an unpicklable step fails here, naming itself, before
        # any cluster starts or any task is submitted.
        payload, token = batch.payload(), batch.token
        with self._connect() as client:
            facts = _describe(client)
            run.facts[EXECUTION_FACT] = facts
            _warn_about(client, facts)
            _run_batch(client, batch, payload, token)
        return True

    # -- connection -------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[Client]:
        """The client for one run; closes only what it created."""
        if self.client is not None:
            yield self.client
            return
        from distributed import Client

        if self.address is not None:
            try:
                client = Client(self.address, security=self.security, set_as_default=False)
            except (OSError, TypeError) as exc:  # TypeError: a tls:// address without credentials
                hint = ""
                if self.address.startswith("tls://") and self.security is None:
                    hint = "; a tls:// scheduler needs credentials: pass security=distributed.security.Security(...)"
                raise OSError(
                    f"DaskExecution: cannot reach the Dask scheduler at {self.address!r}: {exc}{hint}"
                ) from exc
            try:
                yield client
            finally:
                client.close()
            return

        options = {**LOCAL_CLUSTER_DEFAULTS, **self.cluster_options}
        if self.n_workers is not None:
            options["n_workers"] = self.n_workers
        cluster = start_local_cluster(options)
        try:
            client = Client(cluster, set_as_default=False)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()

    def __repr__(self) -> str:
        if self.client is not None:
            where = f"client={self.client!r}"
        elif self.address is not None:
            where = f"address={self.address!r}"
        else:
            where = f"n_workers={self.n_workers!r}"
        return f"DaskExecution({where})"


# -- helpers --------------------------------------------------------------------


def _scheduler_address(client: Client) -> str | None:
    return getattr(getattr(client, "scheduler", None), "address", None)


def _describe(client: Client) -> dict[str, Any]:
    """``run.facts[EXECUTION_FACT]`` for a connected client."""
    return {"engine": "dask", "scheduler": _scheduler_address(client), "workers": len(client.nthreads())}


def _warn_about(client: Client, facts: Mapping[str, Any]) -> None:
    """Log what would make this cluster hang, lose reproducibility or run anyone's code."""
    scheduler = facts["scheduler"] or ""
    if scheduler.startswith(UNAUTHENTICATED_SCHEMES):
        log.warning(
            "the Dask scheduler at %s accepts unauthenticated connections: anyone who can reach it can run code "
            "as its workers' user. Start it with TLS credentials (distributed.security.Security) and pass "
            "security= to DaskExecution",
            scheduler,
        )
    if not facts["workers"]:
        log.warning(
            "the Dask scheduler at %s has no workers yet; replicates wait until one connects", facts["scheduler"]
        )
        return
    threads = max(client.nthreads().values(), default=1)
    if threads > 1:
        log.warning(
            "Dask workers at %s run up to %d threads each: replicates sharing a process also share the global "
            "random/NumPy generators that SeedPlugin seeds, so their draws can interleave. Start workers with "
            "--nthreads 1 unless every replicate uses a generator of its own",
            facts["scheduler"],
            threads,
        )


def _run_batch(client: Client, batch: ReplicateBatch, payload: bytes, token: str) -> None:
    """Scatter the payload, submit one task per unit, report outcomes in completion order."""
    import cloudpickle
    from distributed import as_completed

    from crystallize_dask import task

    # Ship the task function by value: workers need crystallize-core, not crystallize-dask.
    cloudpickle.register_pickle_by_value(task)
    shipped = client.scatter(payload, broadcast=True, hash=False)
    units = list(batch.units)
    keys = [f"crystallize-replicate-{condition}-{replicate}-{token}" for condition, replicate in units]
    outstanding: dict[Future, Unit] = {}
    try:
        futures = client.map(
            task.run_replicate,
            [shipped] * len(units),
            [token] * len(units),
            [condition for condition, _ in units],
            [replicate for _, replicate in units],
            key=keys,
            pure=False,
        )
        outstanding = dict(zip(futures, units))
        del futures
        # loop=: the client is not the default one (set_as_default=False), as_completed must be told.
        for future in as_completed(list(outstanding), loop=client.loop):
            unit = outstanding.pop(future)
            outcome = _outcome(future, unit)
            future.release()
            batch.report(outcome)
    except BaseException:
        # Ctrl-C, or a main-process hook raised: drop the rest of the work.
        if outstanding:
            log.info("cancelling %d outstanding Dask task(s)", len(outstanding))
        try:
            client.cancel([*outstanding, shipped])
        except Exception as exc:  # noqa: BLE001 - keep the original error
            log.warning("could not cancel outstanding Dask tasks: %s", exc)
        raise
    finally:
        shipped.release()


def _outcome(future: Future, unit: Unit) -> ReplicateOutcome:
    """The unit's outcome; a task that did not return one becomes a ``WorkerLost`` error.

    :func:`~crystallize.plugin.run_unit` never raises on the worker, so a
    failed task means Dask itself could not run it. :func:`decode_outcome`
    turns whatever the replicate's values do into a readable error, and
    raises :class:`~crystallize.plugin.WorkerStartError` when the worker
    could not load the run: that stops the run.
    """
    from distributed import KilledWorker

    from crystallize.plugin import decode_outcome, lost_unit_outcome

    condition, replicate = unit
    try:
        blob = future.result()
    except KilledWorker as exc:
        return lost_unit_outcome(condition, replicate, f"the Dask worker running it died ({_text(exc)})")
    except CancelledError as exc:
        return lost_unit_outcome(condition, replicate, f"its Dask task was cancelled ({_text(exc)})")
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the task failed on the worker, outside the replicate
        return _failed_task(condition, replicate, exc)
    return decode_outcome(blob)


def _text(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in when that raises (the core's capture reads any exception)."""
    from crystallize.plugin import ReplicateError

    return ReplicateError.capture(exc, "", 0, None).message


def _failed_task(condition: str, replicate: int, exc: BaseException) -> ReplicateOutcome:
    from crystallize.plugin import ReplicateError, lost_unit_outcome

    captured = ReplicateError.capture(exc, condition, replicate, None)
    reason = f"its Dask task failed on the worker: {captured.type_name}: {captured.message}"
    if isinstance(exc, ImportError):
        reason += (
            " (the workers cannot import something the experiment uses: install the same packages on every "
            "worker, or ship a module's code with cloudpickle.register_pickle_by_value(module))"
        )
    return lost_unit_outcome(condition, replicate, reason, traceback=captured.traceback, exception=exc)
