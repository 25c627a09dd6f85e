"""The ``crystallize`` command.

``crystallize plugins [--json]`` lists the active plugins; installed plugins
add further sub-commands through the ``register_commands`` hook
(``crystallize-artifacts`` adds ``crystallize verify``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from crystallize import __version__

__all__ = ["main"]


def _plugins(args: argparse.Namespace) -> int:
    from crystallize._registry import build_manager, describe_plugins, load_failures

    pm, infos = build_manager([])
    rows = describe_plugins(pm, infos)
    failures = load_failures()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            dist = f"{row['distribution']} {row['version'] or ''}".strip() if row["distribution"] else "-"
            print(f"{row['name']}  ({dist}, {row['source']})")
            print(f"    hooks: {', '.join(row['hooks']) or '-'}")
    for failure in failures:
        print(f"warning: {failure}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crystallize", description="Reproducible experiments: plugin tools.")
    parser.add_argument("--version", action="version", version=f"crystallize-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    listing = sub.add_parser("plugins", help="list active plugins, their distributions and hooks")
    listing.add_argument("--json", action="store_true", help="print JSON for machines")
    listing.set_defaults(func=_plugins)

    from crystallize._registry import build_manager

    pm, _ = build_manager([])
    pm.hook.register_commands(subparsers=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    return int(func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
