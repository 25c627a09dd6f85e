"""The per-replicate context handed to every step: :class:`FrozenContext`.

A context is created for each (condition, replicate). It holds the keys the
framework sets (``replicate``, ``condition``), the values a treatment adds,
anything plugins add (``seed_used``), and a :class:`Metrics` recorder.
Keys can be added but never overwritten, so a step cannot silently change
what an earlier step or the treatment decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from crystallize.errors import ContextMutationError

__all__ = ["FrozenContext", "Metrics", "BASELINE", "REPLICATE_KEY", "CONDITION_KEY", "SEED_KEY"]

BASELINE = "baseline"
"""Name of the condition that runs without a treatment."""
REPLICATE_KEY = "replicate"
CONDITION_KEY = "condition"
SEED_KEY = "seed_used"


class Metrics:
    """Records metric values for one replicate.

    ``add(name, value)`` appends; a step may record a metric once or many
    times per replicate. The condition's metric list (what
    :class:`~crystallize.Result` shows) is the concatenation of its
    replicates' lists, in replicate order.
    """

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, list[Any]] = {}

    def add(self, name: str, value: Any) -> None:
        """Record ``value`` for the metric ``name``."""
        values = self._values.get(name)
        if values is None:
            self._values[name] = [value]
        else:
            values.append(value)

    def __getitem__(self, name: str) -> tuple[Any, ...]:
        return tuple(self._values[name])

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __len__(self) -> int:
        return len(self._values)

    def as_dict(self) -> dict[str, list[Any]]:
        """A copy of everything recorded so far, ``{name: [values]}``."""
        return {k: list(v) for k, v in self._values.items()}

    def __repr__(self) -> str:
        return f"Metrics({self._values!r})"


class FrozenContext(Mapping[str, Any]):
    """Read-only mapping of this replicate's settings, plus ``metrics``.

    - ``ctx["replicate"]``, ``ctx["condition"]`` and treatment keys are set
      before the first step runs.
    - ``ctx["key"] = value`` (or ``ctx.add``) adds a new key; assigning to an
      existing key raises :class:`~crystallize.errors.ContextMutationError`.
    - ``ctx.metrics.add(name, value)`` records a metric.

    Values are returned as they are, not copied: treat them as read-only.

    The core notes which of a treatment's keys were read (by ``ctx[key]``,
    ``ctx.get``, ``in``, or a ``@pipeline_step``/``@data_source`` parameter of
    that name) and warns about a key nothing read: it changed nothing.
    """

    __slots__ = ("_data", "_unread", "metrics")

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(initial) if initial else {}
        self._unread: set[str] | None = None
        self.metrics = Metrics()

    @classmethod
    def _adopt(cls, data: dict[str, Any]) -> FrozenContext:
        """A context owning ``data`` (not copied); used once per replicate by the core."""
        ctx = cls.__new__(cls)
        ctx._data = data
        ctx._unread = None
        ctx.metrics = Metrics()
        return ctx

    def _watch(self, keys: Iterable[str]) -> None:
        """Note reads of ``keys`` (a treatment's) from now on; :attr:`_unread` keeps those not read yet."""
        self._unread = set(keys) or None

    def __getitem__(self, key: str) -> Any:
        unread = self._unread
        if unread:
            unread.discard(key)
        try:
            return self._data[key]
        except KeyError:
            known = ", ".join(repr(k) for k in self._data) or "none"
            raise KeyError(f"{key!r} is not in the context (keys: {known})") from None

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._data:
            raise ContextMutationError(
                f"context key {key!r} is already set to {self._data[key]!r}; "
                "contexts only accept new keys (use another key name)"
            )
        self._data[key] = value

    def add(self, key: str, value: Any) -> None:
        """Add a new key; same as ``ctx[key] = value``."""
        self[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        unread = self._unread
        if unread:
            unread.discard(key)
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        unread = self._unread
        if unread:
            unread.discard(key)  # type: ignore[arg-type]
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        self._unread = None  # whoever walks every key may read any of them
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def as_dict(self) -> Mapping[str, Any]:
        """A read-only view of the keys."""
        self._unread = None  # reads through the view are not seen
        return MappingProxyType(self._data)

    def __repr__(self) -> str:
        return f"FrozenContext({self._data!r})"
