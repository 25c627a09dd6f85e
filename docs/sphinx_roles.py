"""Render the Sphinx markup of our docstrings as mkdocstrings Markdown.

The docstrings are written for ``help()`` and editors, in the Sphinx style
pytest and pluggy use (``:class:`Run```, ``:param run:``). mkdocstrings reads
``:param:`` fields itself (``docstring_style: sphinx``); this module turns the
rest into Markdown:

- cross-reference roles (``:class:``, ``:meth:``, ``:func:``, ``:data:``,
  ``:attr:``, ``:mod:``, ``:exc:``, ``:obj:``) become autorefs links
  (``[`Run`][crystallize.plugin.Run]``), so ``mkdocs build --strict`` fails on
  a reference to something the API reference does not document;
- a paragraph ending in ``::`` (reStructuredText's "a literal block follows")
  ends in ``:``; the indented block after it is a Markdown code block already.

Used twice: as a Griffe extension named in ``mkdocs.yml`` (the API
reference), and by ``generate_hook_reference.py`` (``docs/hooks.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import griffe

#: Our import packages: references into them become links, others stay code.
PACKAGES = (
    "crystallize",
    "crystallize_artifacts",
    "crystallize_metadata",
    "crystallize_resume",
    "crystallize_dask",
    "crystallize_progress",
)

ROLE = re.compile(r":(?:py:)?(class|meth|func|data|attr|mod|exc|obj):`([^`]+)`")
TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^>]+)>$")
LITERAL_MARK = re.compile(r"(\S)::$|^\s*::$", flags=re.M)


def ours(path: str) -> bool:
    """Whether ``path`` names something in one of our packages."""
    return path.split(".", 1)[0] in PACKAGES


def autoref(title: str, path: str) -> str:
    """A link that mkdocs-autorefs resolves to wherever the API reference documents ``path``."""
    return f"[`{title}`][{path}]"


def convert(text: str, resolve: Callable[[str], str | None], link: Callable[[str, str], str] = autoref) -> str:
    """Rewrite the Sphinx roles and ``::`` markers of a docstring as Markdown.

    ``resolve`` turns a name as written (``Run``, ``Experiment.run``,
    ``crystallize.plugin.Run``) into the full dotted path of the object, or
    ``None`` when it cannot; unresolved and foreign names are shown as code.
    ``link(title, path)`` writes the link to one of ours.
    """

    def replace(match: re.Match[str]) -> str:
        role, body = match.groups()
        titled = TITLED.match(body)
        if titled:
            title, target = titled["title"], titled["target"]
        else:
            target = body.lstrip("~")
            title = target.rsplit(".", 1)[-1] if body.startswith("~") else target
            if role in ("func", "meth"):
                title += "()"
        target = target.lstrip("~.")
        path = resolve(target)
        if path is None or not ours(path):
            return f"`{title}`"
        return link(title, path)

    text = ROLE.sub(replace, text)
    return LITERAL_MARK.sub(lambda m: f"{m[1]}:" if m[1] else "", text)


def griffe_resolver(obj: griffe.Object) -> Callable[[str], str | None]:
    """Resolve names as Python would inside ``obj``: its members, then its parents' and imports.

    An attribute without a docstring of its own is not rendered by the API
    reference; a reference to it leads to the class that documents it
    (``:ivar:`` fields, a sentence of the class docstring).
    """

    def resolve(name: str) -> str | None:
        if ours(name):
            path = name
        else:
            first, _, rest = name.partition(".")
            try:
                base = obj.resolve(first)
            except griffe.NameResolutionError:
                return None
            path = f"{base}.{rest}" if rest else base
        try:
            target = obj.modules_collection[path]
        except (KeyError, ValueError, griffe.AliasResolutionError):
            return path
        if target.is_attribute and not target.docstring and target.parent is not None and target.parent.is_class:
            return target.parent.path
        return path

    return resolve


class SphinxRoles(griffe.Extension):
    """Griffe extension: convert every docstring of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: object) -> None:
        self._convert(pkg, set())

    def _convert(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value, griffe_resolver(obj))
        for member in obj.members.values():
            if not member.is_alias:
                self._convert(member, seen)
