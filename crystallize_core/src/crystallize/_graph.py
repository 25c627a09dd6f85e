"""Chains of experiments: :class:`ExperimentGraph`."""

from __future__ import annotations

import contextvars
import graphlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypedDict

import attrs

from crystallize._records import FactKey
from crystallize.errors import ConfigurationError

if TYPE_CHECKING:
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
    ``ExperimentGraph.from_experiments([exp1, exp2])`` are equivalent.
    """

    def __init__(self, *experiments: Experiment) -> None:
        self.experiments: dict[str, Experiment] = {}
        for exp in experiments:
            if not getattr(exp, "name", None):
                raise ConfigurationError(
                    f"every experiment in a graph needs a name; {exp!r} has none (Experiment(..., name='...'))"
                )
            if exp.name in self.experiments and self.experiments[exp.name] is not exp:
                raise ConfigurationError(f"two experiments in the graph are named {exp.name!r}")
            self.experiments[exp.name] = exp  # type: ignore[index]
        self.parents: dict[str, list[str]] = {
            name: sorted({u.experiment for u in exp.datasource.upstream if u.experiment in self.experiments})
            for name, exp in self.experiments.items()
        }
        sorter = graphlib.TopologicalSorter(self.parents)
        try:
            self.order: list[str] = list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise ConfigurationError(f"the experiment graph has a cycle: {cycle}") from None
        self.reasons: dict[str, list[str]] = {}

    @classmethod
    def from_experiments(cls, experiments: Iterable[Experiment]) -> ExperimentGraph:
        """Build a graph from a list of experiments."""
        return cls(*experiments)

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
                try:
                    results[name] = exp.run(
                        treatments=conditions,
                        replicates=replicates if not _has_upstream(exp) else None,
                        strategy=mode,
                    )
                finally:
                    INHERITED.reset(inherited)
                    RERUN_REASONS.reset(token)
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
