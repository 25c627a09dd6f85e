"""Who owns a run on an object store: a lease object, ``v<N>/.lock``.

Object stores have no file locks that die with their process, so a run owns
its folder through a *lease*: the object ``v<N>/.lock`` holds the owner's
token (process id, host, run id), ``"state": "held"`` and an expiry time. The
owner renews it every :data:`RENEW_SECONDS` from a background thread and
writes ``"state": "released"`` when the run ends.

- **Claiming a new version** is creating ``v<N>/.lock`` with a conditional
  write that fails when the object exists (``If-None-Match: *`` on S3):
  exactly one of two runs racing for ``v<N>`` gets it.
- **Taking over** a run (resume, or ``versioned=False`` rerunning ``v0``) is
  allowed when its lease is released, expired, or held by a process on this
  host that no longer exists (so a run killed with SIGKILL can be resumed at
  once). The takeover is a conditional write on the lease's ETag
  (``If-Match``), so two runs taking over at once cannot both win.
- **Renewal** is conditional on the ETag the owner last wrote: when another
  run took the lease over (the owner was stopped for longer than
  :data:`LEASE_SECONDS`), renewal fails and the owner's later writes are
  refused.
- **Workers** holding a copy of the store read the lease before committing
  (at most every :data:`CHECK_SECONDS`) and refuse to write once it is no
  longer their run's.

Where the store offers no conditional writes (see
:func:`ObjectExperimentFolder.conditional <crystallize_artifacts.objects.ObjectExperimentFolder>`),
claims and takeovers are checked by reading the lease back after writing it:
a race inside that window can let two runs believe they own one version.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from crystallize_artifacts.runlock import RunEndedError, RunLockedError

__all__ = [
    "LEASE_SECONDS",
    "RENEW_SECONDS",
    "CHECK_SECONDS",
    "Lease",
    "parse",
    "encode",
    "live_owner",
    "RunLockedError",
    "RunEndedError",
]

#: how long a lease lasts without renewal.
LEASE_SECONDS = 60.0
#: how often the owner renews it.
RENEW_SECONDS = 15.0
#: how long a worker trusts its last check of the lease.
CHECK_SECONDS = 2.0


class Lease:
    """A lease as read from the store: its document and its ETag (``None`` if absent)."""

    __slots__ = ("doc", "etag")

    def __init__(self, doc: dict[str, Any] | None, etag: str | None) -> None:
        self.doc = doc
        self.etag = etag

    @property
    def run(self) -> str | None:
        return None if self.doc is None else self.doc.get("run")


def encode(token: bytes, state: str = "held", seconds: float = LEASE_SECONDS) -> bytes:
    """The lease document for the run holding ``token``."""
    try:
        owner = json.loads(token)
    except ValueError:
        owner = {"run": token.decode(errors="replace")}
    doc = {**owner, "state": state, "expires": time.time() + seconds}
    return json.dumps(doc, separators=(",", ":")).encode()


def parse(raw: bytes | None) -> dict[str, Any] | None:
    """The lease document, or ``None`` (absent or unreadable: treated as no live owner)."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _alive(pid: Any) -> bool:
    if type(pid) is not int or pid <= 0:
        return True  # cannot tell: assume it lives
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def live_owner(doc: dict[str, Any] | None) -> str | None:
    """A description of the live run holding the lease, or ``None`` if it may be taken."""
    if doc is None or doc.get("state") != "held":
        return None
    expires = doc.get("expires")
    if not isinstance(expires, (int, float)) or expires <= time.time():
        return None
    if doc.get("host") == socket.gethostname() and not _alive(doc.get("pid")):
        return None  # its process died on this machine: no need to wait for the lease to expire
    return f"process {doc.get('pid')} on {doc.get('host')} (run {doc.get('run')})"


def same_run(doc: dict[str, Any] | None, token: bytes) -> bool:
    """Whether the lease is held by the run whose token is ``token``."""
    if doc is None or doc.get("state") != "held":
        return False
    try:
        return doc.get("run") == json.loads(token).get("run")
    except (ValueError, AttributeError):
        return False
