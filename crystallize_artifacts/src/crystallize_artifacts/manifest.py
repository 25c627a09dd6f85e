"""``manifest.json``: every artifact a run holds, with its size and SHA-256.

The manifest is written when a run closes, from what markers and journal
lines vouch for — never from a scan of the folder — and removed before a
resumed run changes anything, so a manifest that exists always describes
the folder as it is. ``crystallize verify`` checks artifacts against it;
graph resume reads it to tell whether a run's outputs are still there.
Retention adds the paths it deleted on purpose under ``pruned``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crystallize.plugin import ArtifactRecord, DocumentError
from crystallize_artifacts import documents, layout
from crystallize_artifacts.encoding import now, to_json_bytes

if TYPE_CHECKING:
    from crystallize_artifacts.backends import RunFolder

__all__ = ["write", "withdraw", "read", "missing_outputs"]


def write(folder: RunFolder, version: int, status: str, records: list[ArtifactRecord]) -> None:
    """Commit the manifest of ``records`` (one per path: the last one wins)."""
    unique = list({r.path: r for r in records}.values())
    manifest = {"version": version, "status": status, "updated_at": now(), "artifacts": [r.to_json() for r in unique]}
    folder.write(layout.MANIFEST, to_json_bytes(manifest, what="manifest"))


def withdraw(folder: RunFolder) -> bool:
    """Remove the manifest before the run changes; ``True`` if there was one."""
    return folder.delete(layout.MANIFEST)


def read(folder: RunFolder) -> documents.Manifest | None:
    """The run's manifest (``None`` if it has none).

    :raises DocumentError: when it is unreadable or a record is unusable.
    """
    raw = folder.read(layout.MANIFEST)
    if raw is None:
        return None
    source = f"{folder.location}/{layout.MANIFEST}"
    manifest, problems = documents.parse_manifest(raw, source)
    if problems:
        raise DocumentError(source, f"{len(problems)} artifact record(s) are unusable; the first: {problems[0]}")
    return manifest


def missing_outputs(folder: RunFolder) -> list[str]:
    """Paths the manifest lists that are neither there nor pruned by retention."""
    manifest = read(folder)
    if manifest is None:
        return []
    kept = [r.path for r in manifest.artifacts if r.path not in manifest.pruned]
    sizes = folder.sizes(kept)
    return [path for path in kept if sizes.get(path) is None]
