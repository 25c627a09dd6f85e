"""import: the time of ``import crystallize`` in a fresh process.

Only ``sys`` and ``time`` are imported before the timed import, so modules the
framework shares with the standard library are paid by the framework, as in a
user's script. For ours, the entry-point discovery that the first experiment
triggers (``crystallize._registry.installed_plugins()``) is timed separately,
right after the import.
"""

import sys
import time


def main() -> None:
    framework = sys.argv[sys.argv.index("--framework") + 1] if "--framework" in sys.argv else None
    start = time.perf_counter()
    import crystallize  # noqa: F401 - the thing measured

    imported = time.perf_counter() - start
    values = {"import_ms": imported * 1e3}
    info = {"modules_loaded": len(sys.modules)}
    if framework == "ours":
        from crystallize import _registry

        start = time.perf_counter()
        plugins = _registry.installed_plugins()
        discovery = time.perf_counter() - start
        values["discovery_ms"] = discovery * 1e3
        values["import_and_discovery_ms"] = (imported + discovery) * 1e3
        info["installed_plugins"] = sorted(f"{p.name} ({p.distribution} {p.version})" for p in plugins)
        info["failures"] = _registry.load_failures()

    # Only now is the shared helper imported (argparse, json, ... would skew the import).
    import _common

    if framework not in _common.FRAMEWORKS:
        raise SystemExit(f"usage: {sys.argv[0]} --framework ours|cml")
    _common.framework(framework)  # refuses a venv holding the other framework
    info["distributions"] = installed_distributions()
    _common.emit("import", framework, values, info)


def installed_distributions() -> list[str]:
    from importlib import metadata

    names = {
        f"{d.metadata['Name']} {d.version}"
        for d in metadata.distributions()
        if (d.metadata["Name"] or "").lower().startswith("crystallize")
    }
    return sorted(names)


if __name__ == "__main__":
    main()
