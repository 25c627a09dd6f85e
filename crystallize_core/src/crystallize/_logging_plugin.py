"""crystallize-ml 0.27's :class:`LoggingPlugin`: a run summary and step progress on the ``crystallize`` logger.

It is itself a :class:`~crystallize._plugin_adapter.BasePlugin`, so it keeps
0.27's methods (``plugin.before_run(experiment)``) and runs on the hooks
through the same adapter as any 0.27 plugin.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from crystallize._plugin_adapter import BasePlugin

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._experiment import Experiment
    from crystallize._result import Result
    from crystallize._steps import PipelineStep

__all__ = ["LoggingPlugin"]


class LoggingPlugin(BasePlugin):
    """Log a summary when a run starts and ends, and (``verbose``) each finished step.

    :param verbose: also log ``Rep r/n <condition> finished step <name>``
        after every step (where the replicate runs).
    :param log_level: the level set on the ``crystallize`` logger when a run
        starts (``"DEBUG"``, ``"INFO"``, ...; an unknown name means INFO). A
        stream handler is added to that logger if it has none.
    """

    plugin_name = "logging"

    def __init__(self, verbose: bool = False, log_level: str = "INFO") -> None:
        self.verbose = verbose
        self.log_level = log_level
        self._started: dict[int, float] = {}

    def before_run(self, experiment: Experiment) -> None:
        logger = logging.getLogger("crystallize")
        level = getattr(logging, str(self.log_level).upper(), None)
        logger.setLevel(level if isinstance(level, int) else logging.INFO)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
            logger.addHandler(handler)
        seed = _seed_of(experiment)
        logger.info(
            "Experiment: %d replicates, %d treatments, %d hypotheses (seed=%s)",
            experiment.replicates,
            len(experiment.treatments),
            len(experiment.hypotheses),
            seed,
        )
        self._started[id(experiment)] = time.perf_counter()

    def after_step(self, experiment: Experiment, step: PipelineStep, data: Any, ctx: FrozenContext) -> None:
        if not self.verbose:
            return
        logging.getLogger("crystallize").info(
            "Rep %s/%s %s finished step %s",
            ctx.get("replicate"),
            experiment.replicates,
            ctx.get("condition"),
            step.step_name,
        )

    def after_run(self, experiment: Experiment, result: Result) -> None:
        started = self._started.pop(id(experiment), None)
        duration = 0.0 if started is None else time.perf_counter() - started
        bests = [
            f"{h.name}: {h.ranking.get('best')!r}"
            for h in result.metrics.hypotheses
            if h.ranking.get("best") is not None
        ]
        errors = sum(len(e) if isinstance(e, dict) else 1 for e in result.errors.values())
        logging.getLogger("crystallize").info(
            "Completed in %.1fs%s; %d errors", duration, "; Best " + ", ".join(bests) if bests else "", errors
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"verbose": self.verbose, "log_level": self.log_level, "_started": {}}

    def __repr__(self) -> str:
        return f"LoggingPlugin(verbose={self.verbose!r}, log_level={self.log_level!r})"


def _seed_of(experiment: Experiment) -> Any:
    from crystallize._seeding import SeedPlugin

    get_plugin = getattr(experiment, "get_plugin", None)
    plugin = get_plugin(SeedPlugin) if callable(get_plugin) else None
    return None if plugin is None else getattr(plugin, "seed", None)
