"""The :class:`Experiment`: a datasource, a pipeline, conditions and plugins."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from crystallize._artifact import Artifact
from crystallize._datasource import CallableDataSource, DataSource
from crystallize._identity import digest, signature
from crystallize._names import check_name
from crystallize._steps import Pipeline
from crystallize.errors import ConfigurationError

if TYPE_CHECKING:
    import pluggy

    from crystallize._dispatch import Hooks
    from crystallize._hypothesis import Hypothesis
    from crystallize._registry import PluginInfo
    from crystallize._result import Result
    from crystallize._store import RunStore
    from crystallize._treatment import Treatment

__all__ = ["Experiment"]


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
    """

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
        self.replicates = replicates
        self._id: str | None = None
        self._signature: dict[str, Any] | None = None
        self._plugin_cache: PluginState | None = None
        self._lock = threading.Lock()

    # -- identity ---------------------------------------------------------------

    @property
    def id(self) -> str:
        """Stable hash of the datasource and the steps: their names, code and parameters.

        The hash of :meth:`signature` (``docs/provenance.md`` says what it covers).
        """
        if self._id is None:
            self._id = digest(self.signature())
        return self._id

    def _forget_identity(self) -> None:
        """Drop the cached :attr:`id` and :meth:`signature` (a step was replaced after construction)."""
        self._id = None
        self._signature = None

    def signature(self) -> dict[str, Any]:
        """The canonical description :attr:`id` hashes (computed once).

        ``{"datasource": ..., "steps": [...]}``: for each component its name,
        its code fingerprint (``"code"``) and its parameters described by
        value. Recorded in ``metadata.json``; comparing two of them with
        :func:`crystallize.plugin.identity_changes` says what changed.
        """
        if self._signature is None:
            steps = [] if self.pipeline is None else self.pipeline.steps
            self._signature = signature(self.datasource, steps)
        return self._signature

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

    def run(
        self,
        treatments: Iterable[Treatment] | None = None,
        hypotheses: Iterable[Hypothesis] | None = None,
        replicates: int | None = None,
        strategy: str = "rerun",
    ) -> Result:
        """Run every condition over every replicate and return the :class:`Result`.

        :param treatments: use these instead of the experiment's treatments.
        :param hypotheses: use these instead of the experiment's hypotheses.
        :param replicates: use this count instead of the experiment's (an
            artifact datasource's count must not be contradicted).
        :param strategy: ``"rerun"`` starts a new run; ``"resume"`` continues
            the latest one, skipping completed conditions and replicates.

        A failing replicate never stops the others; its error is in
        ``result.errors``.
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
        step: str,
        name: str,
        require_metadata: bool = False,
        version: int | None = None,
    ) -> DataSource:
        """A datasource yielding, per replicate, the path of an artifact this experiment wrote.

        :param step: the producing step's name (class name, or function name).
        :param name: the artifact's name.
        :param require_metadata: raise unless the producer's run recorded
            ``metadata.json`` (i.e. ran with ``ArtifactPlugin``).
        :param version: the run version to read; the latest when ``None``.

        The consumer's replicate count is set from the producer's metadata.
        Works in another file or process: the producer is found by its name,
        or by its id when unnamed.
        """
        check_name(step, "step")
        check_name(name, "artifact")
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
