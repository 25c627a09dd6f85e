"""crystallize-ml's experiment folders: ``Experiment.from_yaml`` and ``ExperimentGraph.from_yaml``.

An experiment folder holds a ``config.yaml`` and the Python modules it names::

    experiments/
      train/
        config.yaml      name, replicates, datasource, steps, outputs, treatments, hypotheses
        datasources.py   @data_source factories
        steps.py         @pipeline_step factories (or a steps/ package, or steps/<name>.py files)
        outputs.py       loaders and writers of outputs (optional)
        verifiers.py     @verifier factories (optional)
      evaluate/
        config.yaml      datasource: {model: "train#model"}  <- reads train's output "model"

``config.yaml``::

    name: train                      # default: the folder's name
    replicates: 3
    datasource: {rows: load_rows}    # alias -> factory in datasources.py, or "<experiment>#<output>"
    steps:
      - normalize                    # a factory in steps.py, called without arguments
      - fit: {model: model, lr: 0.1} # or with arguments; an output's alias binds an Artifact parameter
    outputs:
      model: {file_name: model.pkl, writer: dump, loader: load}   # writer/loader from outputs.py
    treatments:
      high_lr: {lr: 0.5}
    hypotheses:
      - {name: better, verifier: welch, metrics: score}

A single datasource entry is the experiment's datasource; several, or any
``"<experiment>#<output>"`` reference, make an :class:`~crystallize.ExperimentInput`
whose ``fetch`` returns ``{alias: data}``. A step parameter annotated
``Artifact`` takes the output named by its argument (or by its own name). An
output no step uses is an error. The folder's modules are loaded under
private names and pickled by value, so experiments built from folders run
under process and Dask execution too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from crystallize.errors import ConfigurationError

if TYPE_CHECKING:
    from crystallize._artifact import Artifact
    from crystallize._experiment import Experiment
    from crystallize._graph import ExperimentGraph

__all__ = ["find_experiments_root", "experiment_from_yaml", "graph_from_yaml", "load_folder"]

log = logging.getLogger("crystallize")


def find_experiments_root(start: str | Path, *, strict: bool = True) -> Path:
    """The ``experiments`` folder at or above ``start``: one so named, or one it contains.

    :param strict: when no such folder exists, raise ``FileNotFoundError``
        (``True``) or log a warning and return ``start`` (``False``).
    """
    begin = Path(start).resolve()
    for folder in (begin, *begin.parents):
        if folder.name == "experiments":
            return folder
        if (folder / "experiments").is_dir():
            return folder / "experiments"
    if strict:
        raise FileNotFoundError(f"Could not locate an 'experiments' folder at or above {begin}")
    log.warning("Could not locate 'experiments' dir from %s; using %s itself", begin, begin)
    return begin


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise ImportError(
            "experiment folders (config.yaml) need PyYAML: pip install pyyaml (or crystallize-core[yaml])"
        ) from exc
    return yaml


class _Folder:
    """One experiment folder: its config and its modules, loaded on demand."""

    def __init__(self, config_path: Path) -> None:
        self.path = config_path
        self.base = config_path.parent.resolve()
        with config_path.open(encoding="utf-8") as file:
            config = _yaml().safe_load(file)
        if not isinstance(config, dict):
            raise ConfigurationError(f"{config_path}: expected a mapping of settings, got {type(config).__name__}")
        self.config = config
        self.name = str(config.get("name") or self.base.name)
        self._modules: dict[str, ModuleType | None] = {}

    def _module(self, name: str) -> ModuleType | None:
        if name not in self._modules:
            self._modules[name] = _load_module(self.base, name)
        return self._modules[name]

    def lookup(self, module: str, attribute: str, what: str) -> Any:
        """``attribute`` of ``<folder>/<module>.py`` (or the ``module/`` package, or ``module/<attribute>.py``)."""
        found = self._module(module)
        if found is not None and hasattr(found, attribute):
            return getattr(found, attribute)
        single = self.base / module / f"{attribute}.py"
        if single.is_file():
            sub = self._module(f"{module}/{attribute}")
            if sub is not None and hasattr(sub, attribute):
                return getattr(sub, attribute)
        where = f"{module}.py" if found is not None else f"{module}.py (which does not exist)"
        raise ConfigurationError(f"{self.path}: {what} {attribute!r} is not defined in {where} of {self.base}")


def _load_module(base: Path, name: str) -> ModuleType | None:
    """Import ``<base>/<name>.py`` (or the ``<base>/<name>/`` package) under a private, stable name."""
    path = base / f"{name}.py"
    if not path.is_file():
        package = base / name / "__init__.py"
        if not package.is_file():
            return None
        path = package
    token = hashlib.sha256(str(base).encode()).hexdigest()[:12]
    module_name = f"crystallize_folder_{token}.{name.replace('/', '.')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)  # workers cannot import it by this name
    return module


def _outputs(folder: _Folder) -> dict[str, Artifact]:
    from crystallize._artifact import Artifact

    spec = folder.config.get("outputs") or {}
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{folder.path}: 'outputs' must map output names to settings")
    outputs = {}
    for alias, settings in spec.items():
        settings = settings or {}
        if not isinstance(settings, dict):
            raise ConfigurationError(
                f"{folder.path}: output {alias!r} must map to settings (file_name, loader, writer)"
            )
        loader = settings.get("loader")
        writer = settings.get("writer")
        outputs[alias] = Artifact(
            str(settings.get("file_name") or alias),
            loader=None if not loader else folder.lookup("outputs", loader, "loader"),
            writer=None if not writer else folder.lookup("outputs", writer, "writer"),
        )
    return outputs


def _is_artifact_parameter(parameter: inspect.Parameter) -> bool:
    from crystallize._artifact import Artifact

    annotation = parameter.annotation
    return annotation is Artifact or (isinstance(annotation, str) and annotation.split(".")[-1] == "Artifact")


def _steps(folder: _Folder, outputs: dict[str, Artifact]) -> list[Any]:
    specs = folder.config.get("steps") or []
    if not isinstance(specs, list):
        raise ConfigurationError(f"{folder.path}: 'steps' must be a list of step names or {{name: {{args}}}}")
    used: set[str] = set()
    steps = []
    for spec in specs:
        if isinstance(spec, dict) and len(spec) == 1:
            name, kwargs = next(iter(spec.items()))
            kwargs = dict(kwargs or {})
        elif isinstance(spec, str):
            name, kwargs = spec, {}
        else:
            raise ConfigurationError(f"{folder.path}: a step is a name or {{name: {{args}}}}, got {spec!r}")
        factory = folder.lookup("steps", name, "step")
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            parameters = {}
        for param_name, parameter in parameters.items():
            if not _is_artifact_parameter(parameter):
                continue
            alias = kwargs.get(param_name, param_name if param_name in outputs else None)
            if isinstance(alias, str):
                if alias not in outputs:
                    raise ConfigurationError(
                        f"{folder.path}: step {name!r} asks for output {alias!r}, which 'outputs' does not declare"
                    )
                kwargs[param_name] = outputs[alias]
                used.add(alias)
        steps.append(factory(**kwargs))
    unused = sorted(set(outputs) - used)
    if unused:
        raise ConfigurationError(f"{folder.path}: outputs not used by any step: {', '.join(unused)}")
    return steps


def _datasource(folder: _Folder) -> tuple[Any, dict[str, tuple[str, str]]]:
    """The datasource, and ``{alias: (experiment, output)}`` of its references to other folders."""
    from crystallize._artifact import Artifact
    from crystallize._datasource import ExperimentInput

    if "datasource" not in folder.config:
        raise ConfigurationError(f"{folder.path}: config.yaml must define a 'datasource' section")
    spec = folder.config["datasource"]
    if isinstance(spec, list):
        merged: dict[str, Any] = {}
        for item in spec:
            if not isinstance(item, dict):
                raise ConfigurationError(f"{folder.path}: 'datasource' list items must be mappings, got {item!r}")
            merged.update(item)
        spec = merged
    if not isinstance(spec, dict) or not spec:
        raise ConfigurationError(f"{folder.path}: 'datasource' must map at least one alias to a datasource")
    inputs: dict[str, Any] = {}
    references: dict[str, tuple[str, str]] = {}
    for alias, value in spec.items():
        if isinstance(value, str) and "#" in value:
            experiment, _, output = value.partition("#")
            references[alias] = (experiment, output)
            inputs[alias] = Artifact(output)  # replaced by the producer's own output when the graph is linked
        else:
            factory = folder.lookup("datasources", str(value), "datasource")
            inputs[alias] = factory()
    if len(inputs) == 1 and not references:
        return next(iter(inputs.values())), references
    return ExperimentInput(**inputs), references


def _treatments(folder: _Folder) -> list[Any]:
    from crystallize._treatment import Treatment

    spec = folder.config.get("treatments") or {}
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{folder.path}: 'treatments' must map treatment names to their context keys")
    treatments = []
    for name, values in spec.items():
        if values is not None and not isinstance(values, dict):
            raise ConfigurationError(f"{folder.path}: treatment {name!r} must map to context keys, got {values!r}")
        treatments.append(Treatment(str(name), values or {}))
    return treatments


def _hypotheses(folder: _Folder) -> list[Any]:
    from crystallize._hypothesis import Hypothesis

    hypotheses = []
    for spec in folder.config.get("hypotheses") or []:
        if not isinstance(spec, dict) or not spec.get("verifier"):
            raise ConfigurationError(f"{folder.path}: each hypothesis needs a 'verifier' (a factory in verifiers.py)")
        verifier = spec["verifier"]
        try:
            factory = folder.lookup("verifiers", verifier, "verifier")
        except ConfigurationError as exc:
            raise ConfigurationError(f"{exc} (hypothesis {spec.get('name', verifier)!r})") from None
        hypotheses.append(Hypothesis(verifier=factory(), metrics=spec.get("metrics"), name=spec.get("name")))
    return hypotheses


def load_folder(config_path: str | Path) -> tuple[Experiment, dict[str, Artifact], dict[str, tuple[str, str]]]:
    """The experiment of a folder, its outputs by alias, and its datasource's references to other folders."""
    from crystallize._experiment import Experiment
    from crystallize._steps import Pipeline

    folder = _Folder(Path(config_path))
    datasource, references = _datasource(folder)
    outputs = _outputs(folder)
    steps = _steps(folder, outputs)
    replicates = folder.config.get("replicates", 1)
    if isinstance(replicates, bool) or not isinstance(replicates, int):
        raise ConfigurationError(f"{folder.path}: 'replicates' must be an int, got {replicates!r}")
    experiment = Experiment(
        datasource=datasource,
        pipeline=Pipeline(steps),
        outputs=list(outputs.values()),
        name=folder.name,
        treatments=_treatments(folder),
        hypotheses=_hypotheses(folder),
        replicates=replicates,
        description=folder.config.get("description"),
    )
    return experiment, outputs, references


def experiment_from_yaml(config_path: str | Path) -> Experiment:
    """See :meth:`Experiment.from_yaml <crystallize.Experiment.from_yaml>`."""
    return load_folder(config_path)[0]


def _link(experiment: Experiment, references: dict[str, tuple[str, str]], loaded: dict[str, Any], path: Path) -> None:
    """Point ``experiment``'s references at the producers' own outputs (which know their producer)."""
    from crystallize._datasource import ExperimentInput

    if not references:
        return
    inputs = dict(experiment.datasource.inputs) if isinstance(experiment.datasource, ExperimentInput) else {}
    for alias, (producer, output) in references.items():
        if producer not in loaded:
            raise ConfigurationError(f"{path}: datasource {alias!r} reads experiment {producer!r}, which was not found")
        outputs = loaded[producer][1]
        if output not in outputs:
            raise ConfigurationError(
                f"{path}: datasource {alias!r} reads output {output!r} of {producer!r}, which declares "
                f"{', '.join(map(repr, outputs)) or 'no outputs'}"
            )
        inputs[alias] = outputs[output]
    experiment.datasource = ExperimentInput(**inputs)
    experiment._forget_identity()


def graph_from_yaml(cls: type[ExperimentGraph], config: str | Path) -> ExperimentGraph:
    """See :meth:`ExperimentGraph.from_yaml <crystallize.ExperimentGraph.from_yaml>`."""
    path = Path(config)
    loaded: dict[str, tuple[Experiment, dict[str, Artifact], dict[str, tuple[str, str]], Path]] = {}
    if path.is_dir():
        for folder in sorted(p for p in path.iterdir() if (p / "config.yaml").is_file()):
            experiment, outputs, references = load_folder(folder / "config.yaml")
            loaded[experiment.name] = (experiment, outputs, references, folder / "config.yaml")  # type: ignore[index]
    else:
        root = find_experiments_root(path.parent, strict=False)
        pending = [path]
        seen: set[Path] = set()
        while pending:
            current = pending.pop()
            if current.resolve() in seen:
                continue
            seen.add(current.resolve())
            experiment, outputs, references = load_folder(current)
            if experiment.name in loaded:
                raise ConfigurationError(f"{current}: another folder already defines experiment {experiment.name!r}")
            loaded[experiment.name] = (experiment, outputs, references, current)  # type: ignore[index]
            for producer, _ in references.values():
                if producer not in loaded:
                    upstream = root / producer / "config.yaml"
                    if not upstream.is_file():
                        upstream = current.parent.parent / producer / "config.yaml"
                    if not upstream.is_file():
                        raise FileNotFoundError(
                            f"{current}: datasource reads experiment {producer!r}, but {upstream} does not exist"
                        )
                    pending.append(upstream)
    producers = {name: (entry[0], entry[1]) for name, entry in loaded.items()}
    for experiment, _, references, where in loaded.values():
        _link(experiment, references, producers, where)
    return cls(*(entry[0] for entry in loaded.values()))
