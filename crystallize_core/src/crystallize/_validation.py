"""Configuration checks run by :meth:`Experiment.validate` before any work."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any

from crystallize._artifact import Artifact
from crystallize._context import BASELINE
from crystallize._datasource import DataSource
from crystallize._hypothesis import Hypothesis
from crystallize._names import check_distinct, check_name, portable_key
from crystallize._steps import FunctionStep, Pipeline, PipelineStep
from crystallize._treatment import Treatment
from crystallize.errors import ConfigurationError

if TYPE_CHECKING:
    from crystallize._dispatch import Hooks
    from crystallize._experiment import Experiment

__all__ = ["validate", "check_replicates", "artifacts_held_by", "held_artifacts"]


def check_replicates(value: Any, origin: str) -> int:
    """Return ``value`` if it is a positive int, else raise naming ``origin``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{origin} must be a positive int, got {value!r}")
    return value


def held_artifacts(step: PipelineStep) -> list[Artifact]:
    """The artifacts a step holds (attributes or factory parameters)."""
    values: Iterable[Any]
    if isinstance(step, FunctionStep):
        values = step.explicit.values()
    else:
        values = vars(step).values() if hasattr(step, "__dict__") else ()
    found: list[Artifact] = []
    for value in values:
        if isinstance(value, Artifact):
            found.append(value)
        elif isinstance(value, (Sequence, Set)) and not isinstance(value, (str, bytes)):
            found.extend(v for v in value if isinstance(v, Artifact))
        elif isinstance(value, Mapping):
            found.extend(v for v in value.values() if isinstance(v, Artifact))
    return found


def artifacts_held_by(step: PipelineStep) -> set[str]:
    """Names of the artifacts a step holds (attributes or factory parameters)."""
    return {artifact.name for artifact in held_artifacts(step)}


def validate(
    experiment: Experiment,
    treatments: list[Treatment],
    hypotheses: list[Hypothesis],
    hooks: Hooks,
) -> None:
    """Raise :class:`ConfigurationError` describing the first problem found."""
    label = f"Experiment {experiment.key_label}"
    if experiment.datasource is None:
        raise ConfigurationError(f"{label} has no datasource; pass Experiment(datasource=my_source(), ...)")
    if not isinstance(experiment.datasource, DataSource):
        raise ConfigurationError(f"{label}: datasource {experiment.datasource!r} is not a DataSource")
    if not isinstance(experiment.pipeline, Pipeline) or not experiment.pipeline.steps:
        raise ConfigurationError(f"{label} has no pipeline steps; pass Experiment(pipeline=Pipeline([step, ...]))")
    check_replicates(experiment.replicates, f"{label}: replicates")

    seen: set[str] = set()
    for treatment in treatments:
        if not isinstance(treatment, Treatment):
            raise ConfigurationError(f"{label}: treatments must be Treatment objects, got {treatment!r}")
        _recheck(check_name, label, treatment.name, "treatment")  # it may have been renamed since
        if treatment.name in seen:
            raise ConfigurationError(f"{label}: two treatments are named {treatment.name!r}; names must be unique")
        seen.add(treatment.name)
    _recheck(check_distinct, label, [BASELINE, *(t.name for t in treatments)], "condition")
    if hypotheses and not seen - {BASELINE}:
        raise ConfigurationError(
            f"{label} has hypotheses but no treatments to compare with the baseline; "
            "add treatments=[Treatment(...)] or drop the hypotheses"
        )
    names: set[str] = set()
    for hyp in hypotheses:
        if not isinstance(hyp, Hypothesis):
            raise ConfigurationError(f"{label}: hypotheses must be Hypothesis objects, got {hyp!r}")
        if hyp.name in names:
            raise ConfigurationError(f"{label}: two hypotheses are named {hyp.name!r}; names must be unique")
        names.add(hyp.name)

    _check_step_artifacts(experiment, label)
    _check_executors(hooks, label)
    if hooks.validate_experiment is not None:
        hooks.validate_experiment(experiment=experiment)


def _recheck(check: Any, label: str, value: Any, what: str) -> None:
    """Run a name check where the name is used (objects may be changed after construction)."""
    try:
        check(value, what)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{label}: {exc}") from None


def _check_step_artifacts(experiment: Experiment, label: str) -> None:
    owners: dict[tuple[str, str], int] = {}
    names: dict[str, str] = {}
    _recheck(check_distinct, label, list(experiment.outputs), "artifact")
    for index, step in enumerate(experiment.pipeline.steps):
        step_name = step.step_name
        _recheck(check_name, label, step_name, "step")
        # An artifact another experiment declares is an input the step reads (artifact.fetch(ctx)).
        inputs = {a.name for a in held_artifacts(step) if a.name not in experiment.outputs and a._producer(False)}
        for name in sorted(artifacts_held_by(step) - inputs):
            if name not in experiment.outputs:
                raise ConfigurationError(
                    f"{label}: step {index} ({step.step_name!r}) holds Artifact({name!r}), which is not "
                    f"in outputs=[...]; declare it: Experiment(..., outputs=[...])"
                )
            # Compared as a case-insensitive, normalising file system would: the same file there.
            other = owners.setdefault((portable_key(step_name), portable_key(name)), index)
            if other != index:
                earlier = names.get(portable_key(step_name), step_name)
                same = "both named" if earlier == step_name else f"named {earlier!r} and"
                raise ConfigurationError(
                    f"{label}: steps {other} and {index} are {same} {step_name!r} and both "
                    f"write Artifact({name!r}); the second would overwrite the first. Rename one "
                    "step (class or function name)"
                )
            names.setdefault(portable_key(step_name), step_name)


def _check_executors(hooks: Hooks, label: str) -> None:
    from crystallize._execution.serial import SerialExecution

    if hooks.execute_replicates is None:
        return
    implementations = hooks.implementations("execute_replicates")
    engines = [impl.plugin for impl in implementations if not isinstance(impl.plugin, SerialExecution)]
    if len(engines) > 1:
        raise ConfigurationError(
            f"{label}: several execution engines are active ({', '.join(map(repr, engines))}); "
            "pass only one in plugins=[...]"
        )
