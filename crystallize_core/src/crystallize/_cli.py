"""The ``crystallize`` command.

``crystallize plugins [--json]`` lists the active plugins; ``crystallize run
FILE_OR_MODULE:EXPERIMENT`` runs an experiment or graph. Installed
distributions add further sub-commands through the ``crystallize.commands``
entry-point group (see :class:`crystallize.plugin.Command`):
``crystallize-artifacts`` adds ``ls``, ``show``, ``diff``, ``report``, ``gc``
and ``verify``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from crystallize import __version__
from crystallize._commands import Command, load_commands

__all__ = ["main", "build_parser", "PLUGINS_COMMAND"]


def _configure_plugins(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


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


PLUGINS_COMMAND = Command(
    name="plugins",
    help="list active plugins, their distributions and hooks",
    configure=_configure_plugins,
    run=_plugins,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``crystallize``, with the built-in and every installed command."""
    parser = argparse.ArgumentParser(prog="crystallize", description="Reproducible experiments: plugin tools.")
    parser.add_argument("--version", action="version", version=f"crystallize-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from crystallize._run_command import RUN_COMMAND

    built_in = [PLUGINS_COMMAND, RUN_COMMAND]
    installed, problems = load_commands(reserved={command.name for command in built_in})
    for command in [*built_in, *(command for command, _ in installed)]:
        child = sub.add_parser(command.name, help=command.help, description=command.description or command.help)
        command.configure(child)
        child.set_defaults(_crystallize_run=command.run)
    for problem in problems:
        print(f"warning: {problem} (skipped; set CRYSTALLIZE_STRICT_PLUGINS=1 to make this an error)", file=sys.stderr)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``crystallize`` with ``argv`` (the process's arguments by default); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_crystallize_run", None)
    if run is None:
        parser.print_help()
        return 0
    return int(run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
