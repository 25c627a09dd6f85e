"""What installing crystallize-dask adds to the ``crystallize`` command: ``crystallize dask-check``.

:data:`dask_check` is named in the ``crystallize.commands`` entry-point
group. Installing the distribution activates no plugin: an installed
executor must not take over experiments that did not ask for it, so
:class:`~crystallize_dask.DaskExecution` runs only where it is passed in
``plugins=[...]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from crystallize.plugin import COMMANDS_GROUP, PLUGINS_GROUP, Command

__all__ = ["dask_check", "check_cluster"]


def _configure(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", help="the scheduler's address, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--scheduler-file", help="the JSON file written by 'dask scheduler --scheduler-file'")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the scheduler")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def _crystallize_distributions() -> list[str]:
    """crystallize-core and every distribution providing an installed crystallize plugin or command."""
    from importlib.metadata import entry_points

    names = {"crystallize-core", "cloudpickle"}
    for group in (PLUGINS_GROUP, COMMANDS_GROUP):
        for ep in entry_points(group=group):
            dist = getattr(getattr(ep, "dist", None), "name", None)
            if dist and dist != "crystallize-dask":  # workers do not need this distribution
                names.add(dist)
    return sorted(names)


def _probe(distributions: list[str]) -> Any:
    """A function reporting the Python and package versions of the process it runs in.

    It is a nested function, so cloudpickle ships it by value: workers answer
    even when crystallize-dask itself is not installed there.
    """

    def probe() -> dict[str, Any]:
        import platform
        from importlib import metadata

        versions: dict[str, str | None] = {}
        for name in distributions:
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                versions[name] = None
        return {"python": ".".join(platform.python_version_tuple()[:2]), "packages": versions}

    return probe


def check_cluster(args: argparse.Namespace) -> int:
    """``crystallize dask-check``: compare the workers' environment with this one."""
    from distributed import Client

    probe = _probe(_crystallize_distributions())
    local = probe()

    where = args.address or args.scheduler_file
    try:
        if args.address:
            client = Client(args.address, timeout=args.timeout, set_as_default=False)
        else:
            client = Client(scheduler_file=args.scheduler_file, timeout=args.timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is reported the same way
        print(f"crystallize dask-check: cannot reach the scheduler ({where}): {exc}", file=sys.stderr)
        return 2
    try:
        address = client.scheduler.address
        workers = client.run(probe)
    finally:
        client.close()

    problems: dict[str, list[str]] = {}
    for worker, env in sorted(workers.items()):
        found = []
        if env["python"] != local["python"]:
            found.append(f"Python {env['python']} (here {local['python']})")
        for name, version in local["packages"].items():
            theirs = env["packages"].get(name)
            if theirs != version:
                found.append(f"{name} {theirs or 'missing'} (here {version or 'missing'})")
        problems[worker] = found
    status = 2 if not workers else 1 if any(problems.values()) else 0

    if args.json:
        print(json.dumps({"scheduler": address, "local": local, "workers": workers, "problems": problems}, indent=2))
    else:
        print(f"scheduler {address}: {len(workers)} worker(s)")
        for worker, found in problems.items():
            print(f"  {worker}: {'ok' if not found else '; '.join(found)}")
        if not workers:
            print("  no workers are connected")
    return status


dask_check = Command(
    name="dask-check",
    help="check that every worker of a Dask cluster can run this machine's replicates",
    description=(
        "Connect to a Dask scheduler and compare each worker's Python and crystallize package "
        "versions with this machine's. Exit status: 0 all match, 1 some worker differs, "
        "2 no workers or no scheduler."
    ),
    configure=_configure,
    run=check_cluster,
)
