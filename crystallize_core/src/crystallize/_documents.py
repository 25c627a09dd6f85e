"""Reading JSON documents back from disk: one clear error for every wrong shape.

A document a plugin reads back (its own bookkeeping, another run's metadata)
may have been truncated by a full disk, edited by hand, or written by
someone else. Readers turn it into a typed record (an ``attrs`` class) and
check every field they use with the small checks here; a wrong shape raises
:class:`~crystallize.errors.DocumentError` naming the file and the field,
never an ``AttributeError`` or ``TypeError`` from deep inside the reader::

    doc = documents.parse_json(raw, source=str(path))
    obj = documents.expect_object(doc, source)
    replicates = documents.get(obj, "replicates", documents.integer(minimum=1), source, default=None)

A check is a callable ``check(value) -> value`` that raises
:class:`WrongShape` with a sentence about the value; containers add where it
sits, :func:`get` the field and the file — only when a check fails, so a
well-formed document costs no string formatting.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from crystallize._digests import digest_problem
from crystallize.errors import DocumentError

__all__ = [
    "DocumentError",
    "WrongShape",
    "Check",
    "REQUIRED",
    "parse_json",
    "expect_object",
    "get",
    "describe",
    "anything",
    "string",
    "boolean",
    "integer",
    "number",
    "hex_digest",
    "tagged_digest",
    "decimal_key",
    "decimal_string",
    "nullable",
    "list_of",
    "mapping_of",
    "lists_by_name",
]


class WrongShape(Exception):
    """Raised by a check with a sentence about the value (``"is a string ('x'), expected a list"``);
    containers add where the value sits (:meth:`at`) and :func:`get` names the field and the file."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = ""

    def at(self, segment: str) -> WrongShape:
        """Prefix the location of the offending value (``[3]``, ``['name']``)."""
        self.path = segment + self.path
        return self

    def sentence(self, where: str) -> str:
        return f"{where}{self.path} {self.problem}"


#: ``check(value) -> value``: returns the value (or a converted one), raises :class:`WrongShape`.
Check = Callable[[Any], Any]
#: default of :func:`get` for a field that must be present.
REQUIRED: Any = object()


def _expected(value: Any, what: str) -> WrongShape:
    return WrongShape(f"is {describe(value)}, expected {what}")


def describe(value: Any) -> str:
    """``value``'s JSON type as a noun phrase (``"a string"``, ``"null"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, int):
        return f"an integer ({value})" if abs(value) < 10**12 else "an integer"
    if isinstance(value, float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r}{'...' if len(value) > 40 else ''})"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def parse_json(raw: bytes, source: str) -> Any:
    """Decode ``raw``; invalid UTF-8 or JSON, or nesting too deep, is a :class:`DocumentError`."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise DocumentError(source, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise DocumentError(source, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise DocumentError(source, "nested too deeply to be read") from None


def expect_object(value: Any, source: str, what: str = "the document") -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else a :class:`DocumentError`."""
    if not isinstance(value, dict):
        raise DocumentError(source, f"{what} is {describe(value)}, not a JSON object")
    return value


def get(doc: Mapping[str, Any], key: str, check: Check, source: str, *, default: Any = REQUIRED) -> Any:
    """``doc[key]`` checked by ``check``; ``default`` when absent (an error if :data:`REQUIRED`)."""
    if key not in doc:
        if default is REQUIRED:
            raise DocumentError(source, f"{key!r} is missing")
        return default
    try:
        return check(doc[key])
    except WrongShape as exc:
        raise DocumentError(source, exc.sentence(repr(key))) from None
    except RecursionError:
        raise DocumentError(source, f"{key!r} is nested too deeply to be read") from None


def anything(value: Any) -> Any:
    """Any JSON value."""
    return value


def string(value: Any) -> str:
    """A JSON string."""
    if type(value) is not str:
        raise _expected(value, "a string")
    return value


def boolean(value: Any) -> bool:
    """``true`` or ``false``."""
    if type(value) is not bool:
        raise _expected(value, "true or false")
    return value


def integer(minimum: int | None = None) -> Check:
    """A JSON integer (not a boolean), at least ``minimum`` when given."""
    expected = "an integer" if minimum is None else f"an integer >= {minimum}"

    def check(value: Any) -> int:
        if type(value) is not int or (minimum is not None and value < minimum):
            raise _expected(value, expected)
        return value

    return check


def number(value: Any) -> float:
    """A JSON number (integer or not), never a boolean."""
    if type(value) not in (int, float):
        raise _expected(value, "a number")
    return value


_HEX64 = re.compile(r"[0-9a-f]{64}")


def hex_digest(value: Any) -> str:
    """A SHA-256 hex digest (64 lowercase hex digits)."""
    if type(value) is not str or not _HEX64.fullmatch(value):
        raise _expected(value, "a SHA-256 hex digest")
    return value


def tagged_digest(value: Any) -> str:
    """An artifact digest tagged with its algorithm (``"blake3:<hex>"``, ``"sha256:<hex>"``):
    well formed, of a known algorithm, with as many hex digits as that algorithm gives."""
    problem = digest_problem(value)
    if problem is not None:
        shown = f"a string ({value[:120]!r})" if type(value) is str else describe(value)
        raise WrongShape(f"is {shown}, not a valid digest: {problem}")
    return value  # type: ignore[no-any-return]


def decimal_key(value: Any) -> int:
    """An object key spelling a non-negative integer (``"3"``), returned as ``int``."""
    return int(decimal_string(value))


def decimal_string(value: Any) -> str:
    """An object key spelling a non-negative integer (``"3"``), returned as it is."""
    if type(value) is not str or not value.isdecimal() or len(value) > 18:
        raise _expected(value, "a replicate number")
    return value


def nullable(check: Check) -> Check:
    """``null`` or what ``check`` accepts."""

    def nullable_check(value: Any) -> Any:
        return None if value is None else check(value)

    return nullable_check


def list_of(item: Check) -> Check:
    """A JSON list whose every item passes ``item`` (returned as it is when no item changed)."""

    def check(value: Any) -> list[Any]:
        if type(value) is not list:
            raise _expected(value, "a list")
        if item is anything:
            return value
        out = None
        for index, element in enumerate(value):
            try:
                checked = item(element)
            except WrongShape as exc:
                raise exc.at(f"[{index}]") from None
            if out is None:
                if checked is element:
                    continue
                out = value[:index]
            out.append(checked)
        return value if out is None else out

    return check


def lists_by_name(value: Any) -> dict[str, list[Any]]:
    """``{name: [values]}`` (what metrics look like), checked in one quick pass."""
    if type(value) is dict:
        for key, element in value.items():
            if type(key) is not str or type(element) is not list:
                break
        else:
            return value
    return _LISTS_BY_NAME(value)  # the slow path, for its message


def mapping_of(values: Check, keys: Check = string) -> Check:
    """A JSON object whose every key passes ``keys`` and every value ``values``
    (returned as it is when no key or value changed)."""

    def check(value: Any) -> dict[Any, Any]:
        if type(value) is not dict:
            raise _expected(value, "an object")
        out = None
        for index, (key, element) in enumerate(value.items()):
            try:
                checked_key = keys(key)
            except WrongShape as exc:
                raise WrongShape(f"has a key that {exc.problem}") from None
            try:
                checked = values(element)
            except WrongShape as exc:
                raise exc.at(f"[{key!r}]") from None
            if out is None:
                if checked_key is key and checked is element:
                    continue
                out = dict(itertools.islice(value.items(), index))
            out[checked_key] = checked
        return value if out is None else out

    return check


_LISTS_BY_NAME = mapping_of(list_of(anything))
