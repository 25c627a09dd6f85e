"""Where things live on disk — the layout crystallize-ml 0.27 established.

::

    <root>/<experiment>/v<N>/metadata.json
    <root>/<experiment>/v<N>/manifest.json
    <root>/<experiment>/v<N>/outcome.json      (hypothesis verdicts and failures, when the run ends)
    <root>/<experiment>/v<N>/replicate_<r>/<condition>/<step>/<name>
    <root>/<experiment>/v<N>/<condition>/results.json
    <root>/<experiment>/v<N>/<condition>/replicates.jsonl
    <root>/<experiment>/v<N>/<condition>/.crystallize_complete
    <root>/<experiment>/v<N>/.index.json       (a cache of completed conditions)

``<experiment>`` is the experiment's name, or its id when unnamed.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

__all__ = [
    "METADATA",
    "MANIFEST",
    "OUTCOME",
    "RESULTS",
    "MARKER",
    "JOURNAL",
    "LOCK",
    "INDEX",
    "CONSUMERS",
    "RESERVED_CONDITION",
    "reserved_condition",
    "VERSION_NAME",
    "version_dir",
    "versions",
    "latest_version",
    "artifact_relpath",
    "is_real_dir",
]

METADATA = "metadata.json"
MANIFEST = "manifest.json"
OUTCOME = "outcome.json"
RESULTS = "results.json"
MARKER = ".crystallize_complete"
JOURNAL = "replicates.jsonl"
LOCK = ".lock"
INDEX = ".index.json"
CONSUMERS = ".consumers"

#: the name of a run folder, ``v<N>``.
VERSION_NAME = re.compile(r"^v(\d+)$")
#: condition names that would collide with the layout's own entries (compared
#: case-insensitively): every ``replicate_...`` name, the run's documents
#: (crystallize-ml's ``_manifest.json`` too) and names starting with ``.``.
RESERVED_CONDITION = re.compile(
    r"^(replicate_.*|metadata\.json|manifest\.json|outcome\.json|_manifest\.json|\..*)$", re.IGNORECASE
)


def reserved_condition(name: str) -> bool:
    """Whether a condition named ``name`` would collide with the layout's own
    entries, on any file system (letter case and Unicode normalisation ignored)."""
    from crystallize.plugin import portable_key

    return RESERVED_CONDITION.match(name) is not None or RESERVED_CONDITION.match(portable_key(name)) is not None


def version_dir(experiment_dir: Path, version: int) -> Path:
    return experiment_dir / f"v{version}"


def versions(experiment_dir: Path) -> list[int]:
    """Existing run versions, ascending (``[]`` if the folder does not exist).

    Only real folders count: a symbolic link named ``v<N>`` is never a run.
    """
    try:
        with os.scandir(experiment_dir) as entries:
            names = [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(m.group(1)) for name in names if (m := VERSION_NAME.match(name)))


def is_real_dir(path: Path) -> bool:
    """``path`` is a folder, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def latest_version(experiment_dir: Path) -> int | None:
    found = versions(experiment_dir)
    return found[-1] if found else None


def artifact_relpath(condition: str, replicate: int, step: str, name: str) -> str:
    return f"replicate_{replicate}/{condition}/{step}/{name}"
