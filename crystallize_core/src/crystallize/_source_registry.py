"""Datasources by name: :func:`register_datasource`, :func:`get_datasource`, :func:`list_datasources`.

A team shares its datasources under names::

    @data_source("training_data", register=True)
    def load(ctx, split="train"):
        ...

    get_datasource("training_data")                 # load()
    get_datasource("training_data", split="test")   # load(split="test")

The registry is per process; registering a name twice is an error.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crystallize._datasource import DataSource

__all__ = ["register_datasource", "get_datasource", "list_datasources", "clear_registry"]

_REGISTRY: dict[str, Any] = {}
_LOCK = threading.Lock()


def register_datasource(name: str, source: Any) -> None:
    """Register ``source`` — a :class:`~crystallize.DataSource` or a ``@data_source`` factory — as ``name``.

    :raises ValueError: when ``name`` is already registered.
    """
    from crystallize._datasource import DataSource

    if not isinstance(name, str) or not name:
        raise ValueError(f"register_datasource: the name must be a non-empty string, got {name!r}")
    if not isinstance(source, DataSource) and getattr(source, "__crystallize_factory__", None) != "datasource":
        raise TypeError(
            f"register_datasource({name!r}, ...): expected a DataSource or a @data_source factory, got {source!r}"
        )
    with _LOCK:
        if name in _REGISTRY:
            raise ValueError(f"a datasource is already registered as {name!r} ({_REGISTRY[name]!r}); pick another name")
        _REGISTRY[name] = source


def get_datasource(name: str, **params: Any) -> DataSource:
    """The datasource registered as ``name``; a registered factory is called with ``params``.

    :raises KeyError: naming the registered names, when ``name`` is not one of them.
    """
    with _LOCK:
        try:
            source = _REGISTRY[name]
        except KeyError:
            known = ", ".join(map(repr, sorted(_REGISTRY))) or "none"
            raise KeyError(f"No datasource registered as {name!r} (registered: {known})") from None
    if getattr(source, "__crystallize_factory__", None) == "datasource":
        return source(**params)
    if params:
        raise TypeError(f"datasource {name!r} was registered as an object; it takes no parameters, got {params}")
    return source


def list_datasources() -> list[str]:
    """The registered names, sorted."""
    with _LOCK:
        return sorted(_REGISTRY)


def clear_registry() -> None:
    """Forget every registered datasource (for tests)."""
    with _LOCK:
        _REGISTRY.clear()
