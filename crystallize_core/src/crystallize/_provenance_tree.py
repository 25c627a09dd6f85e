"""``Result.print_tree()``: crystallize-ml's provenance tree, as indented text."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crystallize._result import Result

__all__ = ["print_tree", "tree_lines"]

_LEVELS = ("treatment", "replicate", "step")
_ACTIONS = (("reads", "Reads"), ("wrote", "Wrote"), ("metrics", "Metrics"))


def _tokens(fmt: str) -> list[str]:
    tokens = [t.strip().lower() for t in fmt.split(">")]
    unknown = [t for t in tokens if t not in (*_LEVELS, "action")]
    if unknown or len(set(tokens)) != len(tokens):
        raise ValueError(
            f"print_tree(fmt={fmt!r}): use 'treatment', 'replicate', 'step' and 'action', each once, joined by ' > '"
        )
    if "action" in tokens and tokens[-1] != "action":
        raise ValueError(f"print_tree(fmt={fmt!r}): 'action' must come last")
    return tokens


def _describe_action(kind: str, values: Mapping[str, Any]) -> str:
    if kind == "reads":
        return ", ".join(f"{k}={v!r}" if not isinstance(v, (int, float)) else f"{k}={v}" for k, v in values.items())
    return ", ".join(
        f"{k}: {change.get('before')!r} -> {change.get('after')!r}"
        if isinstance(change, Mapping)
        else f"{k}={change!r}"
        for k, change in values.items()
    )


def tree_lines(result: Result, fmt: str = "treatment > replicate > step") -> list[str]:
    """The lines :func:`print_tree` prints."""
    tokens = _tokens(fmt)
    levels = [t for t in tokens if t != "action"]
    changes = (result.provenance or {}).get("ctx_changes") or {}
    rows = []
    for treatment, replicates in changes.items():
        for replicate, records in replicates.items():
            for record in records:
                actions = record.get("ctx_changes", {})
                if any(actions.get(kind) for kind, _ in _ACTIONS):
                    step = record.get("step", "")
                    rows.append({"treatment": treatment, "replicate": replicate, "step": step, "actions": actions})
    lines = ["Experiment Summary"]
    if not rows:
        for condition, metrics in [("baseline", result.metrics.baseline), *result.metrics.treatments.items()]:
            lines.append(f"  {condition}")
            for name, values in metrics.metrics.items():
                lines.append(f"    {name}: {values!r}")
        return lines
    labels = {"treatment": str, "replicate": lambda r: f"Replicate {r}", "step": str}
    shown: list[Any] = [None] * len(levels)
    for row in rows:
        for depth, level in enumerate(levels):
            key = tuple(row[lv] for lv in levels[: depth + 1])
            if shown[depth] != key:
                shown[depth] = key
                shown[depth + 1 :] = [None] * (len(levels) - depth - 1)
                lines.append("  " * (depth + 1) + labels[level](row[level]))
        for kind, title in _ACTIONS:
            values = row["actions"].get(kind)
            if values:
                lines.append("  " * (len(levels) + 1) + f"{title}: {_describe_action(kind, values)}")
    return lines


def print_tree(result: Result, fmt: str = "treatment > replicate > step", file: Any = None) -> None:
    """Print :func:`tree_lines` to ``file`` (standard output by default)."""
    print("\n".join(tree_lines(result, fmt)), file=file if file is not None else sys.stdout)
