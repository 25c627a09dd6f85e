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
link planted there is left alone, never followed out of the root. It works
the same on object stores, through the run folders of
:mod:`crystallize_artifacts.backends`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from crystallize.plugin import DocumentError
from crystallize_artifacts import documents, layout, safepaths
from crystallize_artifacts.backends import FILE, ExperimentFolder, RunFolder
from crystallize_artifacts.commit import write_atomic_at

__all__ = ["prune", "pinned_by", "add_pin", "location_exists"]

log = logging.getLogger("crystallize.artifacts")


def add_pin(
    producer_run: str | Path,
    consumer_key: str,
    consumer_version: int,
    consumer_location: str,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Record that a consumer run reads ``producer_run`` (a folder or an fsspec URL; best effort)."""
    from crystallize_artifacts.objects import is_object_url, open_filesystem

    doc = json.dumps({"consumer": consumer_key, "version": consumer_version, "location": consumer_location}).encode()
    name = f"{consumer_key}--v{consumer_version}.json"
    try:
        if is_object_url(str(producer_run)):
            fs, path, _ = open_filesystem(str(producer_run), storage_options)
            fs.pipe_file(f"{path}/{layout.CONSUMERS}/{name}", doc)
            return
        if not Path(producer_run).is_dir():
            return
        handle = safepaths.open_folder(producer_run)
        try:
            pins = safepaths.open_dirs(handle, (layout.CONSUMERS,), where=str(producer_run), create=True)
            try:
                write_atomic_at(pins, name, doc)
            finally:
                safepaths.close(pins)
        finally:
            safepaths.close(handle)
    except (OSError, ValueError, ImportError) as exc:
        log.warning("could not record that %s reads %s (%s); retention may prune it", consumer_key, producer_run, exc)


def location_exists(location: str, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether the run folder at ``location`` (a path or an fsspec URL) still exists."""
    from crystallize_artifacts.objects import is_object_url, open_filesystem

    if not is_object_url(location):
        return Path(location).is_dir()
    try:
        fs, path, _ = open_filesystem(location, storage_options)
        fs.invalidate_cache(path)
        return bool(fs.ls(path, detail=False))
    except FileNotFoundError:
        return False
    except (OSError, ImportError):
        return True  # cannot tell: keep what it may read


def _experiment(experiment: ExperimentFolder | Path) -> ExperimentFolder:
    if isinstance(experiment, Path):
        from crystallize_artifacts.local import LocalExperimentFolder

        return LocalExperimentFolder(experiment)
    return experiment


def pinned_by(
    experiment: ExperimentFolder | Path, version: int, storage_options: dict[str, Any] | None = None
) -> list[str]:
    """Consumer runs that read run ``version`` and still exist.

    A pin that cannot be read keeps the version (retention errs on the side
    of keeping files).
    """
    folder = _experiment(experiment).existing(version)
    if folder is None:
        return []
    holders = []
    try:
        names = sorted(name for name, kind in folder.entries(layout.CONSUMERS) if kind == FILE)
    except (OSError, ValueError):
        return []
    for name in names:
        if not name.endswith(".json"):
            continue
        where = f"{folder.location}/{layout.CONSUMERS}/{name}"
        try:
            raw = folder.read(f"{layout.CONSUMERS}/{name}", limit=1 << 16)
            if raw is None:
                continue
            pin = documents.parse_pin(raw, where)
        except (OSError, ValueError) as exc:
            holders.append(f"an unreadable pin ({exc})")
            continue
        if location_exists(pin.location, storage_options):
            holders.append(f"{pin.consumer} v{pin.version}")
    return holders


def _drop(folder: RunFolder, files: list[tuple[str, int]]) -> None:
    """List ``files`` as pruned in the manifest, then delete them (a crash in
    between leaves files listed as pruned, never files missing unannounced)."""
    if not files:
        return
    where = f"{folder.location}/{layout.MANIFEST}"
    raw = folder.read(layout.MANIFEST)
    if raw is None:
        manifest: dict = {"artifacts": []}
    else:
        try:
            documents.parse_manifest(raw, where)
        except DocumentError as exc:
            log.warning("retention: v%s left as it is, its manifest is unreadable (%s)", folder.version, exc)
            return
        manifest = json.loads(raw)
    pruned = set(manifest.get("pruned", ()))
    pruned.update(path for path, _ in files)
    manifest["pruned"] = sorted(pruned)
    folder.write(layout.MANIFEST, json.dumps(manifest).encode())
    folders: set[str] = set()
    for path, _ in files:
        try:
            folder.delete(path)
        except (OSError, ValueError):
            continue
        segments = path.split("/")[:-1]
        folders.update("/".join(segments[:i]) for i in range(1, len(segments) + 1))
    folder.prune_folders(folders)  # empty folders, deepest first


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 100 * 1024 else f"{size} bytes"


def prune(
    experiment: ExperimentFolder | Path,
    keep: int | None,
    big_file_bytes: int | None,
    current: int,
    storage_options: dict[str, Any] | None = None,
    *,
    dry_run: bool = False,
) -> list[str]:
    """Apply the retention policy; returns a line per action (for logs and tests).

    ``experiment`` is a local experiment folder (a path) or any
    :class:`~crystallize_artifacts.backends.ExperimentFolder`. ``current`` is
    the version in use (never pruned; it counts as one of the ``keep``
    newest). With ``dry_run``, nothing is deleted: the lines say what would
    be (``crystallize gc --dry-run``).
    """
    experiment = _experiment(experiment)
    actions: list[str] = []
    all_versions = [v for v in experiment.versions() if v != current]
    kept_whole = set(all_versions[-(keep - 1) :]) if keep is not None and keep > 1 else set()
    for version in all_versions:
        whole = keep is None or version in kept_whole
        if whole and big_file_bytes is None:
            continue
        if experiment.lock_held(version):
            continue  # a run is writing it
        holders = pinned_by(experiment, version, storage_options)
        if holders:
            actions.append(f"kept v{version}: read by {', '.join(holders)}")
            continue
        try:
            folder = experiment.existing(version, maintenance=True)
            if folder is None:
                continue
            files = folder.artifact_files()
            verb = "would drop" if dry_run else "dropped"
            size = _megabytes(sum(f[1] for f in files))
            if whole:
                files = [f for f in files if f[1] > big_file_bytes]  # type: ignore[operator]
                size = _megabytes(sum(f[1] for f in files))
                if files:
                    actions.append(f"{verb} {len(files)} large file(s) of v{version} ({size})")
            elif files:
                actions.append(f"{verb} the artifacts of v{version}: {len(files)} file(s), {size} (metrics kept)")
            if not dry_run:
                _drop(folder, files)
        except (OSError, ValueError) as exc:
            log.warning("retention: v%s skipped (%s)", version, exc)
    for line in actions:
        log.info("retention%s: %s", " (dry run)" if dry_run else "", line)
    return actions
