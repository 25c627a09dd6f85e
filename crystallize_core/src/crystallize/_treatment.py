"""Treatments: named changes to a replicate's context.

The baseline condition runs with no treatment; each :class:`Treatment` is a
further condition whose replicates start from a context that holds the
treatment's keys. A treatment named ``"baseline"`` changes the baseline
condition itself instead of adding one.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from crystallize._names import check_name

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._experiment import Experiment

__all__ = ["Treatment", "warn_unread"]


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


# -- keys nothing read ---------------------------------------------------------------------------


def _components(experiment: Experiment) -> Iterator[tuple[str, Any]]:
    """``(label, component)`` for the datasource(s) and every step."""
    from crystallize._datasource import ExperimentInput

    sources = [experiment.datasource]
    while sources:
        source = sources.pop(0)
        if isinstance(source, ExperimentInput):
            sources.extend(source.inputs.values())
            continue
        name = getattr(getattr(source, "fn", None), "__name__", None) or type(source).__name__
        yield f"datasource {name!r}", source
    for step in [] if experiment.pipeline is None else experiment.pipeline.steps:
        yield f"step {step.step_name!r}", step


def _where(experiment: Experiment, key: str) -> str:
    """Where ``key`` could have been read, and why it was not."""
    from crystallize._datasource import FunctionDataSource
    from crystallize._steps import FunctionStep

    for label, component in _components(experiment):
        explicit = (
            component.explicit
            if isinstance(component, FunctionStep)
            else component.explicit
            if isinstance(component, FunctionDataSource)
            else None
        )
        if explicit is not None and key in explicit:
            factory = component.fn.__name__
            return (
                f"{label} has a parameter {key!r}, but it was passed explicitly ({factory}({key}="
                f"{explicit[key]!r})), which wins over a treatment: leave it out of {factory}(...) to let "
                "the treatment set it"
            )
        if explicit is None and key in getattr(component, "__dict__", {}):
            return (
                f"{label} has an attribute {key!r}, fixed when it was built: a treatment does not change it; "
                f"read ctx[{key!r}] in its __call__ instead"
            )
    return (
        f"no step or datasource parameter is named {key!r}: read it in a step or datasource with "
        f"ctx[{key!r}] or ctx.get({key!r}), or name a parameter of a @pipeline_step or @data_source function {key!r}"
    )


def warn_unread(experiment: Experiment, unread: Mapping[str, Mapping[str, int]], stacklevel: int = 2) -> None:
    """Warn, once per key, about treatment keys nothing read.

    :param unread: ``{condition: {key: replicates in which nothing read it}}``.
    """
    from crystallize.errors import UnreadTreatmentKeyWarning

    by_key: dict[str, dict[str, int]] = {}
    for condition, counts in unread.items():
        for key, count in counts.items():
            by_key.setdefault(key, {})[condition] = count
    for key, conditions in sorted(by_key.items()):
        names = sorted(conditions)
        shown = ", ".join(map(repr, names[:3])) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        replicates = sum(conditions.values())
        warnings.warn(
            UnreadTreatmentKeyWarning(
                f"treatment{'s' if len(names) > 1 else ''} {shown} of experiment {experiment.key_label} "
                f"set{'' if len(names) > 1 else 's'} {key!r}, but nothing read it (in {replicates} replicate(s)), "
                f"so it changed nothing. {_where(experiment, key)}"
            ),
            stacklevel=stacklevel + 1,
        )
