"""The core's layout: a few public modules, private ones, and a marked compatibility area."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import crystallize

PACKAGE = Path(crystallize.__file__).parent

#: Modules users and plugin authors import; everything else is private (leading underscore).
PUBLIC = {"__init__", "__main__", "plugin", "hookspecs", "errors", "stats", "testing"}
#: Public packages (their own submodules are private).
PUBLIC_PACKAGES = {"stats"}

#: Packages that exist only so crystallize-ml 0.27 imports keep working.
COMPAT_PACKAGES = ("pipelines", "plugins", "utils", "experiments", "datasources")
COMPAT_HEADER = "Compatibility path for crystallize-ml 0.27 code; the real home is "


def _compat_modules() -> list[Path]:
    return sorted(path for package in COMPAT_PACKAGES for path in (PACKAGE / package).glob("*.py"))


def _dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_top_level_modules_are_public_by_name_or_private():
    for path in PACKAGE.glob("*.py"):
        assert path.stem in PUBLIC or path.stem.startswith("_"), f"{path.name} must be private (_{path.name})"
    for folder in PACKAGE.iterdir():
        if folder.is_dir() and (folder / "__init__.py").exists():
            public = folder.name in PUBLIC_PACKAGES or folder.name in COMPAT_PACKAGES
            assert folder.name.startswith("_") or public, f"package {folder.name} is public"
            if folder.name in PUBLIC_PACKAGES:
                inner = [p.name for p in folder.glob("*.py") if p.stem != "__init__" and not p.stem.startswith("_")]
                assert not inner, f"{folder.name}/{inner} must be private: the package's __init__ is its API"


@pytest.mark.parametrize("path", _compat_modules(), ids=lambda p: _dotted(p))
def test_compatibility_modules_only_re_export(path):
    tree = ast.parse(path.read_text())
    doc = ast.get_docstring(tree) or ""
    assert doc.startswith(COMPAT_HEADER), f"{_dotted(path)} must start its docstring with {COMPAT_HEADER!r}"
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    defined = [f"{type(n).__name__} at line {n.lineno}" for n in ast.walk(tree) if isinstance(n, definitions)]
    assert not defined, f"{_dotted(path)} defines {defined}; compatibility modules only re-export"


@pytest.mark.parametrize(
    ("old_path", "name"),
    [
        ("crystallize.pipelines.pipeline_step", "PipelineStep"),
        ("crystallize.pipelines.pipeline_step", "pipeline_step"),
        ("crystallize.pipelines.pipeline", "Pipeline"),
        ("crystallize.pipelines", "Pipeline"),
        ("crystallize.plugins.plugins", "SeedPlugin"),
        ("crystallize.plugins.plugins", "ParallelExecution"),
        ("crystallize.plugins.execution", "SerialExecution"),
        ("crystallize.plugins.execution", "AsyncExecution"),
        ("crystallize.plugins.plugins", "BasePlugin"),
        ("crystallize.plugins.plugins", "LoggingPlugin"),
        ("crystallize.utils.context", "FrozenContext"),
        ("crystallize.utils.exceptions", "ContextMutationError"),
        ("crystallize.utils.injection", "inject_from_ctx"),
        ("crystallize.utils.decorators", "treatment"),
        ("crystallize.utils.decorators", "verifier"),
        ("crystallize.utils.decorators", "resource_factory"),
        ("crystallize.experiments.experiment", "Experiment"),
        ("crystallize.experiments.experiment_builder", "ExperimentBuilder"),
        ("crystallize.experiments.experiment_graph", "ExperimentGraph"),
        ("crystallize.experiments.treatment", "Treatment"),
        ("crystallize.experiments.hypothesis", "Hypothesis"),
        ("crystallize.experiments.result", "Result"),
        ("crystallize.experiments.optimizers", "BaseOptimizer"),
        ("crystallize.experiments.optimizers", "Objective"),
        ("crystallize.datasources", "Artifact"),
        ("crystallize.datasources.datasource", "DataSource"),
        ("crystallize.datasources.datasource", "ExperimentInput"),
        ("crystallize.datasources.registry", "get_datasource"),
    ],
)
def test_crystallize_ml_import_paths_give_the_public_objects(old_path, name):
    assert getattr(importlib.import_module(old_path), name) is getattr(crystallize, name)


def test_every_module_of_the_compatibility_area_imports_without_error():
    for path in _compat_modules():
        importlib.import_module(_dotted(path))


def test_importing_crystallize_loads_no_compatibility_module():
    import subprocess
    import sys

    code = (
        "import crystallize, sys; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] == 'crystallize' and m.split('.')[1:2] "
        f"and m.split('.')[1] in {COMPAT_PACKAGES!r}))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"import crystallize loaded {loaded}"
