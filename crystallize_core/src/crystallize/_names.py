"""Validation of names that become path segments.

Artifact, step, condition and experiment names end up as folder and file
names on disk (and as keys in object stores). A name is rejected up front,
with an error that names the offending value, when it

- is empty, ``.`` or ``..``, or holds a path separator or a control
  character (it could escape its folder or produce a file nobody can open);
- is not valid Unicode (a lone surrogate has no UTF-8 spelling);
- is longer than :data:`MAX_NAME_BYTES` bytes in UTF-8: one path segment may
  have 255 bytes, and storage commits each file through a temporary name that
  adds up to :data:`TEMP_NAME_OVERHEAD` bytes to it;
- is a name Windows reserves for devices (``CON``, ``PRN``, ``AUX``, ``NUL``,
  ``COM0``-``COM9``, ``LPT0``-``LPT9``, in any letter case, with or without an
  extension, as in ``nul.txt``) or ends with a dot or a space (Windows drops
  them, so the name would change on disk).

Names that are fine one by one can still collide: case-insensitive file
systems (macOS and Windows by default) store ``Fast`` and ``fast`` in one
folder, and normalising ones (macOS) store the NFC and NFD spellings of
``é`` in one file. :func:`portable_key` maps a name to what such a file
system compares, and :func:`check_distinct` rejects two names of one
experiment that would land in the same place.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["check_name", "name_problem", "portable_key", "check_distinct", "MAX_NAME_BYTES", "TEMP_NAME_OVERHEAD"]

# Separators of every platform we may write to, plus C0/C1 control characters
# (NUL included) and DEL.
_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")
_SEGMENT_BYTES = 255  # the limit of one path segment on every common file system
#: the most a temporary file name adds to the name it commits (see crystallize-artifacts' commit module).
TEMP_NAME_OVERHEAD = 55
#: the longest name accepted, in UTF-8 bytes.
MAX_NAME_BYTES = _SEGMENT_BYTES - TEMP_NAME_OVERHEAD
# Device names Windows reserves in every folder, whatever the extension.
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"{device}{n}" for device in ("com", "lpt") for n in ("0123456789" + "\u00b9\u00b2\u00b3")]
)


@functools.lru_cache(maxsize=1 << 16)
def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a path segment, or ``None`` when it can (cached: names
    are checked where they are made and again where they are used)."""
    if value == "":
        return "it is empty"
    if value in (".", ".."):
        return "'.' and '..' are reserved path names"
    m = _FORBIDDEN.search(value)
    if m is not None:
        return f"it contains {m.group()!r} (path separators and control characters are not allowed)"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode (it holds a lone surrogate)"
    if size > MAX_NAME_BYTES:
        return (
            f"it is {size} bytes long in UTF-8; names may have at most {MAX_NAME_BYTES} bytes "
            f"(a path segment may have {_SEGMENT_BYTES}, and storage commits files through temporary "
            f"names up to {TEMP_NAME_OVERHEAD} bytes longer)"
        )
    if value.endswith((".", " ")):
        return "it ends with a dot or a space, which Windows drops (the name would change on disk)"
    if value.split(".", 1)[0].rstrip(" ").casefold() in _WINDOWS_RESERVED:
        return "Windows reserves it for a device (CON, PRN, AUX, NUL, COM0-9 and LPT0-9, with any extension)"
    return None


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is usable as a path segment, else raise.

    :param value: the proposed name.
    :param what: what is being named (``"artifact"``, ``"treatment"``, ...),
        used in the error message.
    :raises TypeError: if ``value`` is not a string.
    :raises ValueError: if ``value`` breaks one of the rules of this module.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} name must be a str, got {type(value).__name__}: {value!r}")
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(
            f"invalid {what} name {value!r}: {problem}. "
            f"Names become folder and file names; use letters, digits, '-', '_' or '.'."
        )
    return value


@functools.lru_cache(maxsize=1 << 16)
def portable_key(name: str) -> str:
    """What a case-insensitive, normalising file system compares: two names
    with the same key are the same file there (``"Fast"`` and ``"fast"``)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def check_distinct(names: Iterable[str], what: str) -> None:
    """Raise :class:`ValueError` if two different names of ``names`` have the
    same :func:`portable_key` (equal names are the caller's business)."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(portable_key(name), name)
        if other != name:
            raise ValueError(
                f"{what} names {other!r} and {name!r} differ only in letter case or Unicode normalisation; "
                "on macOS and Windows they would be the same folder or file and overwrite each other. "
                "Rename one of them"
            )
