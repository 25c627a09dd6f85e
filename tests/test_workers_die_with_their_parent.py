"""Worker processes die with the process that started the run.

A run is started in a child process (orphan_child.py) whose replicates
sleep before writing their artifact; the child is killed (SIGKILL, or
SIGTERM) while they sleep. Every process the child had started must be gone
within a few seconds, and no artifact may appear afterwards: a worker that
outlived its parent would finish its replicate and commit into a run that
may meanwhile have been resumed by someone else.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

CHILD = Path(__file__).with_name("orphan_child.py")
NAP = 4.0  # orphan_child.NAP
DEATH_DEADLINE = 5.0  # seconds the workers may take to notice

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def start_child(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume"}
    env.pop("CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD", None)
    log = open(root / "child.log", "w")  # noqa: SIM115 - closed at the end of kill_mid_run
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(root), *args], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def wait_for_naps(root: Path, proc: subprocess.Popen[str], count: int) -> dict[str, float]:
    """Wait until ``count`` replicates are napping; returns their pid files and when each appeared."""
    folder = root / "pids"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run exited early ({proc.returncode}):\n{(root / 'child.log').read_text()}")
        files = {p.name: p.stat().st_mtime for p in folder.glob("[0-9]*")} if folder.is_dir() else {}
        if len(files) >= count:
            return files
        time.sleep(0.05)
    pytest.fail(f"the replicates never started:\n{(root / 'child.log').read_text()}")


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def survivors(processes: list[psutil.Process], within: float) -> list[psutil.Process]:
    deadline = time.monotonic() + within
    while True:
        left = [p for p in processes if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def written_artifacts(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "store").glob("**/replicate_*/**/*") if p.is_file())


def kill_mid_run(root: Path, sig: signal.Signals, *args: str) -> None:
    proc = start_child(root, *args)
    family: list[psutil.Process] = []
    try:
        naps = wait_for_naps(root, proc, 2)
        napping = {int(name.split("-")[0]) for name in naps}
        family = psutil.Process(proc.pid).children(recursive=True)
        assert napping <= {p.pid for p in family}, "the replicates run in processes the run started"
        os.kill(proc.pid, sig)
        proc.wait(30)
        assert proc.returncode == -sig
        left = survivors(family, DEATH_DEADLINE)
        assert not left, f"still running {DEATH_DEADLINE}s after the run was killed: {[p.cmdline() for p in left]}"
        # The naps would have ended by now: nothing may have been written since.
        time.sleep(max(0.0, max(naps.values()) + NAP + 1.0 - time.time()))
        assert written_artifacts(root) == []
        assert {p.name for p in (root / "pids").glob("[0-9]*")} == set(naps), "a worker started another replicate"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in family:  # never leave a stray worker behind, even when the test failed
            if alive(p):
                p.kill()
        proc.log.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "sig, start_method",
    [
        (signal.SIGKILL, "fork"),
        (signal.SIGTERM, "fork"),
        (signal.SIGKILL, "spawn"),
        (signal.SIGKILL, "forkserver"),
    ],
)
def test_process_pool_workers_die_with_the_run(tmp_path: Path, sig: signal.Signals, start_method: str) -> None:
    if start_method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {start_method} start method here")
    kill_mid_run(tmp_path, sig, "process", start_method)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_dask_local_cluster_workers_die_with_the_run(tmp_path: Path, sig: signal.Signals) -> None:
    pytest.importorskip("crystallize_dask")
    kill_mid_run(tmp_path, sig, "dask")


def test_the_parent_watchdog_kills_its_process_when_the_parent_dies(tmp_path: Path) -> None:
    # The watchdog is what stands in for prctl(PR_SET_PDEATHSIG) off Linux; run it here too.
    script = tmp_path / "watched.py"
    script.write_text(
        textwrap.dedent(
            """
            import multiprocessing, os, sys, time
            from crystallize._execution import worker

            def child(parent, done):
                worker.watch_parent(parent, interval=0.1)
                time.sleep(NAP)
                open(done, "w").close()

            if __name__ == "__main__":
                process = multiprocessing.get_context("fork").Process(target=child, args=(os.getpid(), sys.argv[1]))
                process.start()
                print(process.pid, flush=True)
                time.sleep(60)
            """
        ).replace("NAP", repr(NAP))
    )
    done = tmp_path / "done"
    parent = subprocess.Popen([sys.executable, str(script), str(done)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        watched = psutil.Process(int(parent.stdout.readline()))
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(30)
        assert not survivors([watched], DEATH_DEADLINE)
        time.sleep(NAP)
        assert not done.exists()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_a_worker_whose_parent_is_already_gone_exits_at_once() -> None:
    # The race prctl cannot cover: the parent died before the worker asked to die with it.
    code = "from crystallize._execution import worker; worker.die_with_parent({}); print('survived')"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    done = subprocess.run([sys.executable, "-c", code.format(gone.pid)], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL and "survived" not in done.stdout
    ours = subprocess.run([sys.executable, "-c", code.format(os.getpid())], capture_output=True, text=True, timeout=60)
    assert ours.returncode == 0 and "survived" in ours.stdout, ours.stderr
