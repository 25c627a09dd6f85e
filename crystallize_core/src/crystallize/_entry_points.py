"""Installed distributions: entry points, and names and versions read cheaply.

``importlib_metadata`` finds entry points (the backport is faster than the
standard library's ``importlib.metadata`` and has the newer API on every
Python we support). A distribution's ``name`` and ``version`` attributes
parse its whole ``METADATA`` file with the :mod:`email` package, which costs
milliseconds per distribution on the first run in a process; the two
header lines needed here are read directly instead.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from typing import Any

__all__ = ["entry_points", "name_and_version", "installed_version"]


def entry_points(group: str) -> list[tuple[Any, Any]]:
    """``[(entry point, its distribution)]`` of ``group``, in ``sys.path`` order.

    ``importlib_metadata.entry_points()`` parses the ``entry_points.txt`` of
    every installed distribution into objects, for every group; on the first
    run in a process that is most of plugin discovery. Here each file is read
    and only those naming ``group`` are parsed (the INI format of the entry
    points specification: ``[group]`` headers, ``name = object reference``).
    Distributions are found on ``sys.path`` like the library does, minus the
    entries that do not exist.
    """
    try:
        from importlib_metadata import EntryPoint, distributions
    except ImportError:  # pragma: no cover - installed as a dependency
        from importlib.metadata import EntryPoint, distributions  # type: ignore[assignment]
    header = f"[{group}]"
    found = []
    # Entries that do not exist hold no distributions; skipping them saves the zip
    # machinery the library loads to look inside the standard pythonXY.zip entry,
    # which is on every sys.path and usually absent.
    search = [entry for entry in sys.path if not entry or os.path.exists(entry)]
    for dist in distributions(path=search):
        text = dist.read_text("entry_points.txt")
        if text and header in text:
            found += [(EntryPoint(name, value, group), dist) for name, value in _section(text, group)]
    return found


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of section ``[group]`` of an ``entry_points.txt``."""
    entries = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            inside = line[1:-1].strip() == group
        elif inside:
            name, equals, value = line.partition("=")
            if equals:
                entries.append((name.strip(), value.strip()))
    return entries


def name_and_version(dist: Any) -> tuple[str | None, str | None]:
    """``(Name, Version)`` from a distribution's metadata headers; ``None`` where unknown."""
    if dist is None:
        return None, None
    try:
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    except OSError:
        return None, None
    name = version = None
    for line in text.splitlines():
        if not line.strip():  # the headers end at the first blank line
            break
        key, _, value = line.partition(":")
        if key == "Name":
            name = value.strip()
        elif key == "Version":
            version = value.strip()
    return name, version


@cache
def installed_version(name: str) -> str | None:
    """The version of the installed distribution ``name``, or ``None`` when it is not installed."""
    try:
        from importlib_metadata import PackageNotFoundError, distribution
    except ImportError:  # pragma: no cover - installed as a dependency
        from importlib.metadata import PackageNotFoundError, distribution  # type: ignore[assignment]
    try:
        return name_and_version(distribution(name))[1]
    except PackageNotFoundError:
        return None
