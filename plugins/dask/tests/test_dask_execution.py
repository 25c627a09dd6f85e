"""DaskExecution against real Dask clusters: a LocalCluster and a CLI-started one.

Nothing here mocks Dask. The cluster tests start real worker processes, so
they are marked ``slow``; the whole file takes about 20 seconds on two
cores.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import operator
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import distributed  # noqa: F401 - import before dask.config.set(): its defaults must be loaded outside the context
import pytest
from dask_helpers import Reference, artifacts_match, ex
from distributed import Client
from distributed.security import Security

from crystallize import ConfigurationError, Experiment
from crystallize.plugin import EXECUTION_FACT, RESUME_FACT, WorkerStartError, active_plugins
from crystallize_dask import DaskExecution
from crystallize_dask.task import isolate_dask_random

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent

# -- fixtures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CliCluster:
    """A scheduler and two workers started with the ``dask`` command (``python -m dask``)."""

    address: str
    scheduler_file: Path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, and its children (it leads its own session)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    try:  # the group may outlive its leader (a nanny's worker process)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_for_address(path: Path, scheduler: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if scheduler.poll() is not None:
            pytest.fail(f"dask scheduler exited with {scheduler.returncode}:\n{log.read_text(errors='replace')}")
        try:
            return json.loads(path.read_text())["address"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            time.sleep(0.1)
    pytest.fail(f"dask scheduler wrote no scheduler file:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliCluster]:
    folder = tmp_path_factory.mktemp("dask-cluster")
    scheduler_file = folder / "s.json"
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed in the finally below
        logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dask", *args],  # the venv's `dask` command
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
            start_new_session=True,  # so that _stop reaches the nanny's worker process too
        )
        processes.append(proc)
        return proc

    try:
        scheduler = start(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(scheduler_file),
        )  # fmt: skip
        address = _wait_for_address(scheduler_file, scheduler, folder / "scheduler.log")
        for index in range(2):
            start(
                f"worker{index}", "worker", "--scheduler-file", str(scheduler_file), "--nworkers", "1",
                "--nthreads", "1", "--no-dashboard", "--local-directory", str(folder / f"worker{index}"),
            )  # fmt: skip
        with Client(address, set_as_default=False, timeout=30) as client:
            client.wait_for_workers(2, timeout=90)
        yield CliCluster(address, scheduler_file)
    finally:
        for proc in reversed(processes):
            _stop(proc)
        for log in logs:
            log.close()


def local_engine() -> DaskExecution:
    """A LocalCluster of two workers (private, without a dashboard: see test_dask_private_cluster.py)."""
    return DaskExecution(n_workers=2)


# -- configuration (fast) ---------------------------------------------------------------------


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="not both"):
        DaskExecution(address="tcp://127.0.0.1:8786", client=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_workers"):
        DaskExecution(n_workers=0)
    with pytest.raises(ValueError, match="LocalCluster"):
        DaskExecution(address="tcp://127.0.0.1:8786", n_workers=2)
    with pytest.raises(TypeError, match="distributed.Client"):
        DaskExecution(client="tcp://127.0.0.1:8786")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="security= goes with address="):
        DaskExecution(security=Security())
    with pytest.raises(TypeError, match=r"distributed\.security\.Security"):
        DaskExecution("tls://127.0.0.1:8786", security={"tls_ca_file": "ca.pem"})  # type: ignore[arg-type]


def test_nothing_starts_before_a_run_and_the_plugin_pickles() -> None:
    engine = local_engine()
    copy = pickle.loads(pickle.dumps(engine))
    assert (copy.address, copy.client, copy.n_workers) == (None, None, 2)
    assert copy.cluster_options == {}
    assert repr(copy) == "DaskExecution(n_workers=2)"
    secured = pickle.loads(pickle.dumps(DaskExecution("tls://10.0.0.5:8786", security=Security.temporary())))
    assert "BEGIN CERTIFICATE" in secured.security.tls_ca_file


def test_dask_threads_cannot_draw_from_the_replicates_generator() -> None:
    import dask.sizeof

    isolate_dask_random()
    assert dask.sizeof.random is not random
    assert dask.sizeof.random.Random is random.Random  # the stand-in is still a complete module
    random.seed(7)
    expected = [random.random() for _ in range(3)]
    random.seed(7)
    drawn = [random.random()]
    dask.sizeof.sizeof(list(range(1000)))  # samples 10 items with random.sample
    drawn += [random.random() for _ in range(2)]
    assert drawn == expected


# -- installation -----------------------------------------------------------------------------


def test_installing_adds_the_dask_check_command_and_no_plugin(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_")}
    listing = subprocess.run(
        [str(BIN / "crystallize"), "plugins", "--json"], capture_output=True, text=True, env=env, check=True
    )
    assert not [row for row in json.loads(listing.stdout) if row["distribution"] == "crystallize-dask"]
    usage = subprocess.run([str(BIN / "crystallize"), "--help"], capture_output=True, text=True, env=env, check=True)
    assert "dask-check" in usage.stdout and not usage.stderr

    # In this process too: an experiment that does not ask for Dask runs serially...
    plain = ex.build(tmp_path / "plain")
    assert not [info for info in active_plugins(plain) if isinstance(info.plugin, DaskExecution)]
    result = plain.run()
    assert result.ok and EXECUTION_FACT not in result.run.facts
    # ...and one that passes DaskExecution gets exactly that engine.
    engine = DaskExecution(n_workers=1)
    asking = ex.build(tmp_path / "asking", engine)
    assert [i.plugin for i in active_plugins(asking)].count(engine) == 1


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_readme_example_runs_and_leaves_nothing_behind(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (HERE.parent / "README.md").read_text(), flags=re.S)
    for block in blocks:
        compile(block, "README.md", "exec")
    (example,) = [block for block in blocks if "__main__" in block]
    (tmp_path / "example.py").write_text(example)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_")}
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=200
    )
    assert done.returncode == 0, done.stderr
    means, facts, count = done.stdout.splitlines()
    assert len(ast.literal_eval(means)) == 8
    assert ast.literal_eval(facts)["scheduler"].startswith("tls://127.0.0.1:")
    assert count == "16 artifacts"
    assert [p.name for p in tmp_path.iterdir()] == ["example.py"]  # the artifacts went to a temporary folder


# -- equal results under every execution ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_local_cluster_reproduces_the_serial_run(
    reference: Reference, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = ex.build(tmp_path, local_engine()).run()
    assert "unauthenticated" not in caplog.text
    assert result.ok, result.errors
    assert result.metrics == reference.metrics
    # paired seeds: crystallize-ml's seed + 31337 * replicate, the same in both conditions
    seeds = [(ex.SEED + r * 31337) % 2**32 for r in range(ex.REPLICATES)]
    assert result.metrics.baseline.seeds == result.metrics.treatments["scaled"].seeds == seeds
    artifacts_match(tmp_path, reference)
    facts = result.run.facts[EXECUTION_FACT]
    assert facts["engine"] == "dask" and facts["workers"] == 2
    assert facts["scheduler"].startswith("tls://127.0.0.1:")  # private: see test_dask_private_cluster.py
    metadata = json.loads((tmp_path / "dask-equivalence" / "v0" / "metadata.json").read_text())
    assert metadata["facts"]["execution"] == facts


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cli_cluster_reproduces_the_serial_run(
    reference: Reference, cli_cluster: CliCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = ex.build(tmp_path, DaskExecution(address=cli_cluster.address)).run()
    # a tcp:// scheduler is the user's to secure; the run says so
    assert f"the Dask scheduler at {cli_cluster.address} accepts unauthenticated connections" in caplog.text
    assert result.ok, result.errors
    assert result.metrics == reference.metrics
    artifacts_match(tmp_path, reference)
    assert result.run.facts[EXECUTION_FACT] == {"engine": "dask", "scheduler": cli_cluster.address, "workers": 2}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_busy_workers_do_not_disturb_seeded_draws(cli_cluster: CliCluster) -> None:
    # Dask's own threads draw from the global generator while tasks run; the
    # task shim gives them a private one (see crystallize_dask.task).
    serial = ex.build_busy().run()
    clustered = ex.build_busy(DaskExecution(address=cli_cluster.address)).run()
    assert clustered.ok, clustered.errors
    assert clustered.metrics == serial.metrics


# -- clients, pickling errors ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_existing_client_is_used_and_left_open(
    reference: Reference, cli_cluster: CliCluster, tmp_path: Path
) -> None:
    with Client(cli_cluster.address, set_as_default=False) as client:
        engine = DaskExecution(client=client)
        result = ex.build(tmp_path, engine).run()
        assert result.ok, result.errors
        assert result.metrics == reference.metrics
        assert result.run.facts[EXECUTION_FACT] == {"engine": "dask", "scheduler": cli_cluster.address, "workers": 2}
        assert client.status == "running"
        assert client.submit(operator.add, 1, 2).result() == 3
        # a pickled copy refers to the scheduler by address, never carries the live client
        copy = pickle.loads(pickle.dumps(engine))
        assert copy.client is None and copy.address == cli_cluster.address


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_unpicklable_step_is_named_before_any_task_is_submitted(cli_cluster: CliCluster, tmp_path: Path) -> None:
    def idle(dask_scheduler: Any) -> bool:
        return not dask_scheduler.tasks

    def transitions(dask_scheduler: Any) -> int:
        return dask_scheduler.transition_counter

    with Client(cli_cluster.address, set_as_default=False) as client:
        deadline = time.monotonic() + 30
        while not client.run_on_scheduler(idle):  # earlier tests' keys are being forgotten
            assert time.monotonic() < deadline, "the scheduler never became idle"
            time.sleep(0.1)
        before = client.run_on_scheduler(transitions)
        experiment = ex.build(tmp_path, DaskExecution(client=client), unpicklable=True)
        with pytest.raises(ConfigurationError, match=r"step 1 \('HoldsLock'\)"):
            experiment.run()
        assert client.run_on_scheduler(transitions) == before  # nothing was scattered or submitted
        assert client.status == "running"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_workers_that_cannot_import_a_module_stop_the_run_naming_it(
    cli_cluster: CliCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A step from a module the workers cannot import: unpickling the payload
    # fails on every worker, before any replicate code runs. Every replicate
    # would fail the same way, so the run stops, saying what and how to fix it.
    (tmp_path / "steps_only_here.py").write_text(
        "from crystallize import pipeline_step\n\n\n@pipeline_step()\ndef only_here(data, ctx):\n    return data\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        steps = importlib.import_module("steps_only_here")
        experiment = Experiment(
            ex.draws(), [steps.only_here()], plugins=[DaskExecution(address=cli_cluster.address)], replicates=2
        )
        with pytest.raises(WorkerStartError) as caught:
            experiment.run()
    finally:
        sys.modules.pop("steps_only_here", None)
    message = str(caught.value)
    assert "could not load the run" in message and "WorkerLost" not in message
    assert "ModuleNotFoundError" in message and "steps_only_here" in message
    assert "register_pickle_by_value" in message
    assert any("Traceback" in note for note in caught.value.__notes__)  # the worker's own


# -- worker death ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_killed_worker_is_reported_and_resume_completes(reference: Reference, tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    root = tmp_path / "store"
    # allowed-failures=0: Dask gives up on a task the first time its worker dies.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        result = ex.build(root, local_engine(), name="dask-killed", kill_marker=marker).run()
    assert marker.exists(), "the worker was never killed"
    assert result.run.status == "failed"
    assert 1 in result.errors["baseline"]
    lost = result.error_list()
    # every task the dead worker held (running or queued there) is lost, nothing else fails
    assert all(e.type_name == "WorkerLost" and "Dask worker running it died" in e.message for e in lost)
    assert all("strategy='resume'" in e.message for e in lost)
    finished = 2 * ex.REPLICATES - len(lost)

    resumed = ex.build(root, local_engine(), name="dask-killed", kill_marker=marker).run(strategy="resume")
    assert resumed.ok, resumed.errors
    assert resumed.run.facts[RESUME_FACT]["finished_replicates"] == finished
    assert resumed.metrics == reference.metrics
    artifacts_match(root, reference, name="dask-killed")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_killed_worker_is_retried_by_dask(reference: Reference, cli_cluster: CliCluster, tmp_path: Path) -> None:
    # Default allowed-failures (3): the scheduler reruns the replicate elsewhere
    # and the run succeeds; the CLI worker's nanny starts a new worker process.
    marker = tmp_path / "killed"
    result = ex.build(tmp_path, DaskExecution(address=cli_cluster.address), kill_marker=marker).run()
    assert marker.exists(), "the worker was never killed"
    assert result.ok, result.errors
    assert result.metrics == reference.metrics
    artifacts_match(tmp_path, reference)
    with Client(cli_cluster.address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)  # leave the cluster as we found it


# -- the dask-check command ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_dask_check_command(cli_cluster: CliCluster) -> None:
    check = subprocess.run(
        [str(BIN / "crystallize"), "dask-check", "--scheduler-file", str(cli_cluster.scheduler_file), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert report["scheduler"] == cli_cluster.address
    assert len(report["workers"]) == 2
    assert report["problems"] == {worker: [] for worker in report["workers"]}
    assert report["local"]["packages"]["crystallize-core"] is not None


@pytest.mark.timeout(60)
def test_dask_check_reports_an_unreachable_scheduler() -> None:
    check = subprocess.run(
        [str(BIN / "crystallize"), "dask-check", "--address", "tcp://127.0.0.1:9", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 2, check.stdout + check.stderr
    assert "cannot reach the scheduler (tcp://127.0.0.1:9)" in check.stderr
