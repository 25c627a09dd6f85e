"""What installing crystallize-artifacts adds to the ``crystallize`` command: ``crystallize verify``.

:data:`verify` is named in the ``crystallize.commands`` entry-point group.
Installing the distribution activates no plugin: an experiment stores
nothing until ``ArtifactPlugin(...)`` is passed in its ``plugins=[...]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crystallize.plugin import Command

__all__ = ["verify", "verify_command"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a run folder (v<N>), an experiment folder or a root")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def verify_command(args: argparse.Namespace) -> int:
    """``crystallize verify``: exit 0 when every file checks out, 1 for problems or
    when the path holds no runs, 2 for a path that is missing or not a folder."""
    from crystallize_artifacts.verify import NoRunsError, verify_path

    if not args.path.exists():
        print(f"crystallize verify: {args.path} does not exist")
        return 2
    try:
        report = verify_path(args.path)
    except (NoRunsError, OSError) as exc:
        print(f"crystallize verify: {exc}")
        return 2
    if not report:
        print(
            f"crystallize verify: no runs found in {args.path} (expected a run folder v<N>, an experiment "
            "folder holding v<N> folders, or a root holding experiment folders)"
        )
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for run, problems in report.items():
            print(f"{run}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
            for problem in problems:
                print(f"  - {problem}")
    return 1 if any(report.values()) else 0


verify = Command(
    name="verify",
    help="check stored artifacts against their manifest checksums",
    configure=_configure,
    run=verify_command,
)
