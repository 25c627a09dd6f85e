"""Write docs/hooks.md from the docstrings in crystallize/hookspecs.py.

python docs/generate_hook_reference.py          # rewrite docs/hooks.md
python docs/generate_hook_reference.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from crystallize import hookspecs
from crystallize._dispatch import HOOK_NAMES, ISOLATED_HOOKS, WRAPPER_ONLY_HOOKS

TARGET = Path(__file__).with_name("hooks.md")


def render() -> str:
    lines = [
        "# Hook reference",
        "",
        "Generated from `crystallize/hookspecs.py` by `docs/generate_hook_reference.py`;",
        "edit the docstrings there, not this file.",
        "",
        inspect.getdoc(hookspecs) or "",
        "",
        "## Hooks",
        "",
    ]
    for name in HOOK_NAMES:
        spec = getattr(hookspecs, name)
        opts = getattr(spec, "crystallize_spec", {})
        signature = str(inspect.signature(spec)).replace("'", "")
        lines += [f"### `{name}`", "", "```python", f"def {name}{signature}", "```", ""]
        if opts.get("firstresult"):
            lines += ["*firstresult*: the first non-`None` result wins.", ""]
        if name in ISOLATED_HOOKS:
            lines += ["*isolated*: every implementation runs, even when another raises.", ""]
        if name in WRAPPER_ONLY_HOOKS:
            lines += ["*wrapper*: implement it with `@hookimpl(wrapper=True)`.", ""]
        lines += [inspect.getdoc(spec) or "", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if TARGET.read_text() != text:
            print("docs/hooks.md is out of date: run python docs/generate_hook_reference.py")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
