"""Code fingerprints: a short hash of what a function or class *does*.

An experiment's identity covers the code of its steps, its datasource, its
treatments and its hypotheses, so that two experiments that differ in code
never share a run folder and resume never returns results of code that
changed. A fingerprint must therefore be the same in every process that runs
the same code — a script run as ``__main__`` and the same file imported as a
module included — and change when the code's behaviour may change.

What is hashed:

- **functions and lambdas** — their source, parsed and normalised: the syntax
  tree without comments, docstrings, blank lines, indentation, line breaks or
  redundant parentheses (a reformatted function keeps its fingerprint; a
  changed constant, name or operator changes it). Where the source cannot be
  found (code typed at a prompt, ``exec`` of a string, ``.pyc``-only
  installs) the bytecode is hashed instead: it is stable within one Python
  version. Closure variables holding immutable values (numbers, strings,
  tuples of them...) or code (functions, classes, partials) are included;
  mutable ones (lists, dicts, objects) are state, not definition, and are
  not, and neither are variables the function rebinds (``nonlocal``).
- **classes** — every function defined in the class body (methods,
  properties, static and class methods, nested classes) and its immutable
  class attributes, plus the same for each of its own base classes.
- ``functools.partial`` — the function's fingerprint and the bound arguments
  (by :func:`crystallize._identity.describe`); bound methods — the function.

What is *not* hashed: module-level names a function uses — helper functions
it calls, constants, imported libraries. Code of the framework itself
(``crystallize`` and ``crystallize_*`` packages) and of installed libraries
(standard library, ``site-packages``) is named (``module.qualname``), not
hashed: their versions are recorded in the run's metadata instead.

Fingerprints are cached per code object and per class, so each is computed
once per process.
"""

from __future__ import annotations

import ast
import dis
import functools
import hashlib
import linecache
import os
import sys
import types
import weakref
from typing import Any

__all__ = ["code_fingerprint", "is_library_code", "FINGERPRINT_LENGTH"]

FINGERPRINT_LENGTH = 16

_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = (tuple, frozenset)

#: attributes every class has that say nothing about what it does
_CLASS_NOISE = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__doc__",
        "__module__",
        "__qualname__",
        "__annotations__",
        "__abstractmethods__",
        "__parameters__",
        "__orig_bases__",
        "__slots__",
        "__firstlineno__",
        "__static_attributes__",
        "_abc_impl",
    }
)

#: {id(code): (code, text)} — by identity: code objects compare equal by value, and two
#: functions with equal code can differ in their defaults (which live in the source)
_code_cache: dict[int, tuple[types.CodeType, str]] = {}
_class_cache: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
_library_cache: dict[str, bool] = {}


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=FINGERPRINT_LENGTH // 2).hexdigest()


# -- library or user code --------------------------------------------------------------------


@functools.cache
def _library_roots() -> tuple[str, ...]:
    """Folders of the standard library and of installed libraries.

    What :func:`sysconfig.get_paths` calls ``stdlib``, ``platstdlib``,
    ``purelib`` and ``platlib``, found without importing :mod:`sysconfig`
    (milliseconds on the first run in a process): the standard library is
    where :mod:`os` lives (extension modules in ``lib-dynload`` below it, or
    ``DLLs`` beside it on Windows), installed libraries are in the ``site``
    module's folders.
    """
    import site

    stdlib = os.path.dirname(os.__file__)
    roots = {stdlib, os.path.join(sys.base_prefix, "DLLs"), os.path.join(sys.base_exec_prefix, "DLLs")}
    try:
        roots.update(site.getsitepackages())
    except AttributeError:  # pragma: no cover - old virtualenv's site module
        pass
    if site.ENABLE_USER_SITE and site.USER_SITE:
        roots.add(site.USER_SITE)
    return tuple(sorted(roots))


def is_library_code(module_name: str | None) -> bool:
    """Whether ``module_name`` is the framework's, the standard library's or an installed library's.

    Such code is named, not hashed: its version is recorded elsewhere, and
    hashing it would cost time for nothing. The user's own modules — even
    installed in development (editable) mode — are hashed.
    """
    if not module_name:
        return False
    known = _library_cache.get(module_name)
    if known is not None:
        return known
    top = module_name.partition(".")[0]
    if top == "crystallize" or top.startswith("crystallize_") or top == "builtins" or top in sys.builtin_module_names:
        found = True
    else:
        module = sys.modules.get(module_name)
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            found = module is not None and top in getattr(sys, "stdlib_module_names", ())
        else:
            found = "site-packages" in path or "dist-packages" in path or path.startswith(_library_roots())
    _library_cache[module_name] = found
    return found


# -- the entry point --------------------------------------------------------------------------


def code_fingerprint(obj: Any) -> str | None:
    """The fingerprint of ``obj``'s code, or ``None`` when it has none of the user's.

    ``obj`` may be a function, a lambda, a class, a ``functools.partial``, a
    bound method or a callable object (its class is fingerprinted). Framework
    and library code gives ``None``.
    """
    text = _text(obj, set())
    return None if text is None else _digest(text)


def _text(obj: Any, seen: set[int]) -> str | None:
    """A canonical text of ``obj``'s code (``None``: nothing of the user's)."""
    if isinstance(obj, types.FunctionType):
        return _function(obj, seen)
    if isinstance(obj, type):
        return _class(obj, seen)
    if isinstance(obj, functools.partial):
        from crystallize._identity import describe

        inner = _text(obj.func, seen) or _named(obj.func)
        return f"partial({inner};{describe(list(obj.args))!r};{describe(obj.keywords)!r})"
    if isinstance(obj, types.MethodType):
        return _text(obj.__func__, seen)
    if isinstance(obj, (types.BuiltinFunctionType, types.MethodWrapperType, types.WrapperDescriptorType)):
        return None
    if isinstance(obj, (staticmethod, classmethod)):
        return _text(obj.__func__, seen)
    if callable(obj):
        return _class(type(obj), seen)
    return None


def _named(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


# -- functions ------------------------------------------------------------------------------


def _function(fn: types.FunctionType, seen: set[int]) -> str | None:
    if is_library_code(fn.__module__):
        return None
    if id(fn) in seen:
        return f"recursive({fn.__qualname__})"
    seen.add(id(fn))
    try:
        code = fn.__code__
        cached = _code_cache.get(id(code))
        if cached is not None and cached[0] is code:
            body = cached[1]
        else:
            body = _code_text(code, fn.__globals__)
            _code_cache[id(code)] = (code, body)
        cells = _closure(fn, code, seen)
        return body if not cells else f"{body}|closure({cells})"
    finally:
        seen.discard(id(fn))


def _closure(fn: types.FunctionType, code: types.CodeType, seen: set[int]) -> str:
    if not fn.__closure__:
        return ""
    rebound = _rebound(code)
    parts = []
    for name, cell in zip(code.co_freevars, fn.__closure__):
        if name == "__class__" or name in rebound:
            continue
        try:
            value = cell.cell_contents
        except ValueError:  # not yet bound
            continue
        text = _value(value, seen)
        if text is not None:
            parts.append(f"{name}={text}")
    return ";".join(parts)


def _value(value: Any, seen: set[int]) -> str | None:
    """A closure variable or class attribute: immutable values and code count, state does not."""
    if isinstance(value, _PLAIN):
        return repr(value)
    if isinstance(value, _CONTAINERS):
        items = [_value(v, seen) for v in value]
        if any(i is None for i in items):
            return None
        if isinstance(value, frozenset):
            items.sort()  # type: ignore[arg-type]
        return f"{type(value).__name__}({','.join(items)})"  # type: ignore[arg-type]
    if isinstance(value, (types.FunctionType, type, functools.partial, types.MethodType, staticmethod, classmethod)):
        return _text(value, seen) or _named(value)
    return None


@functools.cache
def _rebound(code: types.CodeType) -> frozenset[str]:
    """Free variables this code (or code nested in it) assigns: state, not definition."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("STORE_DEREF", "DELETE_DEREF")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _rebound(const)
    return frozenset(names)


def _code_text(code: types.CodeType, module_globals: dict[str, Any] | None) -> str:
    node = _find_node(code, module_globals)
    if node is not None:
        return "src:" + _canonical(node)
    return "bytecode:" + _bytecode(code)


# -- source -----------------------------------------------------------------------------------

_Defs = dict[int, list[ast.AST]]
_trees: dict[str, tuple[list[str], _Defs]] = {}


def _lines_of(filename: str, module_globals: dict[str, Any] | None) -> list[str]:
    """The current lines of a source file (empty when it has none)."""
    if filename.startswith("<") and filename not in linecache.cache:
        return []
    linecache.checkcache(filename)
    return linecache.getlines(filename, module_globals)


def _defs_of(filename: str, module_globals: dict[str, Any] | None) -> _Defs | None:
    """Function and lambda nodes of a file, by the line their code object starts on."""
    lines = _lines_of(filename, module_globals)
    if not lines:
        return None
    cached = _trees.get(filename)
    if cached is not None and cached[0] is lines:
        return cached[1]
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return None
    defs: _Defs = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            defs.setdefault(first, []).append(node)
        elif isinstance(node, ast.Lambda):
            defs.setdefault(node.lineno, []).append(node)
    _trees[filename] = (lines, defs)
    return defs


def _find_node(code: types.CodeType, module_globals: dict[str, Any] | None) -> ast.AST | None:
    if code.co_name != "<lambda>":
        node = _own_node(code, module_globals)
        if node is not None:
            return node
    defs = _defs_of(code.co_filename, module_globals)
    if defs is None:
        return None
    candidates = defs.get(code.co_firstlineno, [])
    if code.co_name == "<lambda>":
        lambdas = [n for n in candidates if isinstance(n, ast.Lambda)]
        if len(lambdas) > 1:
            lambdas = _enclosing(lambdas, code)
        return lambdas[0] if len(lambdas) == 1 else None
    named = [n for n in candidates if getattr(n, "name", None) == code.co_name]
    return named[0] if len(named) == 1 else None


def _own_node(code: types.CodeType, module_globals: dict[str, Any] | None) -> ast.AST | None:
    """A function's node, parsed from its own lines only.

    Parsing a function's block instead of its whole module costs little in a
    large module, where the first fingerprint otherwise pays for parsing every
    line of it. The block runs from the code's first line (its first
    decorator) to the last line any of its instructions (or those of code
    nested in it) come from, then on over lines indented deeper than the
    ``def`` (and blank or comment lines) — code that compiles to nothing, such
    as a trailing ``pass``. Where that block does not parse as exactly one
    ``def`` of the code's name (a ``def`` sharing its line with other code, a
    multi-line string the indentation rule cuts), ``None``: the caller parses
    the whole file, which gives the same node.
    """
    lines = _lines_of(code.co_filename, module_globals)
    first = code.co_firstlineno
    last = _last_line(code)
    if not lines or last is None or not 1 <= first <= last <= len(lines):
        return None
    head = lines[first - 1]
    depth = len(head) - len(head.lstrip(" \t"))
    while last < len(lines):
        line = lines[last]
        text = line.lstrip(" \t")
        if text.strip() and not text.startswith("#") and len(line) - len(text) <= depth:
            break
        last += 1
    block = "".join(lines[first - 1 : last])
    try:
        tree = ast.parse(f"if 1:\n{block}" if depth else block)
    except (SyntaxError, ValueError):
        return None
    body = tree.body[0].body if depth and isinstance(tree.body[0], ast.If) else tree.body
    if len(body) != 1:
        return None
    node = body[0]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == code.co_name:
        return node
    return None


def _last_line(code: types.CodeType) -> int | None:
    """The last source line of ``code``'s instructions and of the code nested in it."""
    if hasattr(code, "co_positions"):
        ends = [end for _, end, _, _ in code.co_positions() if end is not None]
    else:  # Python 3.10: start lines only; the indentation rule finds the rest
        ends = [line for _, _, line in code.co_lines() if line is not None]
    ends += [n for c in code.co_consts if isinstance(c, types.CodeType) and (n := _last_line(c)) is not None]
    return max(ends, default=None)


def _enclosing(lambdas: list[ast.Lambda], code: types.CodeType) -> list[ast.Lambda]:
    """The innermost lambda of one line whose span holds every instruction of ``code``."""
    spans = [
        (line, end_line, col, end_col)
        for line, end_line, col, end_col in code.co_positions()
        if None not in (line, end_line, col, end_col) and (end_line, end_col) > (line, col)  # type: ignore[operator]
    ]
    if not spans:
        return []
    start = min((s[0], s[2]) for s in spans)
    end = max((s[1], s[3]) for s in spans)
    holding = [
        n
        for n in lambdas
        if (n.lineno, n.col_offset) <= start and end <= (n.end_lineno or n.lineno, n.end_col_offset or 0)
    ]
    holding.sort(key=lambda n: ((n.end_lineno or 0) - n.lineno, (n.end_col_offset or 0) - n.col_offset))
    if len(holding) > 1 and _span(holding[0]) == _span(holding[1]):
        return []
    return holding[:1]


def _span(node: ast.AST) -> tuple[int, int, int, int]:
    return (node.lineno, node.col_offset, node.end_lineno or 0, node.end_col_offset or 0)  # type: ignore[attr-defined]


#: fields that carry no meaning (load/store context, comments for type checkers, u"" prefixes)
_SKIP_FIELDS = frozenset({"ctx", "type_comment", "kind", "type_ignores"})
_WITH_DOCSTRING = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)


def _canonical(node: ast.AST) -> str:
    """The syntax tree as text: node types, fields and values, nothing about layout.

    Empty fields are left out, so a field a newer Python adds with an empty
    default (``type_params`` in 3.12) does not change the text.
    """
    out: list[str] = []
    _emit(node, out)
    return "".join(out)


def _emit(value: Any, out: list[str]) -> None:
    if isinstance(value, ast.AST):
        out.append(type(value).__name__)
        out.append("(")
        for field in value._fields:
            if field in _SKIP_FIELDS:
                continue
            item = getattr(value, field, None)
            if field == "body" and isinstance(value, _WITH_DOCSTRING) and _has_docstring(item):
                item = item[1:]
            if item is None or (isinstance(item, list) and not item):
                continue
            out.append(field)
            out.append("=")
            _emit(item, out)
            out.append(",")
        out.append(")")
    elif isinstance(value, list):
        out.append("[")
        for item in value:
            _emit(item, out)
            out.append(",")
        out.append("]")
    else:
        out.append(repr(value))


def _has_docstring(body: Any) -> bool:
    if not isinstance(body, list) or not body:
        return False
    first = body[0]
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


# -- bytecode ---------------------------------------------------------------------------------


def _bytecode(code: types.CodeType) -> str:
    """Instructions, constants and names (not line numbers): stable within one Python version."""
    consts = []
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            consts.append("{" + _bytecode(const) + "}")
        elif isinstance(const, (_PLAIN, _CONTAINERS)):
            consts.append(repr(const) if not isinstance(const, frozenset) else repr(sorted(map(repr, const))))
        else:
            consts.append(type(const).__qualname__)
    return "|".join(
        [
            code.co_name,
            f"{sys.version_info[0]}.{sys.version_info[1]}",
            code.co_code.hex(),
            ",".join(consts),
            ",".join(code.co_names),
            ",".join(code.co_varnames),
            ",".join(code.co_freevars),
            f"{code.co_argcount},{code.co_kwonlyargcount},{code.co_posonlyargcount},{code.co_flags}",
        ]
    )


# -- classes ----------------------------------------------------------------------------------


def _class(cls: type, seen: set[int]) -> str | None:
    if is_library_code(cls.__module__):
        return None
    cached = _class_cache.get(cls)
    if cached is not None:
        return cached
    if id(cls) in seen:
        return f"recursive({cls.__qualname__})"
    seen.add(id(cls))
    try:
        text = _class_text(cls, seen)
    finally:
        seen.discard(id(cls))
    try:
        _class_cache[cls] = text
    except TypeError:  # a class that cannot be weakly referenced: not cached
        pass
    return text


def _class_text(cls: type, seen: set[int]) -> str:
    members = []
    for name, value in sorted(vars(cls).items()):
        if name in _CLASS_NOISE:
            continue
        text = _member(value, seen)
        if text is not None:
            members.append(f"{name}:{text}")
    bases = []
    for base in cls.__bases__:
        if base is object:
            continue
        bases.append(_class(base, seen) or _named(base))
    return f"class {cls.__qualname__}({';'.join(bases)}){{{';'.join(members)}}}"


def _member(value: Any, seen: set[int]) -> str | None:
    if isinstance(value, property):
        parts = [_text(f, seen) if f is not None else "-" for f in (value.fget, value.fset, value.fdel)]
        return "property(" + ",".join(p or "-" for p in parts) + ")"
    if isinstance(value, functools.cached_property):
        return "cached_property(" + (_text(value.func, seen) or "-") + ")"
    if isinstance(value, (staticmethod, classmethod)):
        return f"{type(value).__name__}({_text(value.__func__, seen) or _named(value.__func__)})"
    return _value(value, seen)
