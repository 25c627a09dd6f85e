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

A check is a callable ``check(value, where) -> value`` that raises
:class:`WrongShape` with a sentence about ``where`` (the field's name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

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
    "decimal_key",
    "nullable",
    "list_of",
    "mapping_of",
]


class WrongShape(Exception):
    """Raised by a check; :func:`get` turns it into a :class:`DocumentError`."""


Check = Callable[[Any, str], Any]
#: default of :func:`get` for a field that must be present.
REQUIRED: Any = object()


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
        return check(doc[key], repr(key))
    except WrongShape as exc:
        raise DocumentError(source, str(exc)) from None
    except RecursionError:
        raise DocumentError(source, f"{key!r} is nested too deeply to be read") from None


def anything(value: Any, where: str) -> Any:
    """Any JSON value."""
    return value


def string(value: Any, where: str) -> str:
    """A JSON string."""
    if type(value) is not str:
        raise WrongShape(f"{where} is {describe(value)}, expected a string")
    return value


def boolean(value: Any, where: str) -> bool:
    """``true`` or ``false``."""
    if type(value) is not bool:
        raise WrongShape(f"{where} is {describe(value)}, expected true or false")
    return value


def integer(minimum: int | None = None) -> Check:
    """A JSON integer (not a boolean), at least ``minimum`` when given."""

    def check(value: Any, where: str) -> int:
        if type(value) is not int or (minimum is not None and value < minimum):
            expected = "an integer" if minimum is None else f"an integer >= {minimum}"
            raise WrongShape(f"{where} is {describe(value)}, expected {expected}")
        return value

    return check


def number(value: Any, where: str) -> float:
    """A JSON number (integer or not), never a boolean."""
    if type(value) not in (int, float):
        raise WrongShape(f"{where} is {describe(value)}, expected a number")
    return value


_HEX64 = re.compile(r"[0-9a-f]{64}")


def hex_digest(value: Any, where: str) -> str:
    """A SHA-256 hex digest (64 lowercase hex digits)."""
    if type(value) is not str or not _HEX64.fullmatch(value):
        raise WrongShape(f"{where} is {describe(value)}, expected a SHA-256 hex digest")
    return value


def decimal_key(value: Any, where: str) -> int:
    """An object key spelling a non-negative integer (``"3"``), returned as ``int``."""
    if type(value) is not str or not value.isascii() or not value.isdigit() or len(value) > 18:
        raise WrongShape(f"{where} is {describe(value)}, expected a replicate number")
    return int(value)


def nullable(check: Check) -> Check:
    """``null`` or what ``check`` accepts."""

    def nullable_check(value: Any, where: str) -> Any:
        return None if value is None else check(value, where)

    return nullable_check


def list_of(item: Check) -> Check:
    """A JSON list whose every item passes ``item``."""
    if item is anything:

        def any_list(value: Any, where: str) -> list[Any]:
            if type(value) is not list:
                raise WrongShape(f"{where} is {describe(value)}, expected a list")
            return value

        return any_list

    def check(value: Any, where: str) -> list[Any]:
        if type(value) is not list:
            raise WrongShape(f"{where} is {describe(value)}, expected a list")
        return [item(v, f"item {i} of {where}") for i, v in enumerate(value)]

    return check


def mapping_of(values: Check, keys: Check = string) -> Check:
    """A JSON object whose every key passes ``keys`` and every value ``values``."""

    def check(value: Any, where: str) -> dict[Any, Any]:
        if type(value) is not dict:
            raise WrongShape(f"{where} is {describe(value)}, expected an object")
        return {keys(k, f"a key of {where}"): values(v, f"{where}[{k!r}]") for k, v in value.items()}

    return check
