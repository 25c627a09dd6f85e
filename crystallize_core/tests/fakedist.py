"""Install-free "installed distributions" for entry-point tests.

A folder on ``sys.path`` holding ``<name>-<version>.dist-info/`` with
``METADATA`` and ``entry_points.txt`` is an installed distribution as far as
``importlib.metadata`` is concerned: exactly what pip leaves behind.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_distribution(
    site: Path,
    name: str,
    version: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    group: str = "crystallize.plugins",
) -> Path:
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"[{group}]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


COUNTER = """
from crystallize import hookimpl

class StepCounter:
    @hookimpl
    def after_step(self, step, ctx):
        ctx.metrics.add("seen_by_plugin", step.step_name)

plugin = StepCounter()
"""
