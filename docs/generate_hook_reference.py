"""Write docs/hooks.md from crystallize/hookspecs.py and docs/hook_examples/.

python docs/generate_hook_reference.py          # rewrite docs/hooks.md
python docs/generate_hook_reference.py --check  # exit 1 if it is stale

Each hook's entry is its docstring (cross-references become links into the API
reference), a complete example program — ``docs/hook_examples/<hook>.py``,
whose docstring is the sentence introducing it; the test suite runs it from
this page — and links to the in-tree plugins that implement the hook, found by
looking for ``@hookimpl`` methods on the classes the public modules export.
"""

from __future__ import annotations

import ast
import importlib
import sys
import textwrap
from pathlib import Path

import griffe
import tomllib
from markdown_it import MarkdownIt
from sphinx_roles import convert, griffe_resolver

from crystallize._dispatch import HOOK_NAMES, ISOLATED_HOOKS, WRAPPER_ONLY_HOOKS

DOCS = Path(__file__).resolve().parent
TARGET = DOCS / "hooks.md"
EXAMPLES = DOCS / "hook_examples"
FIRSTRESULT_SENTENCE = "Stops at first non-None result."

#: Public modules and the API reference page documenting each (see mkdocs.yml's nav).
REFERENCE_PAGES = {
    "crystallize": "reference/crystallize.md",
    "crystallize.plugin": "reference/plugin.md",
    "crystallize.hookspecs": "reference/hookspecs.md",
    "crystallize.errors": "reference/errors.md",
    "crystallize.stats": "reference/stats.md",
    "crystallize.testing": "reference/testing.md",
    "crystallize_artifacts": "reference/artifacts.md",
    "crystallize_metadata": "reference/metadata.md",
    "crystallize_resume": "reference/resume.md",
    "crystallize_dask": "reference/dask.md",
    "crystallize_progress": "reference/progress.md",
}


class ReferenceError(Exception):
    """The hook docstrings or examples cannot be rendered; the message says what to fix."""


class Links:
    """Turn a dotted path into a link to the API reference page that documents it."""

    def __init__(self, modules: dict[str, griffe.Module]) -> None:
        self.public: dict[str, str] = {}  # canonical (often private) path -> public path
        for module_path, module in modules.items():
            for name in module.exports or ():
                canonical = module[name].canonical_path
                if any(part.startswith("_") for part in canonical.split(".")):
                    self.public.setdefault(canonical, f"{module_path}.{name}")

    def to_public(self, path: str) -> str:
        parts = path.split(".")
        for cut in range(len(parts), 0, -1):
            home = self.public.get(".".join(parts[:cut]))
            if home is not None:
                return ".".join([home, *parts[cut:]])
        return path

    def url(self, path: str) -> str:
        public = self.to_public(path)
        module = max((m for m in REFERENCE_PAGES if public == m or public.startswith(m + ".")), key=len, default=None)
        if module is None or "._" in public:
            raise ReferenceError(f"{path} is not documented in the API reference (docs/reference/)")
        return f"{REFERENCE_PAGES[module]}#{public}"

    def markdown(self, title: str, path: str) -> str:
        return f"[`{title}`]({self.url(path)})"


def load_public_modules() -> dict[str, griffe.Module]:
    loader = griffe.GriffeLoader(docstring_parser=griffe.Parser.sphinx)
    modules = {}
    for module_path in REFERENCE_PAGES:
        package = module_path.split(".")[0]
        loaded = loader.modules_collection[package] if package in loader.modules_collection else loader.load(package)
        modules[module_path] = loaded if module_path == package else loaded[module_path.split(".", 1)[1]]
    loader.resolve_aliases(implicit=True, external=False)
    return modules


def fence_literal_blocks(text: str) -> str:
    """Fence the indented code blocks of a docstring's Markdown.

    Python becomes a ``python`` block marked as an excerpt the docs tests do
    not run (each hook's complete example follows it); anything else (the
    lifecycle diagram) a ``text`` block.
    """
    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").parse(text)
    for token in reversed([t for t in tokens if t.type == "code_block" and t.map]):
        start, end = token.map
        while end > start and not lines[end - 1].strip():
            end -= 1
        code = textwrap.dedent("\n".join(lines[start:end]))
        if looks_like_python(code):
            fence = ['<!-- block: skip="an excerpt; the complete example follows" -->', "```python"]
        else:
            fence = ["```text"]
        lines[start:end] = [*fence, *code.split("\n"), "```"]
    return "\n".join(lines)


def looks_like_python(code: str) -> bool:
    """Whether ``code`` parses as Python that does something (as ``tests/doc_blocks.py`` decides)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Name | ast.Constant)) for node in tree.body
    )


def docstring_markdown(obj: griffe.Object, links: Links) -> list[str]:
    """``obj``'s docstring as Markdown: text with links, then a list of its parameters."""
    text = convert(obj.docstring.value if obj.docstring else "", griffe_resolver(obj), links.markdown)
    lines: list[str] = []
    for section in griffe.Docstring(text, parent=obj, parser="sphinx").parse():
        if section.kind is griffe.DocstringSectionKind.text:
            lines += [fence_literal_blocks(section.value), ""]
        elif section.kind is griffe.DocstringSectionKind.parameters:
            lines.append("**Parameters**")
            lines.append("")
            lines += [f"- `{p.name}` — {' '.join(p.description.split())}" for p in section.value]
            lines.append("")
        else:
            raise ReferenceError(f"{obj.path}: docstring section {section.kind.value!r} is not rendered; use text")
    return lines


def example(name: str) -> tuple[str, str]:
    """The introducing sentence and the program of ``docs/hook_examples/<name>.py``."""
    path = EXAMPLES / f"{name}.py"
    if not path.is_file():
        raise ReferenceError(f"hook {name!r} has no example: write docs/hook_examples/{name}.py")
    source = path.read_text()
    tree = ast.parse(source)
    intro = ast.get_docstring(tree)
    if not intro:
        raise ReferenceError(f"{path.name}: start with a docstring saying what the example does")
    code = source.splitlines()[tree.body[0].end_lineno :]
    return intro, "\n".join(code).strip() + "\n"


def distribution(module: object) -> str:
    """The name of the workspace distribution holding ``module`` (from the nearest ``pyproject.toml``)."""
    folder = Path(module.__file__).resolve().parent
    while not (folder / "pyproject.toml").is_file():
        folder = folder.parent
    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"]


def implementations() -> dict[str, list[str]]:
    """``{hook: [markdown link to an in-tree implementation, ...]}``, from the public modules' exports."""
    found: dict[str, list[str]] = {}
    seen: set[type] = set()
    for module_path, page in REFERENCE_PAGES.items():
        module = importlib.import_module(module_path)
        for export in getattr(module, "__all__", ()):
            cls = getattr(module, export)
            if not isinstance(cls, type) or cls in seen:
                continue
            seen.add(cls)
            dist = distribution(importlib.import_module(cls.__module__))
            for attribute in sorted(dir(cls)):
                options = getattr(getattr(cls, attribute, None), "crystallize_impl", None)
                if options is None:
                    continue
                hook = options.get("specname") or attribute
                link = f"[`{export}.{attribute}`]({page}#{module_path}.{export})"  # the class page shows its source
                found.setdefault(hook, []).append(f"{link} ({dist})")
    return found


def render() -> str:
    modules = load_public_modules()
    links = Links(modules)
    hookspecs = modules["crystallize.hookspecs"]
    implemented = implementations()
    known = {path.stem for path in EXAMPLES.glob("*.py")}
    if known - set(HOOK_NAMES):
        raise ReferenceError(f"examples for hooks that do not exist: {sorted(known - set(HOOK_NAMES))}")
    lines = [
        "# Hook reference",
        "",
        "Generated by `docs/generate_hook_reference.py` from the docstrings in `crystallize/hookspecs.py`",
        "and the examples in `docs/hook_examples/`; edit those, not this file. Every example is a",
        "complete program, run by the test suite.",
        "",
        *docstring_markdown(hookspecs, links),
        "## Hooks",
        "",
    ]
    for name in HOOK_NAMES:
        spec = hookspecs[name]
        runtime = getattr(importlib.import_module("crystallize.hookspecs"), name)
        firstresult = getattr(runtime, "crystallize_spec", {}).get("firstresult")
        if firstresult and FIRSTRESULT_SENTENCE not in (spec.docstring.value if spec.docstring else ""):
            raise ReferenceError(f"hook {name!r} is firstresult: its docstring must say {FIRSTRESULT_SENTENCE!r}")
        parameters = ", ".join(
            f"{p.name}: {p.annotation}" if p.annotation is not None else p.name for p in spec.parameters
        )
        lines += [f"### `{name}`", "", f"`{name}({parameters}) -> {spec.returns}`", ""]
        if name in ISOLATED_HOOKS:
            lines += ["*isolated*: every implementation runs, even when another raises.", ""]
        if name in WRAPPER_ONLY_HOOKS:
            lines += ["*wrapper*: implement it with `@hookimpl(wrapper=True)`.", ""]
        lines += docstring_markdown(spec, links)
        intro, code = example(name)
        lines += [f"**Example.** {' '.join(intro.split())}", "", "```python", code.rstrip("\n"), "```", ""]
        if implemented.get(name):
            lines += [f"**In the tree:** {', '.join(implemented[name])}.", ""]
        else:
            lines += ["**In the tree:** no bundled plugin implements it; the example above is a complete one.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    try:
        text = render()
    except ReferenceError as error:
        print(f"docs/hooks.md cannot be generated: {error}")
        return 1
    if "--check" in sys.argv:
        if TARGET.read_text() != text:
            print("docs/hooks.md is out of date: run python docs/generate_hook_reference.py")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
