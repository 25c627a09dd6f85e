"""What the storage commands share: where the root is, which run an argument names, exit codes, output.

Exit codes of every storage command (``ls``, ``show``, ``diff``, ``report``,
``gc``, ``verify``):

====  =====================================================================
0     done
1     nothing to show: no runs, no such experiment or version (``verify``: problems found)
2     unusable arguments: a path that is not a folder, a malformed ``EXP@vN``, a missing option or extra
3     a stored document the command needs cannot be read (the message names the file)
====  =====================================================================
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from crystallize.plugin import DocumentError
from crystallize_artifacts.safepaths import UnsafePathError

__all__ = [
    "OK",
    "NOTHING",
    "USAGE",
    "UNREADABLE",
    "ROOT_ENV",
    "default_root",
    "add_root",
    "add_json",
    "resolve",
    "print_json",
    "strict_json",
    "fail",
    "guarded",
    "table",
    "when",
    "number",
]

OK, NOTHING, USAGE, UNREADABLE = 0, 1, 2, 3
#: the environment variable naming the default root.
ROOT_ENV = "CRYSTALLIZE_ROOT"


def default_root() -> Path:
    """``$CRYSTALLIZE_ROOT``, else ``./data`` (``ArtifactPlugin``'s default ``root_dir``)."""
    return Path(os.environ.get(ROOT_ENV) or "data")


def add_root(parser: argparse.ArgumentParser) -> None:
    """The ``--root DIR`` option."""
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the artifact root (default: ${ROOT_ENV}, else ./data)",
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    """The ``--json`` option."""
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


class CommandError(Exception):
    """Ends a command with a message and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int) -> CommandError:
    """An error ending the command with ``code`` (raise it)."""
    return CommandError(message, code)


def resolve(spec: str, root: Path | None) -> tuple[Path, int | None]:
    """``(experiment folder, version or None)`` for ``EXP``, ``EXP@vN``, or an experiment or run folder path."""
    from crystallize_artifacts.results import RunNotFoundError, locate

    path = Path(spec)
    try:
        if (os.sep in spec or spec.startswith(".") or root is None) and path.is_dir():
            return locate(path)
        return locate(root if root is not None else default_root(), spec)
    except RunNotFoundError as exc:
        raise fail(str(exc), NOTHING) from None
    except ValueError as exc:
        raise fail(str(exc), USAGE) from None


def strict_json(value: Any) -> Any:
    """``value`` for strict JSON: non-finite floats become ``null``, tuples lists, unknown objects text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [strict_json(v) for v in value]
    return str(value)


def print_json(value: Any) -> None:
    """Print ``value`` as strict JSON (no ``NaN``/``Infinity``, which many parsers refuse)."""
    print(json.dumps(strict_json(value), indent=2, allow_nan=False))


def guarded(name: str, run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run`` with :class:`CommandError`, unreadable documents and a broken pipe turned into exit codes."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except CommandError as exc:
            print(f"crystallize {name}: {exc}", file=sys.stderr)
            return exc.code
        except (DocumentError, UnsafePathError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):
                return OK  # `crystallize ls | head`
            print(f"crystallize {name}: {exc}", file=sys.stderr)
            return UNREADABLE

    wrapper.__doc__ = run.__doc__
    return wrapper


def table(rows: list[tuple[str, ...]], right: frozenset[int] = frozenset()) -> list[str]:
    """Rows (the first is the header) aligned in columns; ``right`` columns right-aligned."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    ]


def when(stamp: str | None) -> str:
    """``2026-05-01T12:00:03.120+00:00`` as ``2026-05-01 12:00:03`` (``-`` when unknown)."""
    if not stamp:
        return "-"
    return stamp.replace("T", " ")[:19]


def number(value: Any) -> str:
    """A number in four significant digits (``-`` for none), as the summary tables show them."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int) and abs(value) < 10**6:
        return str(value)
    return "0" if value == 0 else f"{value:.4g}"
