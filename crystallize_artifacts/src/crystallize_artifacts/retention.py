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
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from crystallize_artifacts import layout
from crystallize_artifacts.commit import write_atomic
from crystallize_artifacts.store import lock_held

__all__ = ["prune", "pinned_by", "add_pin"]

log = logging.getLogger("crystallize.artifacts")


def add_pin(producer_run: Path, consumer_key: str, consumer_version: int, consumer_location: str) -> None:
    """Record that a consumer run reads ``producer_run`` (best effort)."""
    pins = producer_run / layout.CONSUMERS
    try:
        pins.mkdir(exist_ok=True)
        doc = {"consumer": consumer_key, "version": consumer_version, "location": consumer_location}
        write_atomic(pins / f"{consumer_key}--v{consumer_version}.json", json.dumps(doc).encode())
    except OSError as exc:
        log.warning("could not record that %s reads %s (%s); retention may prune it", consumer_key, producer_run, exc)


def pinned_by(version_dir: Path) -> list[str]:
    """Consumer runs that read this version and still exist."""
    holders = []
    try:
        pins = list((version_dir / layout.CONSUMERS).glob("*.json"))
    except OSError:
        return []
    for pin in pins:
        try:
            doc = json.loads(pin.read_bytes())
        except (OSError, ValueError):
            continue
        if Path(doc.get("location", "")).is_dir():
            holders.append(f"{doc.get('consumer')} v{doc.get('version')}")
    return holders


def _artifact_files(version_dir: Path) -> list[Path]:
    return [p for folder in version_dir.glob("replicate_*") for p in folder.rglob("*") if p.is_file()]


def _drop(version_dir: Path, files: list[Path]) -> None:
    """List ``files`` as pruned in the manifest, then delete them (a crash in
    between leaves files listed as pruned, never files missing unannounced)."""
    if not files:
        return
    manifest_path = version_dir / layout.MANIFEST
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict):
        manifest = {}
    pruned = set(manifest.get("pruned", ()))
    pruned.update(f.relative_to(version_dir).as_posix() for f in files)
    manifest["pruned"] = sorted(pruned)
    write_atomic(manifest_path, json.dumps(manifest).encode())
    for file in files:
        try:
            file.unlink()
        except FileNotFoundError:
            pass
    for folder in sorted((p for p in version_dir.glob("replicate_*/**") if p.is_dir()), reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def prune(experiment_dir: Path, keep: int | None, big_file_bytes: int | None, current: int) -> list[str]:
    """Apply the retention policy; returns a line per action (for logs and tests)."""
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
        files = _artifact_files(folder)
        if whole:
            files = [f for f in files if f.stat().st_size > big_file_bytes]  # type: ignore[operator]
            if files:
                actions.append(f"dropped {len(files)} large file(s) of v{version}")
        elif files:
            actions.append(f"dropped the artifacts of v{version} (metrics kept)")
        _drop(folder, files)
    for line in actions:
        log.info("retention: %s", line)
    return actions
