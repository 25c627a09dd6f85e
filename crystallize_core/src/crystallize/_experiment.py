"""The :class:`Experiment`: a datasource, a pipeline, conditions and plugins."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from crystallize._artifact import Artifact
from crystallize._datasource import CallableDataSource, DataSource
from crystallize._identity import digest, signature
from crystallize._names import check_name
from crystallize._steps import Pipeline
from crystallize.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

    import pluggy

    from crystallize._builder import ExperimentBuilder
    from crystallize._dispatch import Hooks
    from crystallize._hypothesis import Hypothesis
    from crystallize._optimize import BaseOptimizer
    from crystallize._registry import PluginInfo
    from crystallize._result import Result
    from crystallize._store import RunStore
    from crystallize._treatment import Treatment

__all__ = ["Experiment"]


class _NoData(enum.Enum):
    """``apply(data=...)`` was not given: fetch from the datasource."""

    NO_DATA = "fetch from the datasource"


_NO_DATA: Any = _NoData.NO_DATA

#: Context keys the core sets for every replicate; ``initial_ctx`` may not set them.
_RESERVED_KEYS = frozenset({"replicate", "condition", "seed_used"})


def _initial_ctx(initial: Mapping[str, Any] | None) -> dict[str, Any]:
    if initial is None:
        return {}
    if not isinstance(initial, Mapping):
        raise TypeError(f"initial_ctx must be a mapping of context keys to values, got {initial!r}")
    for key in initial:
        if not isinstance(key, str):
            raise TypeError(f"initial_ctx keys are context key names (str), got {key!r}")
        if key in _RESERVED_KEYS:
            raise ValueError(f"initial_ctx may not set {key!r}: the core sets it for every replicate")
    return dict(initial)


@attrs.frozen(eq=False)
class PluginState:
    """The plugins active for one experiment, with their hooks ready to call."""

    manager: pluggy.PluginManager
    infos: list[PluginInfo]
    hooks: Hooks
    key: tuple[Any, ...]

    def hooks_of(self, plugin: Any) -> list[str]:
        return [caller.name for caller in self.manager.get_hookcallers(plugin) or ()]


class Experiment:
    """A pipeline run over replicates, under a baseline and treatments.

    :param datasource: provides each replicate's input (a :class:`DataSource`,
        or a ``callable(ctx)``).
    :param pipeline: a :class:`Pipeline` (or a list of steps).
    :param plugins: plugin objects active for this experiment only: providers
        such as storage (``ArtifactPlugin(root_dir="artifacts", versioned=True)``)
        and execution engines, and observers. Each replaces an installed
        plugin of the same name (its ``plugin_name``).
    :param outputs: the :class:`Artifact` objects steps may write.
    :param name: storage key; when omitted the experiment is stored under its
        :attr:`id`, a stable hash of its datasource and steps.
    :param treatments: extra conditions besides the baseline.
    :param hypotheses: comparisons verified after every run.
    :param replicates: replicates per condition (a datasource reading
        another experiment's artifacts may impose its own count).
    :param description: free text, recorded in metadata.
    :param initial_ctx: keys every replicate's context starts with (and the
        context steps' ``setup`` receives); part of the experiment's id.
        Values are shared by the replicates: treat them as read-only, or
        give a :func:`~crystallize.resource_factory` for per-thread objects.
    """

    #: ``executor_type`` values :class:`~crystallize.ParallelExecution` accepts.
    VALID_EXECUTOR_TYPES = frozenset({"thread", "process"})

    def __init__(
        self,
        datasource: DataSource | Callable[[Any], Any] | None,
        pipeline: Pipeline | Iterable[Any] | None,
        plugins: Iterable[Any] | None = None,
        outputs: Iterable[Artifact] | None = None,
        name: str | None = None,
        treatments: Iterable[Treatment] | None = None,
        hypotheses: Iterable[Hypothesis] | None = None,
        replicates: int = 1,
        *,
        description: str | None = None,
        initial_ctx: Mapping[str, Any] | None = None,
    ) -> None:
        if datasource is not None and not isinstance(datasource, DataSource):
            if getattr(datasource, "__crystallize_factory__", None) == "datasource":
                raise TypeError(
                    f"datasource={datasource.__name__!r} is a @data_source factory; "
                    f"call it: datasource={datasource.__name__}()"
                )
            if not callable(datasource):
                raise TypeError(f"datasource must be a DataSource or a callable(ctx), got {datasource!r}")
            datasource = CallableDataSource(datasource)
        self.datasource = datasource
        if pipeline is not None and not isinstance(pipeline, Pipeline):
            pipeline = Pipeline(pipeline)
        self.pipeline = pipeline
        self.name = None if name is None else check_name(name, "experiment")
        self.description = description
        self.plugins: list[Any] = list(plugins or ())
        self.outputs: dict[str, Artifact] = {}
        for artifact in outputs or ():
            if not isinstance(artifact, Artifact):
                raise TypeError(f"outputs must hold Artifact objects, got {artifact!r}")
            if artifact.name in self.outputs and self.outputs[artifact.name] is not artifact:
                raise ValueError(f"two outputs are named {artifact.name!r}; artifact names must be unique")
            self.outputs[artifact.name] = artifact
        self.treatments: list[Treatment] = list(treatments or ())
        self.hypotheses: list[Hypothesis] = list(hypotheses or ())
        if isinstance(replicates, bool) or not isinstance(replicates, int):
            raise TypeError(f"replicates must be an int, got {type(replicates).__name__}: {replicates!r}")
        self.replicates = replicates
        self.initial_ctx: dict[str, Any] = _initial_ctx(initial_ctx)
        for artifact in self.outputs.values():
            artifact._declared_by(self)
        self._id: str | None = None
        self._signature: dict[str, Any] | None = None
        self._pipeline_signature: str | None = None
        self._plugin_cache: PluginState | None = None
        self._lock = threading.Lock()

    # -- identity ---------------------------------------------------------------

    @property
    def id(self) -> str:
        """Stable hash of the datasource and the steps (their names, code and parameters) and of ``initial_ctx``.

        The hash of :meth:`signature` (``docs/provenance.md`` says what it covers).
        """
        if self._id is None:
            self._id = digest(self.signature())
        return self._id

    def _forget_identity(self) -> None:
        """Drop the cached :attr:`id` and :meth:`signature` (a step was replaced after construction)."""
        self._id = None
        self._signature = None
        self._pipeline_signature = None

    def signature(self) -> dict[str, Any]:
        """The canonical description :attr:`id` hashes (computed once).

        ``{"datasource": ..., "steps": [...]}`` (and ``"initial_ctx"`` when
        one is given): for each component its name,
        its code fingerprint (``"code"``) and its parameters described by
        value. Recorded in ``metadata.json``; comparing two of them with
        :func:`crystallize.plugin.identity_changes` says what changed.
        """
        if self._signature is None:
            steps = [] if self.pipeline is None else self.pipeline.steps
            self._signature = signature(self.datasource, steps)
            if self.initial_ctx:
                from crystallize._identity import describe

                self._signature["initial_ctx"] = describe(self.initial_ctx)
        return self._signature

    def pipeline_signature(self) -> str:
        """``pipeline.signature()``, computed once like :attr:`id` (what ``result.provenance`` records)."""
        if self._pipeline_signature is None:
            self._pipeline_signature = "[]" if self.pipeline is None else self.pipeline.signature()
        return self._pipeline_signature

    # -- construction -------------------------------------------------------------

    @classmethod
    def builder(cls, name: str | None = None) -> ExperimentBuilder:
        """A fluent :class:`~crystallize.ExperimentBuilder`: ``Experiment.builder("e").datasource(...)...build()``."""
        from crystallize._builder import ExperimentBuilder

        return ExperimentBuilder(name)

    @classmethod
    def from_yaml(cls, config_path: str | Path) -> Experiment:
        """Build an experiment from a crystallize-ml experiment folder's ``config.yaml``.

        The folder holds ``config.yaml`` and the modules it names:
        ``datasources.py``, ``steps.py`` (or a ``steps/`` package), and
        optionally ``outputs.py`` and ``verifiers.py``. See
        ``crystallize._folders`` for the format. Needs PyYAML.
        """
        from crystallize._folders import experiment_from_yaml

        return experiment_from_yaml(config_path)

    def set_default_plugins(self) -> None:
        """Pin the plugins that would run this experiment into :attr:`plugins`.

        By default the active plugins are resolved at each run: the built-in
        ones, those installed distributions provide, and those passed here.
        After this call, :attr:`plugins` holds one object of each, so they can
        be inspected and configured (``exp.get_plugin(SeedPlugin)``), and later
        installs no longer change this experiment. Nothing is added that
        would store files: storage is still only what you pass.
        """
        present = {id(p) for p in self.plugins}
        for info in self._plugins().infos:
            if id(info.plugin) not in present:
                self.plugins.append(info.plugin)

    @property
    def key(self) -> str:
        """Where this experiment is stored: its name, else its id."""
        return self.name or self.id

    @property
    def key_label(self) -> str:
        return repr(self.name) if self.name else f"{self.id} (unnamed)"

    # -- plugins ------------------------------------------------------------------

    def _plugins(self) -> PluginState:
        """The active plugins and hook callers (built once, rebuilt if plugins change)."""
        from crystallize import _registry

        key = (_registry.generation(), tuple(id(p) for p in self.plugins))
        state = self._plugin_cache
        if state is not None and state.key == key:
            return state
        with self._lock:
            pm, infos = _registry.build_manager(self.plugins)
            state = PluginState(pm, infos, _registry.hooks_for(pm), key)
            self._plugin_cache = state
        return state

    def get_plugin(self, kind: type) -> Any:
        """The first active plugin that is an instance of ``kind``, or ``None``."""
        return next((i.plugin for i in self._plugins().infos if isinstance(i.plugin, kind)), None)

    # -- running --------------------------------------------------------------------

    def validate(self) -> None:
        """Check the configuration; raises :class:`~crystallize.errors.ConfigurationError`.

        Runs the core's checks and every plugin's ``validate_experiment``.
        :meth:`run` calls it too; calling it first is optional.
        """
        from crystallize._validation import validate

        validate(self, self.treatments, self.hypotheses, self._plugins().hooks)

    async def arun(
        self,
        treatments: Iterable[Treatment] | None = None,
        hypotheses: Iterable[Hypothesis] | None = None,
        replicates: int | None = None,
        strategy: str = "rerun",
    ) -> Result:
        """:meth:`run` from async code: ``result = await experiment.arun(...)``.

        The run happens in a worker thread, so the caller's event loop keeps
        serving; ``async def`` steps run on the caller's loop (clients bound
        to it work in them).
        """
        import asyncio

        from crystallize._async import target_loop

        loop = asyncio.get_running_loop()

        def run() -> Result:
            with target_loop(loop):
                return self.run(treatments=treatments, hypotheses=hypotheses, replicates=replicates, strategy=strategy)

        return await asyncio.to_thread(run)

    def debug(self, treatment: str | Treatment | None = None, *, verbose: bool = True) -> Result:
        """Run one replicate, serially, to see quickly whether the pipeline works.

        Hypotheses are not verified and the experiment is left as it was.
        Plugins that would run replicates elsewhere (parallel, Dask) are
        set aside for this call; storage and other plugins stay active.

        :param treatment: also run this treatment (a :class:`Treatment`, or
            the name of one of this experiment's; an unknown name runs as a
            treatment that changes nothing).
        :param verbose: log each finished step at INFO level on the
            ``crystallize`` logger.
        """
        from crystallize._apply import debug

        return debug(self, treatment, verbose=verbose)

    def apply(
        self,
        treatment: Treatment | None = None,
        *,
        data: Any = _NO_DATA,
        seed: int | None = None,
    ) -> Any:
        """Run the pipeline once, for inference, and return its output.

        Plugin hooks run as for one replicate (``before_run``,
        ``before_replicate``, ``before_step``, ``after_step``, ``after_run``)
        and steps get ``setup``/``teardown``. Nothing is stored: artifacts the
        steps write are kept in memory for this call only, so a stored run is
        never changed. Steps may read what an earlier run stored with
        ``artifact.fetch(ctx)``. An exception raised by a step propagates.

        :param treatment: apply this treatment's keys first.
        :param data: feed this to the first step instead of fetching from the datasource.
        :param seed: seed this call's random generators with ``seed`` (through
            the active ``SeedPlugin``'s ``seed_fn``) instead of the plugin's own seed.
        """
        from crystallize._apply import apply

        return apply(self, treatment, data=data, seed=seed)

    def optimize(self, optimizer: BaseOptimizer, num_trials: int, replicates_per_trial: int = 1) -> Treatment:
        """Search treatments with ``optimizer`` and return the best one.

        Each trial asks the optimizer for treatments, runs them (hypotheses
        are not verified) and tells it the objective's mean value per
        treatment. See :class:`~crystallize.BaseOptimizer`.
        """
        from crystallize._optimize import optimize

        return optimize(self, optimizer, num_trials, replicates_per_trial)

    async def aoptimize(self, optimizer: BaseOptimizer, num_trials: int, replicates_per_trial: int = 1) -> Treatment:
        """:meth:`optimize` from async code."""
        import asyncio

        from crystallize._async import target_loop

        loop = asyncio.get_running_loop()

        def search() -> Treatment:
            with target_loop(loop):
                return self.optimize(optimizer, num_trials, replicates_per_trial)

        return await asyncio.to_thread(search)

    def run(
        self,
        treatments: Iterable[Treatment] | None = None,
        hypotheses: Iterable[Hypothesis] | None = None,
        replicates: int | None = None,
        strategy: str = "rerun",
    ) -> Result:
        """Run every condition over every replicate and return the :class:`Result`.

        A failing replicate never stops the others; its error is in
        ``result.errors``.

        :param treatments: use these instead of the experiment's treatments.
        :param hypotheses: use these instead of the experiment's hypotheses.
        :param replicates: use this count instead of the experiment's (an
            artifact datasource's count must not be contradicted).
        :param strategy: ``"rerun"`` starts a new run; ``"resume"`` continues
            the latest one, skipping completed conditions and replicates.
        """
        from crystallize._lifecycle import execute

        return execute(
            self,
            treatments=list(self.treatments if treatments is None else treatments),
            hypotheses=list(self.hypotheses if hypotheses is None else hypotheses),
            replicates=replicates,
            strategy=strategy,
        )

    # -- chaining ---------------------------------------------------------------------

    def artifact_datasource(
        self,
        step: str | None,
        name: str = "data.json",
        require_metadata: bool = False,
        version: int | None = None,
        *,
        condition: str | None = None,
    ) -> DataSource:
        """A datasource yielding, per replicate, the path of an artifact this experiment wrote.

        The consumer's replicate count is set from the producer's metadata.
        Works in another file or process: the producer is found by its name,
        or by its id when unnamed.

        :param step: the producing step's name (class name, or function name);
            ``None``: the step that wrote ``name`` in the producer's run (there
            must be exactly one).
        :param name: the artifact's name.
        :param require_metadata: raise unless the producer's run recorded
            ``metadata.json`` (i.e. ran with ``ArtifactPlugin``).
        :param version: the run version to read; the latest when ``None``.
        :param condition: read this condition's files for every consumer
            condition (crystallize-ml 0.27 read ``"baseline"`` by default);
            ``None``: each consumer condition reads the producer's files of
            the same condition, or the baseline's (with a warning) when the
            producer did not run it.
        """
        if isinstance(require_metadata, str):
            raise TypeError(
                f"artifact_datasource(step, name, {require_metadata!r}): the third argument is "
                f"require_metadata; pass the condition by keyword: condition={require_metadata!r}"
            )
        if step is not None:
            check_name(step, "step")
        check_name(name, "artifact")
        if condition is not None:
            check_name(condition, "condition")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
            raise ValueError(f"version must be a non-negative int or None, got {version!r}")
        caller = self._plugins().hooks.artifact_datasource
        source = None
        if caller is not None:
            source = caller(experiment=self, step=step, name=name, require_metadata=require_metadata, version=version)
        if source is None:
            raise ConfigurationError(
                f"no active plugin provides storage for experiment {self.key_label}, so its artifacts "
                "cannot be located; pass a storage plugin such as "
                "crystallize_artifacts.ArtifactPlugin(root_dir=...) in plugins=[...]"
            )
        if condition is not None:
            from crystallize._datasource import FixedCondition

            return FixedCondition(source, condition)
        return source

    def locate_run(self, version: int | None = None) -> RunStore | None:
        """Open a stored run of this experiment for reading (the latest by default).

        Returns ``None`` when no plugin stores this experiment or the run does
        not exist.
        """
        caller = self._plugins().hooks.locate_run
        return None if caller is None else caller(experiment=self, version=version)

    # -- pickling (workers get the experiment without its plugin objects) -------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["plugins"] = []
        state["_plugin_cache"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Experiment {self.key_label}: {len(self.treatments)} treatment(s), replicates={self.replicates}>"
