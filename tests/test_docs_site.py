"""The documentation site builds with ``mkdocs build --strict``.

Strict mode turns every warning into a failure: a link to a page or an anchor
that does not exist, a page missing from the navigation, a docstring
cross-reference to something the API reference does not document.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import griffe
import yaml

REPO = Path(__file__).resolve().parents[1]
PLUGIN_PACKAGES = sorted(p.name for p in REPO.glob("plugins/*/src/crystallize_*"))


def build(site: Path, config: Path = REPO / "mkdocs.yml") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_site_builds_strictly_with_the_api_reference_and_every_readme(tmp_path):
    done = build(tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    reference = (tmp_path / "site" / "reference" / "plugin" / "index.html").read_text()
    assert 'id="crystallize.plugin.RunStore"' in reference  # rendered from the docstrings
    dask = (tmp_path / "site" / "distributions" / "crystallize-dask" / "index.html").read_text()
    assert "What travels to the workers" in dask  # the README, included


def test_our_validation_settings_fail_a_broken_link_a_missing_anchor_and_a_page_outside_the_nav(tmp_path):
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[gone](gone.md), [no anchor](other.md#nowhere)\n")
    (docs / "other.md").write_text("# Other\n")
    (docs / "orphan.md").write_text("# Orphan\n")
    config.update(docs_dir=str(docs), nav=["index.md", "other.md"])
    config["plugins"] = [p for p in config["plugins"] if not isinstance(p, dict)]  # no API reference needed here
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    done = build(tmp_path / "site", tmp_path / "mkdocs.yml")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "'gone.md'" in output and "'#nowhere'" in output and "orphan.md" in output, output


def test_no_docstring_puts_text_after_its_fields():
    """Text after ``:param:``/``:ivar:`` fields renders inside the last field's description: put it first."""
    loader = griffe.GriffeLoader(docstring_parser=griffe.Parser.sphinx)
    for package in ("crystallize", "crystallize_artifacts", *PLUGIN_PACKAGES):
        loader.load(package)
    swallowed = []

    def visit(obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        for section in obj.docstring.parse() if obj.docstring else ():
            fields = section.value if isinstance(section.value, list) else []
            for field in fields:
                if "\n\n" in (getattr(field, "description", "") or ""):
                    swallowed.append(f"{obj.path} ({getattr(field, 'name', '') or section.kind.value})")
        for member in obj.members.values():
            if not member.is_alias:
                visit(member, seen)

    seen: set[str] = set()
    for module in loader.modules_collection.members.values():
        visit(module, seen)
    assert not swallowed, "a paragraph follows the fields of: " + ", ".join(swallowed)
