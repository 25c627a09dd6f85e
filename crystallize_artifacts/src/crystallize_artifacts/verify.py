"""Checking a run's files against its manifest: ``crystallize verify``.

Verification reads only what lies inside the run folder, reached without
following links (:mod:`~crystallize_artifacts.safepaths`): a manifest record
pointing elsewhere (``/etc/shadow``, ``../other``) is reported and never
opened, and a link, FIFO or folder where a file should be is reported
without blocking. Every problem becomes one line of the report; nothing
found on disk makes verification crash or say "ok" for a run it could not
check.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystallize.plugin import ArtifactRecord, DocumentError, new_hasher, parse_digest
from crystallize_artifacts import documents, layout, safepaths
from crystallize_artifacts.backends import FOLDER
from crystallize_artifacts.safepaths import Handle, UnsafePathError

if TYPE_CHECKING:
    from crystallize_artifacts.backends import RunFolder

__all__ = ["verify_run", "verify_path", "verify_folder", "verify_url", "NoRunsError"]


class NoRunsError(UnsafePathError):
    """``verify_path`` was given a path that is not a folder."""


def _problem(exc: OSError | ValueError, where: str) -> str:
    if isinstance(exc, ValueError):
        return str(exc)
    return f"{where}: cannot be read ({exc.strerror or exc})"


def _differs(record: ArtifactRecord, blocks: Iterator[bytes], path: str) -> str | None:
    """A problem if ``blocks`` do not hash to ``record.digest`` (by the algorithm it names)."""
    algorithm, expected = parse_digest(record.digest)  # records were checked when the manifest was read
    hasher = new_hasher(algorithm)
    for block in blocks:
        hasher.update(block)
    if hasher.hexdigest() != expected:
        return f"{path}: content differs from its {algorithm} digest in the manifest"
    return None


def _fd_blocks(fd: int) -> Iterator[bytes]:
    while block := os.read(fd, 1 << 20):
        yield block


def verify_run(version_dir: Path) -> list[str]:
    """Problems found in one ``v<N>`` folder (empty when everything checks out)."""
    try:
        handle = safepaths.open_folder(version_dir)
    except FileNotFoundError:
        return [f"{version_dir}: does not exist"]
    except (OSError, ValueError) as exc:
        return [_problem(exc, str(version_dir))]
    try:
        return _check_manifest(handle, version_dir) + _check_conditions(handle, version_dir)
    finally:
        safepaths.close(handle)


def _check_manifest(handle: Handle, version_dir: Path) -> list[str]:
    where = f"{version_dir}/{layout.MANIFEST}"
    try:
        raw = safepaths.read_regular(handle, layout.MANIFEST, where=where)
    except (OSError, ValueError) as exc:
        return [_problem(exc, where)]
    if raw is None:
        return [f"{where}: missing (the run never finished)"]
    try:
        manifest, problems = documents.parse_manifest(raw, where)
    except DocumentError as exc:
        return [str(exc)]
    for record in manifest.artifacts:
        if record.path not in manifest.pruned:
            problem = _check_artifact(handle, version_dir, record)
            if problem is not None:
                problems.append(problem)
    return problems


def _check_artifact(handle: Handle, version_dir: Path, record: ArtifactRecord) -> str | None:
    path = f"{version_dir}/{record.path}"
    try:
        folder = safepaths.open_dirs(
            handle, (f"replicate_{record.replicate}", record.condition, record.step), where=str(version_dir)
        )
    except FileNotFoundError:
        return f"{path}: missing"
    except (OSError, ValueError) as exc:
        return _problem(exc, path)
    try:
        fd = safepaths.open_regular(folder, record.name, os.O_RDONLY, where=path)
    except FileNotFoundError:
        return f"{path}: missing"
    except (OSError, ValueError) as exc:
        return _problem(exc, path)
    finally:
        safepaths.close(folder)
    try:
        size = os.fstat(fd).st_size
        if size != record.size:
            return f"{path}: size {size}, manifest says {record.size}"
        return _differs(record, _fd_blocks(fd), path)
    except OSError as exc:
        return _problem(exc, path)
    finally:
        os.close(fd)


def _check_conditions(handle: Handle, version_dir: Path) -> list[str]:
    problems = []
    try:
        entries = sorted(safepaths.scan(handle))
    except OSError as exc:
        return [_problem(exc, str(version_dir))]
    for name, st in entries:
        if stat.S_ISLNK(st.st_mode):
            problems.append(f"{version_dir}/{name}: a symbolic link in the run folder (the store never writes one)")
        elif stat.S_ISDIR(st.st_mode) and not name.startswith((".", "replicate_")):
            problem = _check_marker(handle, version_dir, name)
            if problem is not None:
                problems.append(problem)
    return problems


def _check_marker(handle: Handle, version_dir: Path, condition: str) -> str | None:
    where = f"{version_dir}/{condition}"
    marker_path, results_path = f"{where}/{layout.MARKER}", f"{where}/{layout.RESULTS}"
    try:
        folder = safepaths.open_dirs(handle, (condition,), where=str(version_dir))
    except (OSError, ValueError) as exc:
        return _problem(exc, where)
    try:
        marker_raw = safepaths.read_regular(folder, layout.MARKER, where=marker_path)
        if marker_raw is None:
            return None  # not complete: nothing vouched for
        raw = safepaths.read_regular(folder, layout.RESULTS, where=results_path)
    except (OSError, ValueError) as exc:
        return _problem(exc, where)
    finally:
        safepaths.close(folder)
    return _marker_problem(condition, marker_raw, raw, marker_path, results_path)


def verify_path(path: Path | str, storage_options: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Verify a run folder, every run of an experiment, or every experiment under a root.

    ``path`` may be an fsspec URL (``s3://bucket/prefix``): see ``verify.verify_url``.

    :returns: ``{run folder: [problems]}``; empty when ``path`` holds no runs.
    :raises NoRunsError: ``path`` is not a folder.
    """
    from crystallize_artifacts.backends import is_object_url

    if is_object_url(str(path)):
        return verify_url(str(path), storage_options)
    path = Path(path)
    if not path.is_dir():
        raise NoRunsError(f"{path} is not a folder; give a run folder (v<N>), an experiment folder or a root")
    if layout.VERSION_NAME.match(path.name) or any(
        os.path.lexists(path / name) for name in (layout.METADATA, layout.MANIFEST)
    ):
        return {str(path): verify_run(path)}
    runs = [layout.version_dir(path, v) for v in layout.versions(path)]
    if not runs:
        with os.scandir(path) as entries:
            children = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        runs = [layout.version_dir(path / child, v) for child in children for v in layout.versions(path / child)]
    return {str(run): verify_run(run) for run in runs}


# -- any store, through its run folders -------------------------------------------------------------


def verify_folder(folder: RunFolder) -> list[str]:
    """Problems found in one run, kept in any store (a :class:`~crystallize_artifacts.backends.RunFolder`)."""
    problems: list[str] = []
    where = f"{folder.location}/{layout.MANIFEST}"
    try:
        raw = folder.read(layout.MANIFEST)
    except (OSError, ValueError) as exc:
        raw = None
        problems.append(_problem(exc, where))
    else:
        if raw is None:
            problems.append(f"{where}: missing (the run never finished)")
    if raw is not None:
        try:
            manifest, found = documents.parse_manifest(raw, where)
        except DocumentError as exc:
            problems.append(str(exc))
        else:
            problems += found
            kept = [r for r in manifest.artifacts if r.path not in manifest.pruned]
            sizes = folder.sizes(r.path for r in kept)
            for record in kept:
                problem = _check_stored(folder, record, sizes.get(record.path))
                if problem is not None:
                    problems.append(problem)
    for name, kind in sorted(folder.entries()):
        if kind == FOLDER and not name.startswith((".", "replicate_")):
            problem = _check_stored_marker(folder, name)
            if problem is not None:
                problems.append(problem)
    return problems


def _check_stored(folder: RunFolder, record: ArtifactRecord, size: int | None) -> str | None:
    path = f"{folder.location}/{record.path}"
    if size is None:
        return f"{path}: missing"
    if size != record.size:
        return f"{path}: size {size}, manifest says {record.size}"
    try:
        with folder.open_read(record.path) as f:
            return _differs(record, iter(lambda: f.read(1 << 22), b""), path)
    except (OSError, ValueError) as exc:
        return _problem(exc, path)


def _marker_problem(
    condition: str, marker_raw: bytes, raw: bytes | None, marker_path: str, results_path: str
) -> str | None:
    """What is wrong with a completion marker and the ``results.json`` it vouches for (``None``: nothing).

    Shared by local folders and object stores, which differ only in how they read the two files.
    """
    if raw is None:
        return f"{marker_path}: marks a condition complete but {results_path} is missing"
    try:
        marker = documents.parse_marker(marker_raw, marker_path)
        results = documents.parse_results(raw, results_path, condition)
    except DocumentError as exc:
        return str(exc)
    if marker.legacy:
        if not results.legacy:
            return f"{marker_path}: empty, but {results_path} was written by crystallize-artifacts (a damaged marker)"
        return None  # crystallize-ml 0.27 wrote both: it kept no checksum
    if hashlib.sha256(raw).hexdigest() != marker.results_sha256:
        return f"{results_path}: does not match the sha256 its completion marker vouches for"
    if results.legacy or marker.replicates != results.replicates:
        return f"{results_path}: does not hold the {marker.replicates} replicate(s) its completion marker vouches for"
    return None


def _check_stored_marker(folder: RunFolder, condition: str) -> str | None:
    where = f"{folder.location}/{condition}"
    marker_path, results_path = f"{where}/{layout.MARKER}", f"{where}/{layout.RESULTS}"
    try:
        marker_raw = folder.read(f"{condition}/{layout.MARKER}")
        if marker_raw is None:
            return None  # not complete: nothing vouched for
        raw = folder.read(f"{condition}/{layout.RESULTS}")
    except (OSError, ValueError) as exc:
        return _problem(exc, where)
    return _marker_problem(condition, marker_raw, raw, marker_path, results_path)


def verify_url(url: str, storage_options: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """:func:`verify_path` for an object store: a run (``.../v<N>``), an experiment, or a root.

    :raises NoRunsError: nothing is stored at ``url``.
    """
    from crystallize_artifacts.objects import ObjectExperimentFolder, open_filesystem

    fs, path, _ = open_filesystem(url, storage_options)
    fs.invalidate_cache(path)
    try:
        children = [c.rstrip("/").rsplit("/", 1)[-1] for c in fs.ls(path, detail=False)]
    except FileNotFoundError:
        raise NoRunsError(f"{url} holds nothing; give a run (v<N>), an experiment or a root") from None
    name = path.rsplit("/", 1)[-1]
    match = layout.VERSION_NAME.match(name)
    if match or layout.METADATA in children or layout.MANIFEST in children:
        parent = url.rstrip("/").rsplit("/", 1)[0]
        experiment = ObjectExperimentFolder(parent, fs=fs)
        folder = experiment.existing(int(match.group(1))) if match else None
        if folder is None:
            raise NoRunsError(f"{url} is not a run folder named v<N>")
        return {folder.location: verify_folder(folder)}
    experiments = [ObjectExperimentFolder(url.rstrip("/"), fs=fs)]
    if not experiments[0].versions():
        experiments = [ObjectExperimentFolder(f"{url.rstrip('/')}/{child}", fs=fs) for child in sorted(children)]
    report: dict[str, list[str]] = {}
    for experiment in experiments:
        for version in experiment.versions():
            folder = experiment.existing(version)
            if folder is not None:
                report[folder.location] = verify_folder(folder)
    return report
