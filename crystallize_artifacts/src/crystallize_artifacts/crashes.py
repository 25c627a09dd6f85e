"""Runs whose process died: found by the next one to open them, and recorded as crashed.

A run holds its folder's ``.lock`` with ``flock`` and writes a token (process,
host, run id) into it; releasing the lock truncates the token. A process
killed with ``SIGKILL`` (or a machine losing power) releases the ``flock`` —
the kernel does that — but cannot truncate the token. So a lock file that is
*free* yet still names a holder is the signature of a run that died, and its
``metadata.json`` still says ``"status": "running"``.

Whoever opens such a run next — a resume, or a reader through
``locate_run`` — takes the lock (so no run can start on the folder
meanwhile), changes that status to ``"crashed"`` with a ``crashed`` record
(when it was found, and which process died), and withdraws the token. The
rest of the folder is left as it is: its markers and journal already say
exactly what finished.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from crystallize_artifacts import layout, runlock, safepaths
from crystallize_artifacts.commit import write_atomic_at

__all__ = ["record_crash", "settle"]

#: the status a crashed run gets in ``metadata.json``
CRASHED = "crashed"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def record_crash(handle: safepaths.Handle, where: str, dead_holder: bytes, *, durable: bool = False) -> str:
    """Record, under the lock, that the run in ``handle`` died; returns who held it.

    Only a ``metadata.json`` that still says ``running`` is changed (a run
    that died before writing one, or whose status was already corrected, is
    left alone).
    """
    holder = runlock.holder(dead_holder)
    try:
        raw = safepaths.read_regular(handle, layout.METADATA, where=f"{where}/{layout.METADATA}")
        document: Any = None if raw is None else json.loads(raw)
    except (OSError, ValueError):
        return holder  # unreadable: resume and readers report it themselves
    if isinstance(document, dict) and document.get("status") == "running":
        document["status"] = CRASHED
        document["crashed"] = {"detected_at": _now(), "holder": holder}
        data = json.dumps(document, separators=(",", ":")).encode()
        write_atomic_at(handle, layout.METADATA, data, durable=durable)
    return holder


def _token_left(folder: Path) -> bool:
    """Cheap check: does the lock file still name a holder?"""
    try:
        handle = safepaths.open_folder(folder)
    except (OSError, ValueError):
        return False
    try:
        raw = safepaths.read_regular(handle, layout.LOCK, where=f"{folder}/{layout.LOCK}", limit=4096)
    except (OSError, ValueError):
        return False
    finally:
        safepaths.close(handle)
    return bool(raw and raw.strip())


def settle(folder: Path) -> str | None:
    """If the run in ``folder`` died holding its lock, record it as crashed; returns who held it.

    For readers: takes the lock for the moment of the correction and gives it
    back. ``None`` when the run ended normally, is live, or another process
    took the lock meanwhile.
    """
    if not _token_left(folder) or runlock.lock_held(folder):
        return None
    previous: list[bytes] = []
    token = runlock.make_token(f"settle-{secrets.token_hex(8)}")
    try:
        fd, handle = runlock.acquire(folder, token, previous)
    except (runlock.RunLockedError, OSError, ValueError):
        return None  # a live run took it: it is not ours to correct
    try:
        if not previous or not previous[0].strip():
            return None  # released in between
        return record_crash(handle, str(folder), previous[0])
    finally:
        runlock.release(fd)
        safepaths.close(handle)
