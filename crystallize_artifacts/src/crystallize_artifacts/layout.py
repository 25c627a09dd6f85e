"""Where things live on disk — the layout crystallize-ml 0.27 established.

::

    <root>/<experiment>/v<N>/metadata.json
    <root>/<experiment>/v<N>/manifest.json
    <root>/<experiment>/v<N>/replicate_<r>/<condition>/<step>/<name>
    <root>/<experiment>/v<N>/<condition>/results.json
    <root>/<experiment>/v<N>/<condition>/replicates.jsonl
    <root>/<experiment>/v<N>/<condition>/.crystallize_complete
    <root>/<experiment>/v<N>/.index.json       (a cache of completed conditions)

``<experiment>`` is the experiment's name, or its id when unnamed.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "METADATA",
    "MANIFEST",
    "RESULTS",
    "MARKER",
    "JOURNAL",
    "LOCK",
    "INDEX",
    "CONSUMERS",
    "RESERVED_CONDITION",
    "version_dir",
    "versions",
    "latest_version",
    "artifact_relpath",
]

METADATA = "metadata.json"
MANIFEST = "manifest.json"
RESULTS = "results.json"
MARKER = ".crystallize_complete"
JOURNAL = "replicates.jsonl"
LOCK = ".lock"
INDEX = ".index.json"
CONSUMERS = ".consumers"

_VERSION = re.compile(r"^v(\d+)$")
#: condition names that would collide with the layout's own entries.
RESERVED_CONDITION = re.compile(r"^(replicate_\d+|metadata\.json|manifest\.json|\..*)$")


def version_dir(experiment_dir: Path, version: int) -> Path:
    return experiment_dir / f"v{version}"


def versions(experiment_dir: Path) -> list[int]:
    """Existing run versions, ascending (``[]`` if the folder does not exist)."""
    try:
        names = [entry.name for entry in experiment_dir.iterdir() if entry.is_dir()]
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for name in names if (m := _VERSION.match(name)))


def latest_version(experiment_dir: Path) -> int | None:
    found = versions(experiment_dir)
    return found[-1] if found else None


def artifact_relpath(condition: str, replicate: int, step: str, name: str) -> str:
    return f"replicate_{replicate}/{condition}/{step}/{name}"
