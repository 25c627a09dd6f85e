"""Validation of names that become path segments.

Artifact, step, condition and experiment names end up as folder and file
names on disk (and as keys in object stores). A name that is empty, ``.`` or
``..``, or that holds a path separator or a control character could escape
its folder or produce a file nobody can open, so it is rejected up front with
an error that names the offending value.
"""

from __future__ import annotations

import re

__all__ = ["check_name"]

# Separators of every platform we may write to, plus C0/C1 control characters
# (NUL included) and DEL.
_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")
_MAX_BYTES = 255  # the usual limit of one path segment


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is usable as a path segment, else raise.

    :param value: the proposed name.
    :param what: what is being named (``"artifact"``, ``"treatment"``, ...),
        used in the error message.
    :raises TypeError: if ``value`` is not a string.
    :raises ValueError: if ``value`` is empty, ``.``/``..``, holds a path
        separator or a control character, or is longer than 255 bytes.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} name must be a str, got {type(value).__name__}: {value!r}")
    problem = None
    if value == "":
        problem = "it is empty"
    elif value in (".", ".."):
        problem = "'.' and '..' are reserved path names"
    elif (m := _FORBIDDEN.search(value)) is not None:
        problem = f"it contains {m.group()!r} (path separators and control characters are not allowed)"
    elif len(value.encode("utf-8", "surrogatepass")) > _MAX_BYTES:
        problem = f"it is longer than {_MAX_BYTES} bytes"
    if problem is not None:
        raise ValueError(
            f"invalid {what} name {value!r}: {problem}. "
            f"Names become folder and file names; use letters, digits, '-', '_' or '.'."
        )
    return value
