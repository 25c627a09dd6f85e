"""The LocalCluster DaskExecution starts is private; a cluster you name is yours to secure.

A Dask scheduler runs what its clients submit, a worker what its peers
send it: an unauthenticated cluster on 127.0.0.1 lets every local user run
code as the experiment's owner. These tests attack the cluster of a real
run while it runs, and check that the run is not disturbed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import distributed  # noqa: F401 - import before dask.config.set(): its defaults must be loaded outside the context
import pytest
from dask_helpers import Reference, artifacts_match, ex
from distributed import Client, LocalCluster
from distributed.comm import connect
from distributed.security import Security

from crystallize.plugin import EXECUTION_FACT
from crystallize_dask import DaskExecution
from crystallize_dask.cluster import LOCAL_CLUSTER_DEFAULTS, private_cluster_options

# -- helpers ------------------------------------------------------------------------------------


def _wait_for(path: Path, running: Future[Any]) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if running.done():
            pytest.fail(f"the run ended before reaching the gate: {running.result()!r}")
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            time.sleep(0.05)
    pytest.fail("the run never reached the gate")


def _submit(address: str, canary: Path, security: Security | None = None) -> None:
    """Connect a Client and run code on the cluster: create ``canary``."""
    with Client(address, security=security, timeout=10, set_as_default=False) as client:
        client.submit(functools.partial(Path.touch, canary), pure=False).result(timeout=10)
        client.run(functools.partial(Path.touch, canary))


async def _speak(address: str, **connection_args: Any) -> Any:
    """Dask's wire protocol through distributed's own comm layer, without any credentials."""
    comm = await connect(address, timeout=10, **connection_args)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _certificate_free_tls() -> ssl.SSLContext:
    """TLS that trusts any server and presents no client certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _refused(attempt: Callable[[], Any]) -> bool:
    try:
        attempt()
    except OSError:  # CommClosedError, ssl.SSLError, TimeoutError, ... are OSErrors
        return True
    return False


def _http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _http_port(dask_worker: Any) -> int:
    return dask_worker.http_server.port


# -- options (fast) -----------------------------------------------------------------------------


def test_cluster_options_are_private_unless_they_choose_otherwise() -> None:
    options = private_cluster_options(LOCAL_CLUSTER_DEFAULTS)
    security = options["security"]
    assert isinstance(security, Security) and security.require_encryption
    # one certificate for every role, held in memory, never a file path
    assert security.tls_ca_file == security.tls_client_cert == security.tls_scheduler_cert == security.tls_worker_cert
    assert "BEGIN CERTIFICATE" in security.tls_ca_file and "BEGIN PRIVATE KEY" in security.tls_worker_key
    assert options["dashboard_address"] is None
    assert options["scheduler_kwargs"] == {"dashboard_address": "127.0.0.1:0"}  # its HTTP server: not 8787
    assert options["config"] == {"distributed.worker.http.routes": []}
    # every cluster gets credentials of its own
    assert private_cluster_options(LOCAL_CLUSTER_DEFAULTS)["security"].tls_worker_key != security.tls_worker_key

    threads = private_cluster_options({**LOCAL_CLUSTER_DEFAULTS, "processes": False})
    assert threads["protocol"] == "inproc://" and "security" not in threads and "config" not in threads

    mine = Security.temporary()
    chosen = private_cluster_options({**LOCAL_CLUSTER_DEFAULTS, "security": mine, "dashboard_address": ":0"})
    assert chosen["security"] is mine and "scheduler_kwargs" not in chosen
    assert "security" not in private_cluster_options({**LOCAL_CLUSTER_DEFAULTS, "protocol": "tcp://"})


# -- the cluster of a run ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_started_cluster_refuses_whoever_lacks_its_credentials_while_the_run_succeeds(
    reference: Reference, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    canary = tmp_path / "ran-code-on-the-cluster"
    experiment = ex.build(tmp_path / "store", DaskExecution(n_workers=2), gate=gate)
    refusals: dict[str, bool] = {}
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(experiment.run)
        try:
            addresses = _wait_for(gate / "addresses.json", running)  # the run is held at the gate now
            assert set(addresses) == {"scheduler", "worker", "nanny"}
            for role, address in addresses.items():
                assert address.startswith("tls://127.0.0.1:"), (role, address)
                plain = address.replace("tls://", "tcp://", 1)
                attempts: dict[str, Callable[[], Any]] = {
                    "a plain Client": lambda plain=plain: _submit(plain, canary),
                    "a Client with credentials of its own": lambda a=address: _submit(a, canary, Security.temporary()),
                    "Dask's protocol over TCP": lambda plain=plain: asyncio.run(_speak(plain)),
                    "Dask's protocol over TLS without a certificate": lambda a=address: asyncio.run(
                        _speak(a, ssl_context=_certificate_free_tls())
                    ),
                }
                for what, attempt in attempts.items():
                    refusals[f"{what} -> {role}"] = _refused(attempt)
        finally:
            (gate / "open").touch()
        result = running.result(timeout=180)
    assert [attack for attack, refused in refusals.items() if not refused] == []
    assert len(refusals) == 12
    assert not canary.exists()
    # ...and the run went on undisturbed
    assert result.ok, result.errors
    assert result.metrics == reference.metrics
    artifacts_match(tmp_path / "store", reference)
    assert result.run.facts[EXECUTION_FACT]["scheduler"] == addresses["scheduler"]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_started_cluster_serves_no_dashboard_unless_asked() -> None:
    with DaskExecution(n_workers=1)._connect() as client:
        scheduler = client.scheduler_info()["services"]["dashboard"]  # Dask's HTTP server runs anyway...
        workers = list(client.run(_http_port).values())
        for path in ("/health", "/json/identity.json", "/info/main/workers.html", "/metrics", "/status"):
            assert _http_status(scheduler, path) == 404, path  # ...but publishes nothing
        for port in workers:
            assert _http_status(port, "/health") == 404
            assert _http_status(port, "/metrics") == 404
    asked = DaskExecution(n_workers=1, cluster_options={"dashboard_address": "127.0.0.1:0"})
    with asked._connect() as client:
        dashboard = client.scheduler_info()["services"]["dashboard"]
        assert _http_status(dashboard, "/health") == 200
        assert _http_status(dashboard, "/json/identity.json") == 200


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_in_process_workers_are_reachable_from_this_process_only(reference: Reference, tmp_path: Path) -> None:
    engine = DaskExecution(n_workers=1, cluster_options={"processes": False})
    result = ex.build(tmp_path, engine).run()
    assert result.ok, result.errors
    assert result.run.facts[EXECUTION_FACT]["scheduler"].startswith("inproc://")
    assert result.metrics == reference.metrics
    artifacts_match(tmp_path, reference)


# -- a cluster you name ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_named_tls_scheduler_is_reached_with_the_security_given(reference: Reference, tmp_path: Path) -> None:
    security = Security.temporary()
    # a cluster of the user's, secured by the user
    options = {"security": security, "dashboard_address": None, "scheduler_kwargs": {"dashboard_address": ":0"}}
    with LocalCluster(n_workers=2, threads_per_worker=1, **options) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        result = ex.build(tmp_path / "ok", DaskExecution(address, security=security)).run()
        assert result.ok, result.errors
        assert result.metrics == reference.metrics
        artifacts_match(tmp_path / "ok", reference)
        assert result.run.facts[EXECUTION_FACT] == {"engine": "dask", "scheduler": address, "workers": 2}

        with pytest.raises(OSError, match=r"cannot reach the Dask scheduler .*pass security="):
            ex.build(tmp_path / "none", DaskExecution(address)).run()
        with pytest.raises(OSError, match="cannot reach the Dask scheduler"):
            ex.build(tmp_path / "other", DaskExecution(address, security=Security.temporary())).run()
