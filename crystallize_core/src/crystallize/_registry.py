"""The plugin registry: which plugins are active, and the plugin manager holding them.

Where plugins come from, in registration order (later ones are called first
by pluggy, so an experiment's own plugins take precedence):

1. **built-ins** — the core's own features written as plugins
   (``SerialExecution``, ``SeedPlugin``), registered exactly like everything else;
2. **installed plugins** — objects named by entry points in the group
   ``crystallize.plugins``, loaded lazily, once per process;
3. **registered plugins** — objects added with :func:`register_plugin`
   (the testing kit uses this);
4. **the experiment's plugins** — ``Experiment(plugins=[...])``.

Every plugin has a name: its ``plugin_name`` attribute, else (installed
plugins) its entry point's name, else its class's name. Names are unique
among the plugins active for an experiment, and the rule is one line: **a
plugin of a later layer replaces the plugin of the same name from an earlier
layer**. So ``plugins=[MetadataPlugin()]`` configures the installed
``metadata`` plugin instead of adding a second one, and a plugin registered
by a test replaces an installed one of its name. Two plugins of the *same*
layer with one name are an error (two installed ones: the second is
skipped with a warning naming both distributions). The name is what pluggy
registers and what every message shows.

Environment variables:

``CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD=1``
    load no installed plugins; only built-ins and objects passed in Python.
``CRYSTALLIZE_LOAD_PLUGINS=name,name``
    allow-list: load only these installed plugins (entry-point or
    distribution names). Set but empty: load none.
``CRYSTALLIZE_DISABLE_PLUGINS=name,name``
    block-list, checked before anything is imported; ``seed`` in it also
    leaves out the built-in ``SeedPlugin``.
``CRYSTALLIZE_STRICT_PLUGINS=1``
    a plugin that fails to load raises instead of warning (for plugin authors).
``CRYSTALLIZE_TRACE_HOOKS=1``
    log every hook call at DEBUG level on the ``crystallize.hooks`` logger.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from types import FunctionType, MethodType, ModuleType
from typing import Any, ClassVar

import attrs
import pluggy

from crystallize import hookspecs
from crystallize._dispatch import PROJECT, Hooks, implementation_problems
from crystallize.errors import PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginWarning",
    "plugin_name",
    "installed_plugins",
    "load_failures",
    "register_plugin",
    "unregister_plugin",
    "build_manager",
    "reset_autoload",
]

ENTRY_POINT_GROUP = "crystallize.plugins"
"""Entry-point group of installed plugins, active for every experiment in the process."""
ENV_DISABLE_AUTOLOAD = "CRYSTALLIZE_DISABLE_PLUGIN_AUTOLOAD"
ENV_ALLOW = "CRYSTALLIZE_LOAD_PLUGINS"
ENV_BLOCK = "CRYSTALLIZE_DISABLE_PLUGINS"
ENV_STRICT = "CRYSTALLIZE_STRICT_PLUGINS"
ENV_TRACE = "CRYSTALLIZE_TRACE_HOOKS"

log = logging.getLogger("crystallize.plugins")


class PluginWarning(UserWarning):
    """An installed plugin could not be loaded and was skipped."""


@attrs.frozen(eq=False)
class PluginInfo:
    """An active plugin and where it came from.

    :ivar source: ``"built-in"``, ``"entry point"``, ``"registered"`` or ``"experiment"``.
    """

    name: str
    plugin: Any
    source: str
    distribution: str | None = None
    version: str | None = None

    @property
    def label(self) -> str:
        dist = f" from {self.distribution} {self.version or ''}".rstrip() if self.distribution else ""
        return f"plugin {self.name!r}{dist}"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _names(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {_normalise(part) for part in raw.split(",") if part.strip()}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def plugin_name(plugin: Any) -> str:
    """The name a plugin object registers under.

    A ``plugin_name`` attribute wins; a module is named after itself; other
    objects after their class.
    """
    explicit = getattr(plugin, "plugin_name", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    if isinstance(plugin, type):
        return plugin.__qualname__
    return type(plugin).__qualname__


def _hook_names_of(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())


class _PluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers what it learnt about each plugin class.

    Registering a plugin makes pluggy look up every attribute of the object
    with ``inspect.getattr_static`` (so that properties are not run); for the
    few plugins of an experiment that costs milliseconds, paid again for every
    experiment. Hook markers sit on the class's functions, so the answer for
    a class never changes: its hook options are read once per process, for
    every attribute in one pass over the class's ``__dict__``s in method
    resolution order (what ``getattr_static`` finds for an attribute the
    instance does not hold itself). Modules, classes registered as plugins,
    classes with ``__slots__`` and attributes set on the instance itself go to
    pluggy's own lookup. ``parse_hookimpl_opts``/``parse_hookspec_opts`` are
    pluggy's documented override points.
    """

    _class_opts: ClassVar[dict[type, dict[str, dict[str, Any]]]] = {}
    _spec_opts: ClassVar[dict[tuple[Any, str], Any]] = {}

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        cls = type(plugin)
        if (
            isinstance(plugin, (ModuleType, type))
            or hasattr(cls, "__slots__")
            or name in getattr(plugin, "__dict__", {})
        ):
            return super().parse_hookimpl_opts(plugin, name)
        table = self._class_opts.get(cls)
        if table is None:
            table = self._class_opts[cls] = _class_hook_opts(cls, f"{self.project_name}_impl")
        opts = table.get(name)
        return None if opts is None else dict(opts)

    def parse_hookspec_opts(self, module_or_class: Any, name: str) -> Any:
        key = (module_or_class, name)
        try:
            opts = self._spec_opts[key]
        except KeyError:
            opts = self._spec_opts[key] = super().parse_hookspec_opts(module_or_class, name)
        return None if opts is None else dict(opts)


def _class_hook_opts(cls: type, marker: str) -> dict[str, dict[str, Any]]:
    """``{attribute: hook options}`` of the hook implementations a class's instances have.

    Reads markers as pluggy does: on a function, or on a ``staticmethod`` /
    ``classmethod`` wrapper or the function inside it.
    """
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass))
    table = {}
    for name, value in merged.items():
        if isinstance(value, (staticmethod, classmethod)):
            holder: Any = value
        elif isinstance(value, MethodType):
            holder = value.__func__
        elif isinstance(value, FunctionType):
            holder = value
        else:
            continue
        opts = getattr(holder, marker, None)
        if opts is None:
            opts = getattr(getattr(holder, "__func__", None), marker, None)
        if isinstance(opts, dict):
            table[name] = opts
    return table


def _new_pm() -> pluggy.PluginManager:
    pm = _PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _check(plugin: Any, label: str, pm: pluggy.PluginManager | None = None) -> None:
    """Raise PluginError if ``plugin`` has a hook that is not in the spec, or implements one wrongly.

    ``pm`` is a manager used only for checking (one serves a whole discovery);
    the plugin is unregistered from it again.
    """
    pm = _new_pm() if pm is None else pm
    try:
        pm.register(plugin, name=plugin_name(plugin))
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{label} has an invalid hook implementation: {exc}") from exc
    try:
        pm.check_pending()
        problems = implementation_problems(pm)
        if problems:
            raise PluginError(f"{label}: {'; '.join(problems)}")
        if not pm.get_hookcallers(plugin):
            raise PluginError(
                f"{label} implements no crystallize hooks; mark its methods with @crystallize.hookimpl "
                "(hook names are listed in crystallize.hookspecs)"
            )
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{label} has an invalid hook implementation: {exc}") from exc
    finally:
        pm.unregister(plugin)


class _Registry:
    """Process-wide state: installed plugins (loaded once) and registered ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._installed: list[PluginInfo] | None = None
        self._failures: list[str] = []
        self.registered: list[PluginInfo] = []
        self.monitors: list[Any] = []
        self.direct_calls = True
        self.generation = 0

    def installed(self) -> list[PluginInfo]:
        if self._installed is None:
            with self._lock:
                if self._installed is None:
                    self._installed = self._load()
                    self.generation += 1
        return self._installed

    def failures(self) -> list[str]:
        self.installed()
        return list(self._failures)

    def reset(self) -> None:
        with self._lock:
            self._installed = None
            self._failures = []
            self.generation += 1

    def _load(self) -> list[PluginInfo]:
        if _flag(ENV_DISABLE_AUTOLOAD):
            return []
        allow = _names(ENV_ALLOW)
        block = _names(ENV_BLOCK) or set()
        strict = _flag(ENV_STRICT)
        from crystallize._entry_points import entry_points, name_and_version

        loaded: list[PluginInfo] = []
        seen: set[str] = set()
        validator = _new_pm()
        for ep, dist in entry_points(ENTRY_POINT_GROUP):
            dist_name, version = name_and_version(dist)
            names = {_normalise(ep.name)} | ({_normalise(dist_name)} if dist_name else set())
            if names & block or (allow is not None and not names & allow):
                continue
            key = f"{ep.name}={ep.value}"
            if key in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(key)
            origin = f"{dist_name or 'an unknown distribution'} {version or ''}".rstrip()
            label = f"plugin {ep.name!r} ({ep.value}) from {origin}"
            try:
                obj = ep.load()
                if isinstance(obj, type):
                    obj = obj()
                _check(obj, label, validator)
            except Exception as exc:
                message = (
                    exc.args[0]
                    if isinstance(exc, PluginError)
                    else f"{label} failed to load: {type(exc).__name__}: {exc}"
                )
                if strict:
                    raise PluginError(message) from exc
                self._failures.append(message)
                warnings.warn(
                    f"{message} (skipped; set {ENV_STRICT}=1 to make this an error)",
                    PluginWarning,
                    stacklevel=4,
                )
                continue
            name = getattr(obj, "plugin_name", None) or ep.name
            clash = next((i for i in loaded if i.name == name), None)
            if clash is not None:
                message = (
                    f"{label} is named {name!r} like the plugin from "
                    f"{clash.distribution or 'an unknown distribution'} {clash.version or ''}".rstrip()
                    + "; plugin names must be unique, so it was skipped"
                )
                if strict:
                    raise PluginError(message)
                self._failures.append(message)
                warnings.warn(message, PluginWarning, stacklevel=4)
                continue
            loaded.append(PluginInfo(name, obj, "entry point", dist_name, version))
        return loaded


_registry = _Registry()


def installed_plugins() -> list[PluginInfo]:
    """Plugins loaded from the ``crystallize.plugins`` entry points (loads them once)."""
    return list(_registry.installed())


def load_failures() -> list[str]:
    """Messages of installed plugins that failed to load and were skipped."""
    return _registry.failures()


def reset_autoload() -> None:
    """Forget loaded entry points so the next run loads them again (for tests)."""
    _registry.reset()


def register_plugin(plugin: Any, name: str | None = None) -> PluginInfo:
    """Activate ``plugin`` for every experiment in this process.

    It replaces a built-in or installed plugin of the same name; a second
    registered plugin of that name is an error.
    """
    info_name = name or plugin_name(plugin)
    info = PluginInfo(info_name, plugin, "registered")
    _check(plugin, info.label)
    with _registry._lock:
        clash = next((i for i in _registry.registered if i.name == info_name), None)
        if clash is not None:
            raise PluginError(f"a plugin named {info_name!r} is already registered ({clash.plugin!r})")
        _registry.registered.append(info)
        _registry.generation += 1
    return info


def unregister_plugin(plugin: Any) -> None:
    """Undo :func:`register_plugin`."""
    with _registry._lock:
        _registry.registered = [i for i in _registry.registered if i.plugin is not plugin]
        _registry.generation += 1


def add_monitor(before: Any) -> None:
    """Call ``before(hook_name, hook_impls, kwargs)`` on every hook call (testing kit)."""
    with _registry._lock:
        _registry.monitors.append(before)
        _registry.generation += 1


def remove_monitor(before: Any) -> None:
    with _registry._lock:
        # ==, not `is`: each access to a bound method builds a new object
        _registry.monitors = [m for m in _registry.monitors if m != before]
        _registry.generation += 1


def set_direct_calls(enabled: bool) -> None:
    """Allow (the default) or forbid direct hook calls; forbidden, every call goes through pluggy.

    For the dispatch parity test, which runs the hook tests both ways.
    """
    with _registry._lock:
        _registry.direct_calls = enabled
        _registry.generation += 1


def observed() -> bool:
    """Whether hook calls are monitored or traced (then every call goes through pluggy)."""
    return bool(_registry.monitors) or _flag(ENV_TRACE)


def generation() -> int:
    """Changes whenever the process-wide plugin set changes (cache key)."""
    _registry.installed()
    return _registry.generation


def builtin_plugins() -> list[PluginInfo]:
    """The core's own plugins: serial execution, and seeding (``CRYSTALLIZE_DISABLE_PLUGINS=seed`` leaves it out).

    New objects on every call, so each experiment gets its own ``SeedPlugin``
    (with its own random base seed), as in crystallize-ml 0.27.
    """
    from crystallize._execution.serial import SerialExecution
    from crystallize._seeding import SeedPlugin

    version = _core_version()
    found = [PluginInfo("serial-execution", SerialExecution(), "built-in", "crystallize-core", version)]
    if "seed" not in (_names(ENV_BLOCK) or ()):
        found.append(PluginInfo(SeedPlugin.plugin_name, SeedPlugin(), "built-in", "crystallize-core", version))
    return found


def _core_version() -> str | None:
    from crystallize import __version__

    return __version__


def resolve_plugins(experiment_plugins: Sequence[Any] = ()) -> list[PluginInfo]:
    """Every plugin active for an experiment with ``experiment_plugins``, by the naming rule above."""
    passed: dict[str, PluginInfo] = {}
    for plugin in experiment_plugins:
        info = PluginInfo(plugin_name(plugin), plugin, "experiment")
        other = passed.get(info.name)
        if other is not None:
            raise PluginError(
                f"two plugins named {info.name!r} were passed in plugins=[...] "
                f"({other.plugin!r} and {info.plugin!r}); pass one of them"
            )
        passed[info.name] = info
    active: dict[str, PluginInfo] = {}
    for info in [*builtin_plugins(), *_registry.installed(), *_registry.registered]:
        active.pop(info.name, None)  # re-inserted last: pluggy calls later registrations first
        active[info.name] = info
    for name, info in passed.items():
        replaced = active.pop(name, None)
        if replaced is not None and replaced.distribution and info.distribution is None:
            # A configured ArtifactPlugin(...) comes from the distribution that installed "artifacts".
            info = attrs.evolve(info, distribution=replaced.distribution, version=replaced.version)
        active[name] = info
    return list(active.values())


def build_manager(experiment_plugins: Sequence[Any] = ()) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """A plugin manager holding every plugin active for an experiment."""
    infos = resolve_plugins(experiment_plugins)
    return manager_for(infos), infos


def manager_for(infos: Iterable[PluginInfo]) -> pluggy.PluginManager:
    """A plugin manager holding exactly ``infos``, registered under their names (used in workers too)."""
    pm = _new_pm()
    for info in infos:
        if pm.is_registered(info.plugin):
            raise PluginError(f"{info.label} was given twice; pass each plugin object once")
        if pm.has_plugin(info.name):
            raise PluginError(f"two active plugins are named {info.name!r}; give one a different plugin_name")
        try:
            pm.register(info.plugin, name=info.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"{info.label} has an invalid hook implementation: {exc}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from exc
    problems = implementation_problems(pm)
    if problems:
        raise PluginError("; ".join(problems))
    if pm.hook.wrap_replicate.get_hookimpls():  # wrappers need the replicate itself inside them
        from crystallize._execution.runner import ReplicateBody

        pm.register(ReplicateBody(), name=ReplicateBody.plugin_name)
    observers = _observers()
    if observers:

        def before(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
            for observer in observers:
                observer(hook_name, hook_impls, kwargs)

        pm.add_hookcall_monitoring(before, lambda outcome, hook_name, hook_impls, kwargs: None)
    return pm


def hooks_for(pm: pluggy.PluginManager) -> Hooks:
    """The :class:`~crystallize._dispatch.Hooks` table of ``pm``, direct unless calls are observed."""
    observers = _observers()
    return Hooks(pm, direct=not observers and _registry.direct_calls, observers=observers)


def _observers() -> list[Any]:
    """Who hears of every hook call: the testing kit's monitors, and the tracer when asked for."""
    observers = list(_registry.monitors)
    if _flag(ENV_TRACE):
        hook_log = logging.getLogger("crystallize.hooks")

        def trace(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
            plugins = ", ".join(impl.plugin_name for impl in hook_impls)
            hook_log.debug("%s(%s) -> [%s]", hook_name, ", ".join(kwargs), plugins)

        observers.append(trace)
    return observers


def describe_plugins(pm: pluggy.PluginManager, infos: Iterable[PluginInfo]) -> list[dict[str, Any]]:
    """JSON-ready rows for ``crystallize plugins``."""
    return [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "source": info.source,
            "hooks": _hook_names_of(pm, info.plugin),
        }
        for info in infos
    ]
