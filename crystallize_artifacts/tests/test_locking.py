"""Run locks: held, released on death, and refused loudly where no lock exists.

POSIX systems lock with ``flock`` directly; other platforms through
portalocker. Both paths are tested here (portalocker's by hiding ``fcntl``
from the locking module, so that it takes the path Windows takes).
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import textwrap
import types

import portalocker
import pytest

from crystallize_artifacts import LocalRunStore, RunLockedError, locking
from crystallize_artifacts.locking import LocksUnavailableError, try_exclusive, try_shared, unlock


@pytest.fixture(params=["flock", "portalocker"])
def backend(request, monkeypatch):
    """Which lock implementation the store uses: POSIX ``flock``, or portalocker (as where there is none)."""
    if request.param == "portalocker":
        monkeypatch.setattr(locking, "_fcntl", None)
    return request.param


def test_exclusive_and_shared_locks_exclude_each_other(tmp_path, backend):
    path = tmp_path / "lock"
    path.touch()
    owner, probe = os.open(path, os.O_RDWR), os.open(path, os.O_RDONLY)
    try:
        assert try_exclusive(owner, str(path))
        assert not try_shared(probe, str(path)) and not try_exclusive(probe, str(path))
        unlock(owner)
        assert try_shared(probe, str(path))
        assert not try_exclusive(owner, str(path))  # a reader's shared lock keeps writers out
    finally:
        os.close(owner)
        os.close(probe)


def test_a_file_system_without_locks_is_refused_naming_the_folder(tmp_path, monkeypatch, backend):
    def refuse(fd, flags):
        raise OSError(errno.ENOLCK, "No locks available")

    def no_locks(fd, flags):
        raise portalocker.exceptions.LockException(OSError(errno.ENOLCK, "No locks available"))

    if backend == "flock":
        fake = types.SimpleNamespace(**{k: getattr(fcntl, k) for k in ("LOCK_SH", "LOCK_EX", "LOCK_NB", "LOCK_UN")})
        fake.flock = refuse
        monkeypatch.setattr(locking, "_fcntl", fake)
    else:
        monkeypatch.setattr(portalocker, "lock", no_locks)
    with pytest.raises(LocksUnavailableError, match=r"cannot lock the run folder.*No locks available"):
        LocalRunStore.open_for_run(tmp_path / "e", versioned=True, resume=False, durable=False)


def test_a_lock_dies_with_its_process(tmp_path):
    holder = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from crystallize_artifacts import LocalRunStore
        store = LocalRunStore.open_for_run(Path({str(tmp_path / "e")!r}), versioned=False, resume=False, durable=False)
        print("HELD", flush=True)
        sys.stdin.readline()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "HELD"
    with pytest.raises(RunLockedError, match=f"process {child.pid}"):
        LocalRunStore.open_for_run(tmp_path / "e", versioned=False, resume=True, durable=False)
    child.kill()
    child.wait(timeout=30)
    store = LocalRunStore.open_for_run(tmp_path / "e", versioned=False, resume=True, durable=False)
    assert store.resumed
    store.close("completed")
