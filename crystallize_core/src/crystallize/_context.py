"""The per-replicate context handed to every step: :class:`FrozenContext`.

A context is created for each (condition, replicate). It holds the keys the
framework sets (``replicate``, ``condition``), the values a treatment adds,
anything plugins add (``seed_used``), and a :class:`Metrics` recorder.
Keys can be added but never overwritten, so a step cannot silently change
what an earlier step or the treatment decided.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from crystallize.errors import ContextMutationError

if TYPE_CHECKING:
    from crystallize._artifact import ArtifactLog

__all__ = ["FrozenContext", "Metrics", "BASELINE", "REPLICATE_KEY", "CONDITION_KEY", "SEED_KEY"]

BASELINE = "baseline"
"""Name of the condition that runs without a treatment."""
REPLICATE_KEY = "replicate"
"""Context key of the replicate's index, ``0 .. replicates - 1``."""
CONDITION_KEY = "condition"
"""Context key of the condition's name (``baseline`` or a treatment's)."""
SEED_KEY = "seed_used"
"""Context key of the seed the replicate runs with, set by the seeding plugin."""

_TAG_LOCK = threading.Lock()


class Metrics:
    """Records metric values for one replicate.

    ``add(name, value)`` appends; a step may record a metric once or many
    times per replicate. The condition's metric list (what
    :class:`~crystallize.Result` shows) is the concatenation of its
    replicates' lists, in replicate order. ``add`` is safe to call from
    several threads at once.

    ``add(name, value, tags={...})`` attaches tags to that one value
    (``{"epoch": 3, "split": "train"}``); :meth:`get_tags` reads them back.
    """

    __slots__ = ("_tags", "_values")

    def __init__(self) -> None:
        self._values: dict[str, list[Any]] = {}
        self._tags: dict[str, dict[int, dict[str, Any]]] | None = None  # {name: {position: tags}}

    def add(self, name: str, value: Any, tags: Mapping[str, Any] | None = None) -> None:
        """Record ``value`` for the metric ``name``, optionally with ``tags``."""
        try:
            values = self._values[name]
        except KeyError:
            values = self._values.setdefault(name, [])  # setdefault: two threads agree on one list
        if tags:
            self._tag(name, values, value, dict(tags))
        else:
            values.append(value)

    def _tag(self, name: str, values: list[Any], value: Any, tags: dict[str, Any]) -> None:
        with _TAG_LOCK:  # a value and its tags take the same position
            values.append(value)
            if self._tags is None:
                self._tags = {}
            self._tags.setdefault(name, {})[len(values) - 1] = tags

    def get_tags(self, name: str) -> tuple[dict[str, Any], ...]:
        """The tags of each value recorded for ``name`` (``{}`` for a value recorded without tags)."""
        values = self._values.get(name, ())
        tagged = {} if self._tags is None else self._tags.get(name, {})
        return tuple(dict(tagged.get(i, {})) for i in range(len(values)))

    def __getitem__(self, name: str) -> tuple[Any, ...]:
        return tuple(self._values[name])

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __len__(self) -> int:
        return len(self._values)

    def as_dict(self) -> Mapping[str, tuple[Any, ...]]:
        """A read-only snapshot of everything recorded so far, ``{name: (values...)}``."""
        return MappingProxyType({k: tuple(v) for k, v in self._values.items()})

    def __repr__(self) -> str:
        return f"Metrics({self._values!r})"


class FrozenContext(Mapping[str, Any]):
    """Read-only mapping of this replicate's settings, plus ``metrics``.

    - ``ctx["replicate"]``, ``ctx["condition"]`` and treatment keys are set
      before the first step runs.
    - ``ctx["key"] = value`` (or ``ctx.add``) adds a new key; assigning to an
      existing key raises :class:`~crystallize.errors.ContextMutationError`.
    - ``ctx.metrics.add(name, value)`` (or ``ctx.record(name, value)``)
      records a metric.
    - ``ctx.artifacts.add(name, data)`` writes an artifact file from the
      running step (crystallize-ml's way; declared
      :class:`~crystallize.Artifact` outputs are the other).
    - ``ctx.logger`` is the ``crystallize`` logger (or the one given).

    ``FrozenContext(initial)`` deep-copies ``initial``'s values, so changing
    the mapping later does not change the context. Values are then returned
    as they are, not copied on every read: treat them as read-only.
    ``ctx.as_dict()`` is a snapshot with its values copied.

    The core notes which of a treatment's keys were read (by ``ctx[key]``,
    ``ctx.get``, ``in``, or a ``@pipeline_step``/``@data_source`` parameter of
    that name) and warns about a key nothing read: it changed nothing.
    """

    __slots__ = ("_artifacts", "_data", "_logger", "_unread", "metrics")

    def __init__(self, initial: Mapping[str, Any] | None = None, *, logger: logging.Logger | None = None) -> None:
        self._data: dict[str, Any] = _deep_copy(initial) if initial else {}
        self._unread: set[str] | None = None
        self.metrics = Metrics()
        self._artifacts: ArtifactLog | None = None
        self._logger = logger

    @classmethod
    def _adopt(cls, data: dict[str, Any]) -> FrozenContext:
        """A context owning ``data`` (not copied); used once per replicate by the core."""
        ctx = cls.__new__(cls)
        ctx._data = data
        ctx._unread = None
        ctx.metrics = Metrics()
        ctx._artifacts = None
        ctx._logger = None
        return ctx

    def _watch(self, keys: Iterable[str]) -> None:
        """Note reads of ``keys`` (a treatment's) from now on; :attr:`_unread` keeps those not read yet."""
        self._unread = set(keys) or None

    @property
    def logger(self) -> logging.Logger:
        """The logger steps may use: the ``crystallize`` logger unless another was given."""
        return self._logger if self._logger is not None else logging.getLogger("crystallize")

    @property
    def artifacts(self) -> ArtifactLog:
        """Files the running step adds with ``ctx.artifacts.add(name, data)``."""
        log = self._artifacts
        if log is None:
            from crystallize._artifact import ArtifactLog

            log = self._artifacts = ArtifactLog()
        return log

    def record(self, name: str, value: Any, tags: Mapping[str, Any] | None = None) -> None:
        """Record a metric: ``ctx.metrics.add(name, value, tags)``."""
        self.metrics.add(name, value, tags)

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
                f"Cannot mutate existing key: {key!r} ({key!r} is already set to {self._data[key]!r}); "
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
        """A read-only snapshot of the keys, values deep-copied.

        Changing a value taken from it (``ctx.as_dict()["config"]["lr"] = 1``)
        does not change the context. Values that cannot be copied (locks,
        connections) are shared, as in ``FrozenContext(initial)``. Reading
        one key with ``ctx[key]`` costs no copy.
        """
        self._unread = None  # reads through the snapshot are not seen
        return MappingProxyType(_deep_copy(self._data))

    def __repr__(self) -> str:
        return f"FrozenContext({self._data!r})"


def _deep_copy(initial: Mapping[str, Any]) -> dict[str, Any]:
    """``initial``'s items with their values deep-copied; a value that cannot be copied is kept as it is."""
    import copy

    copied = {}
    for key, value in initial.items():
        try:
            copied[key] = copy.deepcopy(value)
        except Exception:  # noqa: BLE001 - locks, connections...: shared, as any read-only value
            copied[key] = value
    return copied
