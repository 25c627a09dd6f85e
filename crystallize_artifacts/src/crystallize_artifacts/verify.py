"""Checking a run's files against its manifest: ``crystallize verify``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from crystallize_artifacts import layout

__all__ = ["verify_run", "verify_path"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_run(version_dir: Path) -> list[str]:
    """Problems found in one ``v<N>`` folder (empty when everything checks out)."""
    problems: list[str] = []
    manifest_path = version_dir / layout.MANIFEST
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except FileNotFoundError:
        manifest = None
        problems.append(f"{manifest_path}: missing (the run never finished)")
    except ValueError as exc:
        manifest = None
        problems.append(f"{manifest_path}: not valid JSON ({exc})")
    if manifest is not None:
        pruned = set(manifest.get("pruned", ()))
        for record in manifest.get("artifacts", ()):
            rel = record.get("path", "")
            path = version_dir / rel
            if rel in pruned:
                continue
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif path.stat().st_size != record.get("size"):
                problems.append(f"{path}: size {path.stat().st_size}, manifest says {record.get('size')}")
            elif _sha256(path) != record.get("sha256"):
                problems.append(f"{path}: content differs from its sha256 in the manifest")
    for marker in version_dir.glob(f"*/{layout.MARKER}"):
        results = marker.parent / layout.RESULTS
        try:
            vouched = json.loads(marker.read_bytes() or b"{}")
            raw = results.read_bytes()
        except FileNotFoundError:
            problems.append(f"{marker}: marks a condition complete but {results} is missing")
            continue
        except ValueError:
            problems.append(f"{marker}: not valid JSON")
            continue
        expected = vouched.get("results_sha256")
        if expected is not None and hashlib.sha256(raw).hexdigest() != expected:
            problems.append(f"{results}: does not match the sha256 its completion marker vouches for")
    return problems


def verify_path(path: Path) -> dict[str, list[str]]:
    """Verify a run folder, every run of an experiment, or every experiment under a root."""
    path = Path(path)
    if layout.METADATA in {p.name for p in path.iterdir()} or (path.name.startswith("v") and path.name[1:].isdigit()):
        return {str(path): verify_run(path)}
    runs = [layout.version_dir(path, v) for v in layout.versions(path)]
    if not runs:
        runs = [
            layout.version_dir(child, v)
            for child in sorted(p for p in path.iterdir() if p.is_dir())
            for v in layout.versions(child)
        ]
    return {str(run): verify_run(run) for run in runs}
