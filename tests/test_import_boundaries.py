"""Distributions talk to the core through its public modules only.

Other distributions import ``crystallize`` (the user API) and
``crystallize.plugin`` (the plugin API), and their tests also
``crystallize.testing``; never a private core module. Our own docs and
READMEs import from the real homes, not from the crystallize-ml
compatibility paths (except the seed guide's samples, shown verbatim).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = [REPO / "crystallize_artifacts", *sorted(p for p in (REPO / "plugins").iterdir() if p.is_dir())]
ALLOWED = {"crystallize", "crystallize.plugin"}
ALLOWED_IN_TESTS = ALLOWED | {"crystallize.testing"}
COMPAT = re.compile(r"\bcrystallize\.(pipelines|plugins|utils|experiments|datasources)\b(?!\")")
PRIVATE = re.compile(r"\bcrystallize\._")
#: The seed guide's samples, kept word for word (they import the crystallize-ml paths on purpose).
SEED_VERBATIM = {
    REPO / "examples" / "artifact_chaining" / "experiment1.py",
    REPO / "examples" / "artifact_chaining" / "experiment2.py",
}


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts and "build" not in p.parts)


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "crystallize":
                found += [(node.lineno, f"crystallize.{a.name}") for a in node.names if a.name.startswith("_")]
    return [(line, name) for line, name in found if name == "crystallize" or name.startswith("crystallize.")]


@pytest.mark.parametrize("root", DISTRIBUTIONS, ids=lambda p: p.name)
def test_other_distributions_import_only_the_public_core(root):
    problems = []
    for path in _sources(root):
        text = path.read_text()
        allowed = ALLOWED_IN_TESTS if "tests" in path.relative_to(root).parts else ALLOWED
        for line, name in _imports(ast.parse(text)):
            if name not in allowed:
                problems.append(f"{path.relative_to(REPO)}:{line} imports {name}")
        for number, line in enumerate(text.splitlines(), 1):
            if PRIVATE.search(line):
                problems.append(f"{path.relative_to(REPO)}:{number} names a private core module: {line.strip()}")
    assert not problems, "\n".join(problems)


def _documents() -> list[Path]:
    return sorted(
        [
            REPO / "README.md",
            *REPO.glob("crystallize_*/README.md"),
            *REPO.glob("plugins/*/README.md"),
            *REPO.glob("docs/*.md"),
        ]
    )


@pytest.mark.parametrize("path", _documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_docs_name_real_homes_not_private_or_compatibility_paths(path):
    text = path.read_text()
    assert not PRIVATE.search(text), f"{path.relative_to(REPO)} names a private core module"
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        assert not COMPAT.search(block), (
            f"{path.relative_to(REPO)} imports a crystallize-ml compatibility path:\n{block}"
        )


def test_examples_import_real_homes_except_the_seed_guides_samples():
    for path in _sources(REPO / "examples"):
        if path in SEED_VERBATIM:
            continue
        text = path.read_text()
        assert not PRIVATE.search(text) and not COMPAT.search(text), f"{path.relative_to(REPO)}"


def test_the_boundary_check_sees_a_private_import(tmp_path):
    tree = ast.parse(
        "from crystallize._records import Run\nfrom crystallize import _registry\nimport crystallize.plugin\n"
    )
    assert [name for _, name in _imports(tree)] == [
        "crystallize._records",
        "crystallize",
        "crystallize._registry",
        "crystallize.plugin",
    ]
