"""Treatments: named changes to a replicate's context.

The baseline condition runs with no treatment; each :class:`Treatment` is a
further condition whose replicates start from a context that holds the
treatment's keys. A treatment named ``"baseline"`` changes the baseline
condition itself instead of adding one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from crystallize._names import check_name

if TYPE_CHECKING:
    from crystallize._context import FrozenContext

__all__ = ["Treatment"]


_PLAIN = (str, int, float, bool, type(None))


def _fingerprint(spec: Any) -> str:
    if isinstance(spec, dict) and all(isinstance(v, _PLAIN) for v in spec.values()):
        # The common case, fast: the repr of plain values (str, int, float,
        # bool, None) is the same in every process.
        blob = "plain:" + repr(sorted(spec.items()))
    else:
        from crystallize._identity import describe

        blob = json.dumps(describe(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


class Treatment:
    """A condition: ``Treatment("fast", {"lr": 0.1})`` or ``Treatment("fast", fn)``.

    :param name: the condition's name (a single path segment).
    :param apply: a mapping of context keys to add, or ``fn(ctx)`` that adds
        them with ``ctx[key] = value``.
    """

    def __init__(self, name: str, apply: Mapping[str, Any] | Callable[[FrozenContext], Any]) -> None:
        self.name = check_name(name, "treatment")
        self.values: dict[str, Any] | None = None
        self.fn: Callable[[FrozenContext], Any] | None = None
        self._fingerprint: str | None = None
        if isinstance(apply, Mapping):
            self.values = dict(apply)
        elif callable(apply):
            self.fn = apply
        else:
            raise TypeError(
                f"Treatment {name!r}: apply must be a mapping of context keys or a callable(ctx), "
                f"got {type(apply).__name__}: {apply!r}"
            )

    def apply(self, ctx: FrozenContext) -> None:
        """Add this treatment's keys to ``ctx``."""
        if self.values is not None:
            for key, value in self.values.items():
                ctx[key] = value
        else:
            assert self.fn is not None
            self.fn(ctx)

    def fingerprint(self) -> str:
        """A short hash of what this treatment does, stable across processes (cached)."""
        if self._fingerprint is None:
            self._fingerprint = _fingerprint(self.values if self.values is not None else self.fn)
        return self._fingerprint

    def __repr__(self) -> str:
        what = self.values if self.values is not None else getattr(self.fn, "__qualname__", self.fn)
        return f"Treatment({self.name!r}, {what!r})"
