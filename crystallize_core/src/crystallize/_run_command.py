"""``crystallize run FILE_OR_MODULE:EXPERIMENT``: run an experiment or a graph from the shell.

::

    crystallize run experiments.py:exp                      # a file and the name of an Experiment in it
    crystallize run mypkg.experiments:graph --strategy resume
    crystallize run train.py:exp -S lr=0.3 -S train.epochs=20 --replicates 10

The file is imported as a module (its ``if __name__ == "__main__":`` block
does not run); ``EXPERIMENT`` names an :class:`~crystallize.Experiment` or
:class:`~crystallize.ExperimentGraph` in it, or a function of no arguments
returning one.

``-S key=value`` sets a step parameter before the run: ``lr=0.3`` on every
step that has a parameter ``lr``, ``train.lr=0.3`` on the step named
``train`` only. Values are read as JSON when they parse (``0.3``, ``true``,
``[1, 2]``, ``"text"``) and as text otherwise. A parameter is part of the
experiment's identity, so an override makes a different experiment: a
named experiment's ``--strategy resume`` refuses to continue a run of other
parameters, naming the change.

Exit status: 0 when every replicate succeeded, 1 when some failed (the
summary lists them), 2 for a target or override that cannot be used, 3 when
the run was refused (a ``ResumeError`` naming what changed, a configuration
error, ...; the message says why).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from crystallize._commands import Command

__all__ = ["RUN_COMMAND", "load_target", "apply_overrides", "parse_override"]


class UsageError(Exception):
    """A target or an override that cannot be used; the message says why."""


def parse_override(text: str) -> tuple[str | None, str, Any]:
    """``"train.lr=0.3"`` -> ``("train", "lr", 0.3)``; ``"lr=0.3"`` -> ``(None, "lr", 0.3)``."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"-S {text!r}: expected key=value (for example -S lr=0.3 or -S train.lr=0.3)")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    step, dot, name = key.strip().rpartition(".")
    return (step if dot else None), name, value


def _module_from_file(path: Path) -> Any:
    name = path.stem
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)  # sibling imports, and worker processes importing it by name
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_target(spec: str) -> Any:
    """The :class:`~crystallize.Experiment` or :class:`~crystallize.ExperimentGraph` ``spec`` names."""
    from crystallize._experiment import Experiment
    from crystallize._graph import ExperimentGraph

    where, sep, attribute = spec.rpartition(":")
    if not sep or not where or not attribute:
        raise UsageError(f"{spec!r}: expected FILE.py:NAME or package.module:NAME (for example experiments.py:exp)")
    path = Path(where)
    if where.endswith(".py") or path.is_file():
        if not path.is_file():
            raise UsageError(f"{where} does not exist")
        module = _module_from_file(path)
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise UsageError(f"cannot import {where!r}: {exc}") from None
    try:
        target = getattr(module, attribute)
    except AttributeError:
        found = sorted(name for name, value in vars(module).items() if isinstance(value, (Experiment, ExperimentGraph)))
        raise UsageError(
            f"{where} has no {attribute!r} (experiments and graphs there: {', '.join(found) or 'none'})"
        ) from None
    if not isinstance(target, (Experiment, ExperimentGraph)) and callable(target):
        target = target()
    if not isinstance(target, (Experiment, ExperimentGraph)):
        raise UsageError(f"{spec} is {type(target).__name__}, not an Experiment or ExperimentGraph")
    return target


def _step_params(step: Any) -> dict[str, Any]:
    try:
        return dict(step.params)
    except Exception:  # noqa: BLE001 - a step without usable params has none to override
        return {}


def _set_param(step: Any, name: str, value: Any) -> Any:
    """``step`` with parameter ``name`` set to ``value`` (a new step for ``@pipeline_step`` functions)."""
    from crystallize._steps import FunctionStep, _rebuild

    if isinstance(step, FunctionStep):
        explicit = {**step.explicit, name: value}
        if step.factory is not None:
            return _rebuild(step.factory, explicit)
        injected = tuple((n, d) for n, d in step.injected if n != name)
        return FunctionStep(step.fn, explicit, step.defaults, injected)
    if not hasattr(step, name):
        raise UsageError(
            f"step {type(step).__name__!r} reports parameter {name!r} but has no attribute of that name to set"
        )
    setattr(step, name, value)
    return step


def apply_overrides(target: Any, overrides: list[str]) -> list[str]:
    """Set step parameters from ``-S`` overrides on every experiment of ``target``; one line per change."""
    from crystallize._graph import ExperimentGraph

    experiments = list(target.experiments.values()) if isinstance(target, ExperimentGraph) else [target]
    changes = []
    for text in overrides:
        step_name, name, value = parse_override(text)
        hits = 0
        for experiment in experiments:
            steps = [] if experiment.pipeline is None else experiment.pipeline.steps
            for index, step in enumerate(steps):
                label = getattr(step, "step_name", type(step).__name__)
                if step_name is not None and label != step_name:
                    continue
                if name not in _step_params(step):
                    continue
                steps[index] = _set_param(step, name, value)
                experiment._forget_identity()  # its identity includes its parameters
                hits += 1
                changes.append(f"{experiment.key}: {label}.{name} = {value!r}")
        if not hits:
            available = sorted(
                f"{getattr(s, 'step_name', type(s).__name__)}.{p}"
                for e in experiments
                for s in ([] if e.pipeline is None else e.pipeline.steps)
                for p in _step_params(s)
            )
            raise UsageError(
                f"-S {text!r}: no step has a parameter {name!r}"
                + (f" named {step_name!r}" if step_name else "")
                + f" (parameters: {', '.join(available) or 'none'})"
            )
    return changes


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="FILE_OR_MODULE:EXPERIMENT", help="e.g. experiments.py:exp or pkg.mod:graph")
    parser.add_argument(
        "-S",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a step parameter: lr=0.3 (every step with lr) or train.lr=0.3; values are JSON or text",
    )
    parser.add_argument("--replicates", type=int, default=None, metavar="N", help="replicates per condition")
    parser.add_argument("--strategy", choices=("rerun", "resume"), default="rerun", help="default: rerun")


def _run(args: argparse.Namespace) -> int:
    from crystallize._graph import ExperimentGraph

    if args.replicates is not None and args.replicates < 1:
        print(f"crystallize run: --replicates must be at least 1, got {args.replicates}", file=sys.stderr)
        return 2
    try:
        target = load_target(args.target)
        for line in apply_overrides(target, args.overrides):
            print(f"override {line}", file=sys.stderr)
    except UsageError as exc:
        print(f"crystallize run: {exc}", file=sys.stderr)
        return 2
    from crystallize.errors import CrystallizeError

    try:
        if isinstance(target, ExperimentGraph):
            results = target.run(strategy=args.strategy, replicates=args.replicates)
        else:
            results = {target.key: target.run(strategy=args.strategy, replicates=args.replicates)}
    except CrystallizeError as exc:  # refused before or while running: the message says why and what to do
        print(f"crystallize run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    for index, result in enumerate(results.values()):
        if index:
            print()
        result.print_table()
        if result.run is not None and result.run.location:
            print(f"stored in {result.run.location}")
    return 0 if all(result.ok for result in results.values()) else 1


RUN_COMMAND = Command(
    name="run",
    help="run an experiment or graph from a file or module, with parameter overrides",
    configure=_configure,
    run=_run,
    description=(
        "Run an Experiment or ExperimentGraph named in a file (experiments.py:exp) or module (pkg.mod:exp). "
        "-S lr=0.3 sets parameter lr on every step that has it, -S train.lr=0.3 on step train only. "
        "Exit status: 0 when every replicate succeeded, 1 when some failed, 2 for an unusable target or override, "
        "3 when the run was refused (the message says why)."
    ),
)
