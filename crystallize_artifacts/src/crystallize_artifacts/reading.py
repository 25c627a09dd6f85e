"""Reading artifacts back, from a folder or an object store, as a path or a file object.

A consumer's step receives, per replicate, what
:class:`~crystallize_artifacts.ArtifactDataSource` yields: a
:class:`pathlib.Path` for a local root, a :class:`StoredArtifact` for an
object store. Both answer the same calls, so a step works with either:

- ``artifact.open("rb")`` — a binary file object streaming the bytes
  (``torch.load(f)``, ``np.load(f)``, ``pickle.load(f)``);
- ``artifact.read_bytes()`` / ``artifact.read_text()``;
- ``os.fspath(artifact)``, ``open(artifact, "rb")``, ``Path(artifact)`` — a
  local file: for a :class:`StoredArtifact` it is downloaded once per process
  into a cache folder (``$CRYSTALLIZE_CACHE_DIR``, else a folder in the
  system's temporary folder), atomically, so readers that insist on a path
  (``np.load(path, mmap_mode="r")``) work too.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from crystallize_artifacts.backends import RunFolder

__all__ = ["StoredArtifact", "cache_dir"]


def cache_dir() -> Path:
    """Where :class:`StoredArtifact` keeps local copies."""
    configured = os.environ.get("CRYSTALLIZE_CACHE_DIR")
    if configured:
        return Path(configured)
    user = getattr(os, "getuid", lambda: "user")()
    return Path(tempfile.gettempdir()) / f"crystallize-artifacts-{user}"


class StoredArtifact(os.PathLike):  # type: ignore[type-arg]
    """An artifact kept in an object store, as a consumer's step receives it (see the module's docstring)."""

    def __init__(self, folder: RunFolder, path: str) -> None:
        self.folder = folder
        self.path = path
        self._local: Path | None = None

    @property
    def url(self) -> str:
        """Where the artifact is (``s3://bucket/.../replicate_0/baseline/Step/name``)."""
        return f"{self.folder.location}/{self.path}"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def open(self, mode: str = "rb") -> BinaryIO:
        """A binary file object reading the artifact (only ``"rb"``: stored artifacts are read-only)."""
        if mode != "rb":
            raise ValueError(f"{self.url} is a stored artifact: it opens with mode 'rb' only, not {mode!r}")
        return self.folder.open_read(self.path)

    def read_bytes(self) -> bytes:
        with self.open() as f:
            return f.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def local_path(self) -> Path:
        """A local copy of the artifact, downloaded on first use (then reused by this process)."""
        if self._local is not None and self._local.is_file():
            return self._local
        folder = cache_dir() / hashlib.sha256(self.url.encode()).hexdigest()[:32]
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.name
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".download-")
        try:
            with os.fdopen(fd, "wb") as out, self.open() as src:
                while block := src.read(1 << 22):
                    out.write(block)
            os.replace(temp, target)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        self._local = target
        return target

    def __fspath__(self) -> str:
        return str(self.local_path())

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "path": self.path, "_local": None}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredArtifact) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"StoredArtifact({self.url!r})"
