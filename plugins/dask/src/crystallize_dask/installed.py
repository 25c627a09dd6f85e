"""What the ``crystallize.plugins`` entry point registers: :data:`installed_plugin`.

An installed executor must not take over experiments that did not ask for
it, so the entry point does *not* register :class:`DaskExecution`. It
registers :class:`DaskCommands`, which implements no execution hook at all —
only ``register_commands``, adding ``crystallize dask-check``. It shares the
plugin name ``"dask"`` with :class:`DaskExecution`, so an experiment that
passes ``DaskExecution(...)`` in ``plugins=[...]`` replaces it, exactly like a
configured ``ArtifactPlugin`` replaces the installed one.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from crystallize.plugin import hookimpl

__all__ = ["DaskCommands", "installed_plugin"]


class DaskCommands:
    """The installed ``dask`` plugin: adds ``crystallize dask-check``, runs nothing."""

    plugin_name = "dask"

    @hookimpl
    def register_commands(self, subparsers: argparse._SubParsersAction) -> None:
        """Add ``crystallize dask-check``."""
        parser = subparsers.add_parser(
            "dask-check",
            help="check that every worker of a Dask cluster can run this machine's replicates",
            description=(
                "Connect to a Dask scheduler and compare each worker's Python and crystallize package "
                "versions with this machine's. Exit status: 0 all match, 1 some worker differs, "
                "2 no workers or no scheduler."
            ),
        )
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--address", help="the scheduler's address, e.g. tcp://10.0.0.5:8786")
        where.add_argument("--scheduler-file", help="the JSON file written by 'dask scheduler --scheduler-file'")
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the scheduler")
        parser.add_argument("--json", action="store_true", help="print JSON for machines")
        parser.set_defaults(func=check_cluster)

    def __repr__(self) -> str:
        return "DaskCommands()"


def _crystallize_distributions() -> list[str]:
    """crystallize-core and every distribution providing an installed crystallize plugin."""
    from importlib.metadata import entry_points

    from crystallize.plugin import PLUGINS_GROUP

    names = {"crystallize-core", "cloudpickle"}
    for ep in entry_points(group=PLUGINS_GROUP):
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


#: What the ``crystallize.plugins`` entry point names.
installed_plugin = DaskCommands()
