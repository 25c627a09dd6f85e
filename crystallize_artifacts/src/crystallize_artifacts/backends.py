"""The small interface the run logic is written against: where bytes go.

The store's logic — what to commit in which order, the journal, completion
markers, the index, the manifest, resume — lives in
:mod:`crystallize_artifacts.store` and the modules it uses, and is the same
for every place runs are kept. What differs between a local folder and an
object store is below this line:

- :class:`ExperimentFolder` — every run of one experiment: which versions
  exist, claiming a new one, reopening one to resume (with its lock).
- :class:`RunFolder` — one run's folder: whole-file commits, streamed
  commits, reads, listings, the journal, and checking that the run still
  owns the folder.

Two implementations ship: :mod:`crystallize_artifacts.local` (a file system:
the path-safety layer, atomic rename, ``flock``-style locks) and
:mod:`crystallize_artifacts.objects` (any fsspec store: whole-object writes,
conditional creates, leases). Paths are ``/``-separated, relative to the run
folder, and already checked by the caller (every segment a valid name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import BinaryIO, Protocol

__all__ = ["ExperimentFolder", "RunFolder", "Sink", "FILE", "FOLDER", "LINK", "OTHER", "is_object_url"]

_URL_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def is_object_url(root: str) -> bool:
    """``root`` names an fsspec store other than the local file system (``file://``).

    Here, not in :mod:`~crystallize_artifacts.objects`, so that a local root
    never imports the object-store backend.
    """
    match = _URL_SCHEME.match(root)
    return match is not None and match.group(1).lower() not in ("file", "local")


#: kinds of entries :meth:`RunFolder.entries` reports.
FILE, FOLDER, LINK, OTHER = "file", "folder", "link", "other"


class Sink(Protocol):
    """A file being written: nothing is visible until :meth:`commit`; :meth:`discard` leaves no trace."""

    def write(self, data: bytes | bytearray | memoryview) -> int: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...


class RunFolder(Protocol):
    """One run's folder (``<experiment>/v<N>``)."""

    version: int
    location: str
    readonly: bool
    durable: bool
    #: files can be renamed into the folder (:meth:`move_artifact` can succeed).
    renames: bool
    #: set when opening found that the process which last held the run died
    #: without ending it: who that was. ``None`` otherwise, and where a
    #: backend cannot tell (the store reports it as ``RunStore.crashed``).
    crashed: str | None

    @property
    def attached(self) -> bool:
        """Whether this process has the folder open for writing (an owner, or an attached copy)."""

    # -- ownership --------------------------------------------------------------------------

    def attach(self) -> None:
        """Get ready to write from this process (a copy in a worker opens what it needs)."""

    def check_owner(self) -> None:
        """Raise :class:`~crystallize_artifacts.runlock.RunEndedError` when the run this
        folder was opened for no longer owns it (checked by copies in other processes)."""

    def release(self) -> None:
        """Give up the folder: close what is open, release the lock or lease."""

    # -- whole files ---------------------------------------------------------------------------

    def read(self, path: str, *, limit: int | None = None) -> bytes | None:
        """The bytes of a file (``None`` if missing); a link or special file is refused."""

    def write(self, path: str, data: bytes) -> None:
        """Commit ``data`` at ``path`` whole (readers see the old file or the new one)."""

    def write_artifact(self, folders: tuple[str, str, str], name: str, data: bytes | memoryview) -> None:
        """:meth:`write` of ``replicate_<r>/<condition>/<step>/<name>`` (the hot path)."""

    def open_artifact(self, folders: tuple[str, str, str], name: str) -> Sink:
        """A streamed commit of an artifact, visible only once committed."""

    def move_artifact(self, folders: tuple[str, str, str], name: str, source: str) -> bool:
        """Commit the local file ``source`` as an artifact by renaming it; ``False`` when it cannot
        be renamed there (another file system, an object store): the caller copies it instead."""

    def open_read(self, path: str) -> BinaryIO:
        """A binary file object reading ``path`` (``FileNotFoundError`` if missing)."""

    def delete(self, path: str) -> bool:
        """Remove a file (never what a link points to); ``False`` if it was missing."""

    # -- what is there --------------------------------------------------------------------------

    def size(self, path: str) -> int | None:
        """The size of the regular file at ``path``; ``None`` if missing or not a regular file."""

    def sizes(self, paths: Iterable[str]) -> dict[str, int | None]:
        """:meth:`size` of many paths at once (an object store lists instead of asking each)."""

    def entries(self, path: str = "") -> list[tuple[str, str]]:
        """``(name, kind)`` of what a folder holds (kinds: :data:`FILE`, :data:`FOLDER`, :data:`LINK`,
        :data:`OTHER`); empty when it does not exist."""

    def artifact_files(self) -> list[tuple[str, int]]:
        """Every regular file below ``replicate_*`` folders, with its size."""

    def signature(self, paths: tuple[str, ...]) -> list[object] | None:
        """Identity of files that changes whenever one is replaced (for the completion
        index); ``None`` when one is missing or the store cannot tell cheaply."""

    def prune_folders(self, paths: Iterable[str]) -> None:
        """Remove these folders if empty (deepest first); stores without folders do nothing."""

    # -- the journal ----------------------------------------------------------------------------

    def append_journal(self, condition: str, line: bytes) -> None:
        """Add one line to a condition's journal; the line is the unit of commit."""

    def read_journal(self, condition: str) -> bytes | None:
        """Every line of a condition's journal, in order (``None`` if it has none)."""

    def replace_journal(self, condition: str, data: bytes) -> bool:
        """Replace a condition's journal whole (``b""``: empty it); ``False`` if there was none
        and ``data`` is empty."""

    def close_journals(self) -> None:
        """Close what appending keeps open."""


class ExperimentFolder(Protocol):
    """Every run of one experiment (``<root>/<experiment>``)."""

    location: str

    def versions(self) -> list[int]:
        """Existing run versions, ascending."""

    def run_location(self, version: int) -> str:
        """Where run ``version`` is (a path or URL, for messages and lineage)."""

    def open_run(self, *, versioned: bool, resume: bool, durable: bool, token: bytes) -> tuple[RunFolder, bool]:
        """Claim a new run folder (or, with ``resume``, the latest one) and lock it.

        :returns: the folder and whether it continues an earlier run.
        """

    def existing(self, version: int | None = None, *, maintenance: bool = False) -> RunFolder | None:
        """An existing run's folder for reading (the latest when ``version`` is ``None``);
        ``maintenance`` lets retention delete files in a run nobody holds."""

    def lock_held(self, version: int) -> bool:
        """Whether a live run holds run ``version``."""

    def exists(self, location: str) -> bool:
        """Whether a run folder named by its :attr:`RunFolder.location` still exists."""
