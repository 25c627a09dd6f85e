"""Find the code blocks of the documentation and turn each into something to run.

The conventions are documented in ``docs/contributing.md``; in short:

- every fenced block names its language (Python in an indented block is
  refused: it would never run); ``python`` blocks are complete
  programs, run as a script in an empty folder; ``bash`` blocks run with bash
  there; ``toml`` and ``json`` blocks must parse; ``text`` blocks are shown only;
- an HTML comment on the line before a fence, ``<!-- block: key=value ... -->``,
  says more: ``name=N`` (a later block may continue it), ``continues=N`` (a
  fragment: it runs after the block named ``N`` of the same page and
  everything that one continues), ``runner=pytest`` (a test module, run by
  pytest), ``raises=ErrorName`` (the program must fail with that exception),
  ``requires=module,...`` (skipped where a module cannot be imported),
  ``skip="reason"`` (shown, never run), ``timeout=seconds``.

Pages are collected, not listed: every ``docs/**/*.md`` and every README of
the repository (the root's, each distribution's, the benchmark suite's).
"""

from __future__ import annotations

import ast
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parents[1]

PYTHON = {"python", "py"}
SHELL = {"bash", "sh"}
PARSED = {"toml", "json"}
SHOWN = {"text"}
LANGUAGES = PYTHON | SHELL | PARSED | SHOWN
KEYS = {"name", "continues", "runner", "raises", "requires", "skip", "timeout"}
MARKER = "<!-- block:"


class ConventionError(ValueError):
    """A page breaks the conventions of docs/contributing.md; the message says where and how."""


@dataclass(eq=False)
class Block:
    """One fenced code block of a page, with the options its marker gave."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    options: dict[str, str] = field(default_factory=dict)
    chain: list[Block] = field(default_factory=list)  # the blocks it continues, first one first

    @property
    def where(self) -> str:
        return f"{shown(self.page)}:{self.line}"

    @property
    def program(self) -> str:
        """The code to run: the blocks this one continues, then its own."""
        return "\n".join(block.code for block in [*self.chain, self])

    @property
    def runs(self) -> bool:
        return self.language in PYTHON | SHELL | PARSED


def shown(page: Path) -> str:
    """The page's path as messages show it: relative to the repository when it is inside."""
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else str(page)


def pages() -> list[Path]:
    """Every page whose code blocks the suite runs: ``docs/**/*.md``, then every README of the repository."""
    docs = sorted((REPO / "docs").rglob("*.md"))
    readmes = sorted(
        readme
        for readme in REPO.glob("**/README.md")
        if readme.parent != REPO and not any(part.startswith(".") for part in readme.relative_to(REPO).parts)
    )
    return [*docs, REPO / "README.md", *readmes]


def looks_like_python(code: str) -> bool:
    """Whether ``code`` parses as Python that does something (not just a bare name or two)."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return False
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Name | ast.Constant)) for node in tree.body
    )


def parse_marker(text: str, where: str) -> dict[str, str]:
    body = text.strip()
    if not (body.startswith(MARKER) and body.endswith("-->")):
        raise ConventionError(f"{where}: a block marker is one line, <!-- block: key=value ... -->")
    options = {}
    for word in shlex.split(body[len(MARKER) : -3]):
        key, sep, value = word.partition("=")
        if not sep or key not in KEYS:
            raise ConventionError(f"{where}: {word!r} in a block marker; expected key=value, key one of {sorted(KEYS)}")
        options[key] = value
    return options


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, each linked to the blocks it continues.

    Raises :class:`ConventionError` for a fence without a known language, a
    marker that is not followed by a fence, or a ``continues`` naming no
    earlier block of the page.
    """
    tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
    found: list[Block] = []
    named: dict[str, Block] = {}
    pending: dict[str, str] | None = None
    pending_where = ""
    for token in tokens:
        where = f"{shown(page)}:{token.map[0] + 1 if token.map else '?'}"
        if token.type == "html_block" and token.content.lstrip().startswith(MARKER):
            if pending is not None:
                raise ConventionError(f"{pending_where}: block marker not followed by a fenced code block")
            pending, pending_where = parse_marker(token.content, where), where
            continue
        if token.type == "code_block" and looks_like_python(token.content):
            raise ConventionError(f"{where}: Python in an indented code block is never run; fence it (```python)")
        if token.type != "fence":
            if pending is not None:
                raise ConventionError(f"{pending_where}: block marker not followed by a fenced code block")
            continue
        language = token.info.split()[0] if token.info.strip() else ""
        if language not in LANGUAGES:
            raise ConventionError(
                f"{where}: fence language {language or '(none)'!r}; use one of {sorted(LANGUAGES)} "
                "(text for output, layouts and other things that do not run)"
            )
        block = Block(page, token.map[0] + 1, language, token.content, pending or {})
        pending = None
        if "continues" in block.options:
            parent = named.get(block.options["continues"])
            if parent is None:
                raise ConventionError(
                    f"{where}: continues={block.options['continues']!r}, but no earlier block of the page "
                    f"has that name (named so far: {sorted(named) or 'none'})"
                )
            if parent.language != block.language:
                raise ConventionError(f"{where}: a {block.language} block cannot continue a {parent.language} block")
            block.chain = [*parent.chain, parent]
        if "name" in block.options:
            if block.options["name"] in named:
                raise ConventionError(f"{where}: a block named {block.options['name']!r} already exists on the page")
            named[block.options["name"]] = block
        found.append(block)
    if pending is not None:
        raise ConventionError(f"{pending_where}: block marker not followed by a fenced code block")
    return found
