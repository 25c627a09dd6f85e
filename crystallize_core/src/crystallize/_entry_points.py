"""Installed distributions: entry points, names and versions, read cheaply.

Plugin discovery runs on the first ``run()`` of every process, so its cost is
part of every short script's run time. The standard ``importlib.metadata``
costs ~18 ms just to import (it loads :mod:`email`, :mod:`zipfile`,
:mod:`csv`, ...) and the ``importlib_metadata`` backport ~5 ms, and both then
build an object per installed distribution and parse every
``entry_points.txt`` into objects of every group.

What discovery needs is small: the ``[group]`` section of the
``entry_points.txt`` files that have one, and the ``Name``/``Version``
headers of the few distributions that provide them. This module reads
exactly that from the metadata folders (``*.dist-info``, ``*.egg-info``) of
the folders on ``sys.path``, as the library's path finder does, in the same
order. Where distributions may come from somewhere else — a ``sys.path``
entry that is a zip file, or an import hook on ``sys.meta_path`` that
provides distributions of its own — ``importlib_metadata`` is asked, so
nothing it would find is missed.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from functools import cache
from typing import Any

__all__ = ["Distribution", "EntryPoint", "entry_points", "installed_version", "name_and_version"]

_EXTRAS = re.compile(r"\s*\[[^\]]*\]\s*$")


class Distribution:
    """An installed distribution's metadata folder (``<name>-<version>.dist-info`` or ``.egg-info``)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def read_text(self, filename: str) -> str | None:
        """The text of one of its metadata files, or ``None`` when it has none by that name."""
        try:
            with open(os.path.join(self.path, filename), encoding="utf-8") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def __repr__(self) -> str:
        return f"<Distribution {self.path}>"


class EntryPoint:
    """One ``name = module:attribute`` line of an ``entry_points.txt`` group.

    The same three attributes and :meth:`load` as ``importlib.metadata.EntryPoint``.
    """

    __slots__ = ("group", "name", "value")

    def __init__(self, name: str, value: str, group: str) -> None:
        self.name = name
        self.value = value
        self.group = group

    def load(self) -> Any:
        """Import the module and return the object the value names (extras in ``[...]`` are ignored)."""
        module, _, attribute = _EXTRAS.sub("", self.value).partition(":")
        obj: Any = importlib.import_module(module.strip())
        for part in attribute.strip().split(".") if attribute.strip() else ():
            obj = getattr(obj, part)
        return obj

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntryPoint):
            return NotImplemented
        return (self.name, self.value, self.group) == (other.name, other.value, other.group)

    def __hash__(self) -> int:
        return hash((self.name, self.value, self.group))

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def entry_points(group: str) -> list[tuple[Any, Any]]:
    """``[(entry point, its distribution)]`` of ``group``, in ``sys.path`` order.

    Every ``entry_points.txt`` is read as bytes and only those holding a
    ``[group]`` header are decoded and parsed (the INI format of the entry
    points specification: ``[group]`` headers, ``name = object reference``).
    """
    if _other_finders():
        return _library_entry_points(group, sys.path)
    header = f"[{group}]".encode()
    found: list[tuple[Any, Any]] = []
    for entry in sys.path:
        index = _metadata_folders(entry)
        if index is None:  # a zip file: the library reads inside it
            found += _library_entry_points(group, [entry])
            continue
        for folders in index.values():
            for path in folders:
                raw = _read_bytes(os.path.join(path, "entry_points.txt"))
                if raw and header in raw:
                    text = raw.decode("utf-8")
                    found += [
                        (EntryPoint(key, value, group), Distribution(path)) for key, value in _section(text, group)
                    ]
    return found


#: {folder on sys.path: (its mtime, {normalised project name: [metadata folder paths]})}
_listings: dict[str, tuple[int, dict[str, list[str]]]] = {}


def _metadata_folders(entry: str) -> dict[str, list[str]] | None:
    """The metadata folders in one ``sys.path`` entry, by normalised project name.

    ``None`` for a file (a zip archive); empty for an entry that does not
    exist. Listed again only when the folder's modification time changed (an
    install or uninstall adds or removes a metadata folder), as the
    standard library's path finder does.
    """
    folder = entry or "."
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:  # missing or unreadable: it holds no distributions
        return {}
    cached = _listings.get(folder)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        names = os.listdir(folder)
    except NotADirectoryError:
        return None if os.path.isfile(folder) else {}
    except OSError:
        return {}
    index: dict[str, list[str]] = {}
    prefix = folder if folder.endswith(os.sep) else folder + os.sep
    for name in names:
        tail = name[-10:].lower()
        if tail == ".dist-info":
            stem = name[:-10]
        elif tail.endswith(".egg-info"):
            stem = name[:-9]
        else:
            continue
        index.setdefault(_normalise(stem.partition("-")[0]), []).append(prefix + name)
    _listings[folder] = (mtime, index)
    return index


_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def _read_bytes(path: str) -> bytes | None:
    """A small file's bytes (``None`` if absent): without a file object, most folders have none."""
    try:
        fd = os.open(path, os.O_RDONLY | _BINARY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _other_finders() -> bool:
    """Whether an import hook other than a path finder provides distributions.

    The standard ``PathFinder`` and the finder ``importlib_metadata`` adds to
    ``sys.meta_path`` when imported both read the ``sys.path`` folders read here.
    """
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is PathFinder or not hasattr(finder, "find_distributions"):
            continue
        kind = finder if isinstance(finder, type) else type(finder)
        if kind.__name__ == "MetadataPathFinder" and kind.__module__.startswith("importlib_metadata"):
            continue
        return True
    return False


def _library_entry_points(group: str, path: list[str]) -> list[tuple[Any, Any]]:
    try:
        from importlib_metadata import distributions
    except ImportError:  # pragma: no cover - installed as a dependency before 3.12
        from importlib.metadata import distributions  # type: ignore[assignment]
    return [(ep, dist) for dist in distributions(path=path) for ep in dist.entry_points if ep.group == group]


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
    """``(Name, Version)`` from a distribution's metadata headers; ``None`` where unknown.

    Only the two header lines are read: the libraries' ``name`` and
    ``version`` parse the whole ``METADATA`` file with :mod:`email`.
    """
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


def _normalise(name: str) -> str:
    """A project name as the packaging specifications compare them (``Foo.Bar-baz`` → ``foo_bar_baz``)."""
    plain = name.lower().replace("-", "_").replace(".", "_")
    return plain if "__" not in plain else re.sub("_+", "_", plain)


@cache
def installed_version(name: str) -> str | None:
    """The version of the installed distribution ``name``, or ``None`` when it is not installed.

    The first distribution of that name on ``sys.path`` counts, as for imports.
    """
    if _other_finders():
        return _library_version(name)
    wanted = _normalise(name)
    for entry in sys.path:
        index = _metadata_folders(entry)
        if index is None:
            found = _library_version(name, [entry])
            if found is not None:
                return found
            continue
        for path in index.get(wanted, ()):
            dist_name, version = name_and_version(Distribution(path))
            if dist_name is not None and _normalise(dist_name) == wanted:
                return version
    return None


def _library_version(name: str, path: list[str] | None = None) -> str | None:
    try:
        from importlib_metadata import PackageNotFoundError, distribution, distributions
    except ImportError:  # pragma: no cover - installed as a dependency before 3.12
        from importlib.metadata import PackageNotFoundError, distribution, distributions  # type: ignore[assignment]
    if path is not None:
        wanted = _normalise(name)
        for dist in distributions(path=path):
            found_name, version = name_and_version(dist)
            if found_name is not None and _normalise(found_name) == wanted:
                return version
        return None
    try:
        return name_and_version(distribution(name))[1]
    except PackageNotFoundError:
        return None
