"""Chains of experiments: :class:`ExperimentGraph`."""

from __future__ import annotations

import contextvars
import graphlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypedDict

import attrs

from crystallize._records import FactKey
from crystallize.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

    from crystallize._dispatch import Hooks
    from crystallize._experiment import Experiment
    from crystallize._registry import PluginInfo
    from crystallize._result import Result
    from crystallize._treatment import Treatment

__all__ = ["ExperimentGraph", "RERUN_FACT", "RerunFact"]

log = logging.getLogger("crystallize.graph")


class RerunFact(TypedDict):
    """:data:`RERUN_FACT`: why a graph reran an experiment instead of resuming it."""

    reasons: list[str]


#: Set by the core on a run that :meth:`ExperimentGraph.run` started instead of resuming:
#: the reasons the experiment was stale (recorded in ``metadata.json`` under ``facts``).
RERUN_FACT: FactKey[RerunFact] = FactKey("rerun", "why the graph reran this experiment")

#: The reasons of the rerun being started, read by the lifecycle when it builds the run.
RERUN_REASONS: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("crystallize_rerun", default=())
#: Conditions an experiment runs only because an upstream experiment has them: their keys
#: were meant for the upstream, so nothing reading them downstream is no news.
INHERITED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("crystallize_inherited", default=frozenset())


class ExperimentGraph:
    """Experiments that read each other's artifacts, run in dependency order.

    Edges come from the datasources: an experiment whose datasource is
    ``producer.artifact_datasource(...)`` depends on ``producer``. Every
    experiment must be named. A downstream experiment also runs under its
    upstream experiments' treatments (its own win on a name clash), so each
    condition's artifacts flow through the chain.

    ``ExperimentGraph(exp1, exp2)`` and
    ``ExperimentGraph.from_experiments([exp1, exp2])`` are equivalent. A graph
    can also be built step by step (crystallize-ml's way):
    ``graph = ExperimentGraph(); graph.add_experiment(a); graph.add_experiment(b);
    graph.add_dependency(b, a)`` — an explicit dependency orders the run and
    passes treatments down like one found from a datasource; a cycle it
    makes is reported when the graph runs.

    :param name: the graph's name (the final experiment's, when there is one).
    """

    def __init__(self, *experiments: Experiment, name: str | None = None) -> None:
        self.experiments: dict[str, Experiment] = {}
        self.dependencies: dict[str, set[str]] = {}  # explicit edges: {downstream: {upstream}}
        for exp in experiments:
            self._add(exp)
        self.parents: dict[str, list[str]] = {}
        self.order: list[str] = []
        self._update()
        self.name = name if name is not None else self._final_name()
        self.reasons: dict[str, list[str]] = {}

    def _add(self, exp: Experiment) -> None:
        if not getattr(exp, "name", None):
            raise ConfigurationError(
                f"every experiment in a graph needs a name; {exp!r} has none (Experiment(..., name='...'))"
            )
        if exp.name in self.experiments and self.experiments[exp.name] is not exp:
            raise ConfigurationError(f"two experiments in the graph are named {exp.name!r}")
        self.experiments[exp.name] = exp  # type: ignore[index]

    def _update(self) -> None:
        """Recompute :attr:`parents` and :attr:`order`; raise on a cycle, naming it."""
        self.parents = {
            name: sorted(
                {u.experiment for u in exp.datasource.upstream if u.experiment in self.experiments}
                | self.dependencies.get(name, set())
            )
            for name, exp in self.experiments.items()
        }
        sorter = graphlib.TopologicalSorter(self.parents)
        try:
            self.order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise ConfigurationError(f"the experiment graph contains cycles: {cycle}") from None
        self._stale = False

    def _final_name(self) -> str | None:
        downstream = {parent for parents in self.parents.values() for parent in parents}
        finals = [name for name in self.order if name not in downstream]
        return finals[0] if len(finals) == 1 else None

    def add_experiment(self, experiment: Experiment) -> None:
        """Add ``experiment`` (it must be named); its datasource's upstream experiments become edges."""
        self._add(experiment)
        self._stale = True

    def add_dependency(self, downstream: Experiment, upstream: Experiment) -> None:
        """Make ``downstream`` run after ``upstream`` and inherit its treatments.

        Both must have been added. A cycle is reported when the graph runs.
        """
        for exp in (downstream, upstream):
            name = getattr(exp, "name", None)
            if not name or self.experiments.get(name) is not exp:
                raise ConfigurationError(
                    f"add_dependency: add experiment {name or exp!r} to the graph first (graph.add_experiment(...))"
                )
        self.dependencies.setdefault(downstream.name, set()).add(upstream.name)  # type: ignore[arg-type]
        self._stale = True

    @classmethod
    def from_experiments(cls, experiments: Iterable[Experiment]) -> ExperimentGraph:
        """Build a graph from a list of experiments."""
        return cls(*experiments)

    @classmethod
    def from_yaml(cls, config: str | Path) -> ExperimentGraph:
        """Load crystallize-ml experiment folders as a graph.

        ``config`` is the final experiment's ``config.yaml`` (its upstream
        experiments, named ``"<experiment>#<output>"`` in its datasource, are
        found in sibling folders), or a folder of experiment folders. See
        ``crystallize._folders``. Needs PyYAML.
        """
        from crystallize._folders import graph_from_yaml

        return graph_from_yaml(cls, config)

    def treatments_for(self, name: str) -> list[Treatment]:
        """``name``'s treatments plus those inherited from its upstream experiments."""
        merged: dict[str, Treatment] = {}
        for parent in self.parents[name]:
            for treatment in self.treatments_for(parent):
                merged[treatment.name] = treatment
        for treatment in self.experiments[name].treatments:
            merged[treatment.name] = treatment
        return list(merged.values())

    def run(
        self,
        strategy: str = "rerun",
        replicates: int | None = None,
        treatments: Iterable[Treatment] | None = None,
    ) -> dict[str, Result]:
        """Run every experiment in dependency order; returns ``{name: Result}``.

        With ``strategy="resume"`` the graph behaves like ``make``: an
        experiment continues its latest run unless it is stale — its code or
        parameters changed, its outputs are missing, an upstream experiment
        reran (in this call or since it last ran), as reported by the
        ``stale_reason`` hooks. A stale experiment runs anew
        (``strategy="rerun"``: a new version, or in place of the old one when
        the store is unversioned), and so does everything downstream of it.
        The reasons are logged, kept in :attr:`reasons` and recorded with the
        run (``run.facts[RERUN_FACT]``, so in ``metadata.json``). A graph
        where nothing changed runs nothing.
        """
        return self._run(strategy, replicates, treatments, None)

    async def arun(
        self,
        strategy: str = "rerun",
        replicates: int | None = None,
        treatments: Iterable[Treatment] | None = None,
        progress_callback: Callable[[str, str], Any] | None = None,
    ) -> dict[str, Result]:
        """:meth:`run` from async code; returns ``{name: Result}``.

        :param progress_callback: ``callback(status, name)`` — ``"running"``
            before each experiment, ``"completed"`` after it; a coroutine
            function is awaited on the caller's loop.
        """
        import asyncio

        from crystallize._async import run_coroutine, target_loop

        loop = asyncio.get_running_loop()

        def notify(status: str, name: str) -> None:
            if progress_callback is None:
                return
            outcome = progress_callback(status, name)
            if hasattr(outcome, "__await__"):
                run_coroutine(outcome)

        def run() -> dict[str, Result]:
            with target_loop(loop):
                return self._run(strategy, replicates, treatments, notify)

        return await asyncio.to_thread(run)

    def _run(
        self,
        strategy: str,
        replicates: int | None,
        treatments: Iterable[Treatment] | None,
        notify: Callable[[str, str], None] | None,
    ) -> dict[str, Result]:
        if self._stale:
            self._update()
        chosen = None if treatments is None else list(treatments)
        results: dict[str, Result] = {}
        self.reasons = {}
        hooks = self._hooks()
        if hooks.before_graph_run is not None:
            hooks.before_graph_run(graph=self, strategy=strategy)
        try:
            for name in self.order:
                exp = self.experiments[name]
                mode = strategy
                reasons: list[str] = []
                if strategy == "resume":
                    reasons = [f"upstream {p!r} reran" for p in self.parents[name] if p in self.reasons]
                    caller = exp._plugins().hooks.stale_reason
                    reasons += [r for r in (caller(experiment=exp) if caller else []) if r and r not in reasons]
                    if reasons:
                        self.reasons[name] = reasons
                        log.warning("experiment %r reruns: %s", name, "; ".join(reasons))
                        mode = "rerun"
                conditions = chosen if chosen is not None else self.treatments_for(name)
                own = {t.name for t in exp.treatments}
                token = RERUN_REASONS.set(tuple(reasons))
                inherited = INHERITED.set(frozenset(t.name for t in conditions if t.name not in own))
                if notify is not None:
                    notify("running", name)
                try:
                    results[name] = exp.run(
                        treatments=conditions,
                        replicates=replicates if not _has_upstream(exp) else None,
                        strategy=mode,
                    )
                finally:
                    INHERITED.reset(inherited)
                    RERUN_REASONS.reset(token)
                if notify is not None:
                    notify("completed", name)
        except BaseException as exc:
            hooks.blame(exc)
            try:
                hooks.call_isolated("after_graph_run", graph=self, results=dict(results))
            except Exception as after_exc:  # noqa: BLE001 - keep the original error
                log.error("after_graph_run raised %r while handling %r", after_exc, exc)
            raise
        hooks.call_isolated("after_graph_run", graph=self, results=dict(results))
        return results

    def _hooks(self) -> Hooks:
        """The hooks of every plugin active for any experiment of the graph, each object once."""
        from crystallize import _registry

        infos: dict[int, PluginInfo] = {}
        names: set[str] = set()
        for name in self.order:
            for info in self.experiments[name]._plugins().infos:
                if id(info.plugin) in infos:
                    continue
                if info.name in names:  # another experiment's own object of that name
                    info = attrs.evolve(info, name=f"{info.name} (experiment {name!r})")
                names.add(info.name)
                infos[id(info.plugin)] = info
        return _registry.hooks_for(_registry.manager_for(infos.values()))

    def __repr__(self) -> str:
        return f"ExperimentGraph({' -> '.join(self.order)})"


def _has_upstream(exp: Experiment) -> bool:
    """Whether ``exp`` reads another experiment (which then dictates replicates)."""
    return bool(exp.datasource.upstream)
