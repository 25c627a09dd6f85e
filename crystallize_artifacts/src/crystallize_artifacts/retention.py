"""Dropping old versions' artifacts, without touching what others still read.

``ArtifactPlugin(artifact_retention=N)`` keeps the artifacts of the ``N``
newest versions; older versions keep only their metrics (``results.json``,
markers, ``metadata.json``, ``manifest.json``). ``big_file_threshold_mb``
additionally drops large files from kept versions other than the newest.

A version is never pruned while a downstream experiment's run that read it
still exists: consumers leave a *pin* in ``v<N>/.consumers/`` when they
start, naming their own run folder. A version whose run is active (its lock
is held) is never pruned either. What was pruned is listed in the version's
``manifest.json`` under ``pruned``, so ``crystallize verify`` knows it is gone
on purpose.

Retention deletes only regular files it reaches below ``v<N>/replicate_*``
without following a link (see :mod:`~crystallize_artifacts.safepaths`): a
link planted there is left alone, never followed out of the root.
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

from crystallize.plugin import DocumentError
from crystallize_artifacts import documents, layout, safepaths
from crystallize_artifacts.commit import write_atomic_at
from crystallize_artifacts.safepaths import Handle
from crystallize_artifacts.store import lock_held

__all__ = ["prune", "pinned_by", "add_pin"]

log = logging.getLogger("crystallize.artifacts")
#: deeper than ``replicate_<r>/<condition>/<step>/<name>``: not written by the store.
_MAX_DEPTH = 4


def add_pin(producer_run: Path, consumer_key: str, consumer_version: int, consumer_location: str) -> None:
    """Record that a consumer run reads ``producer_run`` (best effort)."""
    doc = {"consumer": consumer_key, "version": consumer_version, "location": consumer_location}
    try:
        handle = safepaths.open_folder(producer_run)
        try:
            pins = safepaths.open_dirs(handle, (layout.CONSUMERS,), where=str(producer_run), create=True)
            try:
                write_atomic_at(pins, f"{consumer_key}--v{consumer_version}.json", json.dumps(doc).encode())
            finally:
                safepaths.close(pins)
        finally:
            safepaths.close(handle)
    except (OSError, ValueError) as exc:
        log.warning("could not record that %s reads %s (%s); retention may prune it", consumer_key, producer_run, exc)


def pinned_by(version_dir: Path) -> list[str]:
    """Consumer runs that read this version and still exist.

    A pin that cannot be read keeps the version (retention errs on the side
    of keeping files).
    """
    holders = []
    try:
        handle = safepaths.open_folder(version_dir)
    except (OSError, ValueError):
        return []
    try:
        try:
            pins = safepaths.open_dirs(handle, (layout.CONSUMERS,), where=str(version_dir))
        except (OSError, ValueError):
            return []
        try:
            for name in sorted(name for name, _ in safepaths.scan(pins)):
                if not name.endswith(".json"):
                    continue
                where = f"{version_dir}/{layout.CONSUMERS}/{name}"
                try:
                    raw = safepaths.read_regular(pins, name, where=where, limit=1 << 16)
                    if raw is None:
                        continue
                    pin = documents.parse_pin(raw, where)
                except (OSError, ValueError) as exc:
                    holders.append(f"an unreadable pin ({exc})")
                    continue
                if Path(pin.location).is_dir():
                    holders.append(f"{pin.consumer} v{pin.version}")
        finally:
            safepaths.close(pins)
    finally:
        safepaths.close(handle)
    return holders


#: an artifact file: (folders below the run folder, file name, size)
_File = tuple[tuple[str, ...], str, int]


def _artifact_files(handle: Handle, where: str) -> list[_File]:
    found: list[_File] = []

    def walk(folder: Handle, segments: tuple[str, ...]) -> None:
        for name, st in safepaths.scan(folder):
            if stat.S_ISREG(st.st_mode):
                found.append((segments, name, st.st_size))
            elif stat.S_ISDIR(st.st_mode) and len(segments) < _MAX_DEPTH - 1:
                child = safepaths.open_dirs(folder, (name,), where=where)
                try:
                    walk(child, (*segments, name))
                finally:
                    safepaths.close(child)

    for name, st in safepaths.scan(handle):
        if name.startswith("replicate_") and stat.S_ISDIR(st.st_mode):
            folder = safepaths.open_dirs(handle, (name,), where=where)
            try:
                walk(folder, (name,))
            finally:
                safepaths.close(folder)
    return found


def _drop(handle: Handle, version_dir: Path, files: list[_File]) -> None:
    """List ``files`` as pruned in the manifest, then delete them (a crash in
    between leaves files listed as pruned, never files missing unannounced)."""
    if not files:
        return
    where = f"{version_dir}/{layout.MANIFEST}"
    raw = safepaths.read_regular(handle, layout.MANIFEST, where=where)
    if raw is None:
        manifest: dict = {"artifacts": []}
    else:
        try:
            documents.parse_manifest(raw, where)
        except DocumentError as exc:
            log.warning("retention: v%s left as it is, its manifest is unreadable (%s)", version_dir.name, exc)
            return
        manifest = json.loads(raw)
    pruned = set(manifest.get("pruned", ()))
    pruned.update("/".join((*segments, name)) for segments, name, _ in files)
    manifest["pruned"] = sorted(pruned)
    write_atomic_at(handle, layout.MANIFEST, json.dumps(manifest).encode())
    folders: set[tuple[str, ...]] = set()
    for segments, name, _ in files:
        try:
            folder = safepaths.open_dirs(handle, segments, where=str(version_dir))
        except (OSError, ValueError):
            continue
        try:
            safepaths.unlink_at(folder, name)
        finally:
            safepaths.close(folder)
        folders.update(segments[:i] for i in range(1, len(segments) + 1))
    for segments in sorted(folders, key=len, reverse=True):  # empty folders, deepest first
        try:
            parent = safepaths.open_dirs(handle, segments[:-1], where=str(version_dir))
        except (OSError, ValueError):
            continue
        try:
            safepaths.rmdir_at(parent, segments[-1])
        finally:
            if parent != handle:
                safepaths.close(parent)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 100 * 1024 else f"{size} bytes"


def prune(
    experiment_dir: Path, keep: int | None, big_file_bytes: int | None, current: int, *, dry_run: bool = False
) -> list[str]:
    """Apply the retention policy; returns a line per action (for logs and tests).

    ``current`` is the version in use (never pruned; it counts as one of the
    ``keep`` newest). With ``dry_run``, nothing is deleted: the lines say
    what would be (``crystallize gc --dry-run``).
    """
    actions: list[str] = []
    all_versions = [v for v in layout.versions(experiment_dir) if v != current]
    kept_whole = set(all_versions[-(keep - 1) :]) if keep is not None and keep > 1 else set()
    for version in all_versions:
        folder = layout.version_dir(experiment_dir, version)
        whole = keep is None or version in kept_whole
        if whole and big_file_bytes is None:
            continue
        if lock_held(folder):
            continue  # a run is writing it
        holders = pinned_by(folder)
        if holders:
            actions.append(f"kept v{version}: read by {', '.join(holders)}")
            continue
        try:
            handle = safepaths.open_folder(folder)
        except (OSError, ValueError) as exc:
            log.warning("retention: v%s skipped (%s)", version, exc)
            continue
        try:
            files = _artifact_files(handle, str(folder))
            verb = "would drop" if dry_run else "dropped"
            size = _megabytes(sum(f[2] for f in files))
            if whole:
                files = [f for f in files if f[2] > big_file_bytes]  # type: ignore[operator]
                size = _megabytes(sum(f[2] for f in files))
                if files:
                    actions.append(f"{verb} {len(files)} large file(s) of v{version} ({size})")
            elif files:
                actions.append(f"{verb} the artifacts of v{version}: {len(files)} file(s), {size} (metrics kept)")
            if not dry_run:
                _drop(handle, folder, files)
        except (OSError, ValueError) as exc:
            log.warning("retention: v%s skipped (%s)", version, exc)
        finally:
            safepaths.close(handle)
    for line in actions:
        log.info("retention%s: %s", " (dry run)" if dry_run else "", line)
    return actions
