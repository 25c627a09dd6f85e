"""crystallize-dask: run an experiment's replicates on a Dask cluster.

Pass :class:`DaskExecution` in ``Experiment(plugins=[...])``::

    from crystallize_dask import DaskExecution

    exp = Experiment(..., plugins=[DaskExecution(n_workers=4)])  # a private LocalCluster for the run
    exp = Experiment(..., plugins=[DaskExecution("tls://10.0.0.5:8786", security=security)])  # a scheduler
    exp = Experiment(..., plugins=[DaskExecution(client=client)])  # your own Client

The LocalCluster it starts accepts only connections that present the
temporary TLS credentials made for it; a cluster you name is yours to
secure (see the README's "Security").

Installing the distribution alone changes no experiment: it adds only the
``crystallize dask-check`` command.
"""

from crystallize_dask.execution import DaskExecution

__version__ = "0.1.0"

__all__ = ["DaskExecution", "__version__"]
