"""Reading another experiment's artifacts: :class:`ArtifactDataSource`."""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystallize import DataSource
from crystallize.plugin import (
    BASELINE,
    CONDITION_KEY,
    REPLICATE_KEY,
    ConfigurationError,
    DocumentError,
    MissingArtifactError,
    Upstream,
)
from crystallize_artifacts import documents, layout, safepaths
from crystallize_artifacts.backends import FILE, FOLDER, ExperimentFolder, RunFolder
from crystallize_artifacts.reading import StoredArtifact

if TYPE_CHECKING:
    from crystallize import FrozenContext
    from crystallize.plugin import Run

__all__ = ["ArtifactDataSource", "MetadataMissingError", "FallbackWarning"]

log = logging.getLogger("crystallize.artifacts")


class MetadataMissingError(ConfigurationError, FileNotFoundError):
    """``require_metadata=True`` and the producer's run has no ``metadata.json``."""


class FallbackWarning(UserWarning):
    """A consumer condition reads the producer's baseline artifacts."""


def _names(folder: RunFolder, path: str, kind: str) -> list[str]:
    """Names of the entries of one kind in a folder of the run (links excluded)."""
    try:
        return [name for name, found in folder.entries(path) if found == kind]
    except (OSError, ValueError):
        return []


class _Resolution:
    """What one producer run looks like: version, replicates, conditions, the step read."""

    __slots__ = ("conditions", "folder", "local", "replicates", "run_id", "status", "step", "version")

    def __init__(
        self,
        version: int,
        folder: RunFolder,
        replicates: int | None,
        conditions: frozenset[str] | None,
        run_id: str | None,
        status: str | None,
        step: str,
    ) -> None:
        self.step = step
        self.version = version
        self.folder = folder
        self.replicates = replicates
        self.conditions = conditions
        self.run_id = run_id
        self.status = status
        self.local = not hasattr(folder, "fs")  # a folder on this machine's file system: yield paths


class ArtifactDataSource(DataSource):
    """Yields, for each replicate, the :class:`~pathlib.Path` of a producer's artifact.

    Made by ``producer.artifact_datasource(step, name)``. For the consumer's
    replicate ``r`` and condition ``c`` it yields
    ``<root>/<producer>/v<N>/replicate_<r>/<c>/<step>/<name>``: a
    :class:`~pathlib.Path` for a local root, a
    :class:`~crystallize_artifacts.reading.StoredArtifact` (``open("rb")``,
    ``read_bytes()``, and a local copy through ``os.fspath``) for an object
    store. When the
    producer never ran condition ``c`` it yields the baseline's file instead,
    with a :class:`FallbackWarning`. A file the producer should have written
    but did not is an error, never a silent fallback.

    The producer's run is chosen when a consumer run starts (:meth:`resolve`):
    the given ``version``, else the latest. Its ``metadata.json`` sets the
    consumer's replicate count.
    """

    def __init__(
        self,
        producer: str,
        producer_id: str | None,
        experiment: ExperimentFolder | Path,
        step: str,
        name: str,
        *,
        require_metadata: bool = False,
        version: int | None = None,
    ) -> None:
        self.producer = producer
        self.producer_id = producer_id
        if isinstance(experiment, (str, Path)):
            from crystallize_artifacts.local import LocalExperimentFolder

            experiment = LocalExperimentFolder(Path(experiment))
        self.experiment = experiment
        self.step = step
        self.name = name
        self.require_metadata = require_metadata
        self.version = version
        self._resolution: _Resolution | None = None
        self._fallbacks: set[str] = set()
        self._prepared = False
        self._lock = threading.Lock()

    # -- DataSource ------------------------------------------------------------------

    @property
    def params(self) -> dict[str, Any]:
        return {"producer": self.producer, "step": self.step, "artifact": self.name, "version": self.version}

    @property
    def replicates(self) -> int | None:
        return self._resolved().replicates

    @property
    def upstream(self) -> tuple[Upstream, ...]:
        res = self._resolution
        return (
            Upstream(
                experiment=self.producer,
                experiment_id=self.producer_id,
                step=(self.step or "") if res is None else res.step,
                artifact=self.name,
                version=None if res is None else res.version,
                run_id=None if res is None else res.run_id,
                location=None if res is None else res.folder.location,
            ),
        )

    def resolve(self) -> ArtifactDataSource:
        """A copy pinned to the producer run chosen now (latest unless ``version`` was given)."""
        pinned = ArtifactDataSource(
            self.producer,
            self.producer_id,
            self.experiment,
            self.step,
            self.name,
            require_metadata=self.require_metadata,
            version=self.version,
        )
        pinned._resolution = pinned._lookup()
        return pinned

    def prepare(self, run: Run) -> None:
        """Decide, once and in the main process, which conditions read the baseline."""
        res = self._resolved()
        fallbacks = {c for c in run.conditions if c != BASELINE and not self._has_condition(res, c)}
        for condition in sorted(fallbacks):
            self._warn_fallback(res, condition, stacklevel=5)
        self._fallbacks = fallbacks
        self._prepared = True

    def fetch(self, ctx: FrozenContext) -> Path | StoredArtifact:
        res = self._resolved()
        # Outside a run (a notebook, a test), a context without them reads baseline replicate 0.
        condition = ctx.get(CONDITION_KEY, BASELINE)
        replicate = ctx.get(REPLICATE_KEY, 0)
        used = condition
        if self._prepared:
            if condition in self._fallbacks:
                used = BASELINE
        elif condition != BASELINE and not self._has_condition(res, condition):
            used = BASELINE
            self._warn_fallback(res, condition)
        rel = layout.artifact_relpath(used, replicate, res.step, self.name)
        where = f"{res.folder.location}/{rel}"
        if not self._is_artifact(res.folder, f"replicate_{replicate}/{used}/{res.step}", where):
            raise FileNotFoundError(self._missing(res, rel, used, replicate))
        if res.local:
            return Path(res.folder.location) / rel
        return StoredArtifact(res.folder, rel)

    def _is_artifact(self, folder: RunFolder, step_folder: str, where: str) -> bool:
        """The producer's file is a regular file reached without following links.

        A link planted in a producer folder (say ``model.bin -> ~/.ssh/id_rsa``)
        raises :class:`~crystallize_artifacts.safepaths.UnsafePathError`: the
        consumer's step never reads through it.
        """
        try:
            kinds = dict(folder.entries(step_folder))
        except FileNotFoundError:
            return False
        found = kinds.get(self.name)
        if found is None:
            return False
        if found != FILE:
            raise safepaths.UnsafePathError(
                f"{where} is not a regular file written by the store (a link or special file); "
                "refusing to hand it to the consumer's steps"
            )
        return True

    # -- resolution ---------------------------------------------------------------------

    def _resolved(self) -> _Resolution:
        if self._resolution is None:
            with self._lock:
                if self._resolution is None:
                    self._resolution = self._lookup()
        return self._resolution

    def _lookup(self) -> _Resolution:
        available = self.experiment.versions()
        if not available:
            raise FileNotFoundError(
                f"experiment {self.producer!r} has no runs in {self.experiment.location}; run it with "
                "ArtifactPlugin before reading its artifacts"
            )
        version = self.version if self.version is not None else available[-1]
        if version not in available:
            listed = ", ".join(f"v{v}" for v in available)
            raise FileNotFoundError(f"experiment {self.producer!r} has no run v{version} (it has {listed})")
        folder = self.experiment.existing(version)
        if folder is None:
            raise FileNotFoundError(f"experiment {self.producer!r} has no run v{version}")
        meta_path = f"{folder.location}/{layout.METADATA}"
        raw = folder.read(layout.METADATA, limit=64 << 20)
        counted = sum(1 for n in _names(folder, "", FOLDER) if n.startswith("replicate_")) or None
        if raw is None:
            if self.require_metadata:
                raise MetadataMissingError(
                    f"{meta_path} does not exist: experiment {self.producer!r} must run with "
                    "ArtifactPlugin (and crystallize-metadata installed) to record its metadata"
                )
            log.warning(
                "%s has no metadata.json; replicate count %s was inferred from its folders", folder.location, counted
            )
            meta = documents.ProducerMetadata(counted, None, None, None)
        else:
            try:
                meta = documents.parse_producer_metadata(raw, meta_path)
            except DocumentError as exc:
                raise DocumentError(
                    exc.source, f"{exc.problem}; it is corrupt: rerun experiment {self.producer!r} or restore the file"
                ) from None
        replicates = meta.replicates if meta.replicates is not None else counted
        status = meta.status
        if status not in (None, "completed"):
            warnings.warn(
                f"reading artifacts of experiment {self.producer!r} v{version}, whose run is "
                f"{status!r}, not completed; some files may be missing",
                stacklevel=3,
            )
        step = self.step if self.step is not None else self._writing_step(folder, version)
        return _Resolution(version, folder, replicates, meta.conditions, meta.run_id, status, step)

    def _writing_step(self, folder: RunFolder, version: int) -> str:
        """The one step that wrote :attr:`name` in the run (``step=None``): from its manifest, else its folders."""
        steps: set[str] = set()
        raw = folder.read(layout.MANIFEST)
        if raw is not None:
            try:
                manifest, _ = documents.parse_manifest(raw, f"{folder.location}/{layout.MANIFEST}")
                steps = {r.step for r in manifest.artifacts if r.name == self.name}
            except DocumentError:
                steps = set()
        if not steps:  # a run that never closed has no manifest: look where replicates wrote
            for replicate in sorted(n for n in _names(folder, "", FOLDER) if n.startswith("replicate_")):
                for condition in _names(folder, replicate, FOLDER):
                    for step in _names(folder, f"{replicate}/{condition}", FOLDER):
                        if self.name in _names(folder, f"{replicate}/{condition}/{step}", FILE):
                            steps.add(step)
                if steps:
                    break
        if not steps:
            raise MissingArtifactError(
                f"no step of experiment {self.producer!r} v{version} wrote an artifact named {self.name!r}: a step "
                f"writes it with artifact.write(...) (holding the Artifact) or ctx.artifacts.add({self.name!r}, data)"
            )
        if len(steps) > 1:
            raise ConfigurationError(
                f"steps {', '.join(map(repr, sorted(steps)))} of experiment {self.producer!r} v{version} each wrote "
                f"{self.name!r}; name the one to read: artifact_datasource(step=..., name={self.name!r})"
            )
        return steps.pop()

    def _has_condition(self, res: _Resolution, condition: str) -> bool:
        if res.conditions is not None:
            return condition in res.conditions
        return condition in _names(res.folder, "", FOLDER) or condition in _names(res.folder, "replicate_0", FOLDER)

    def _warn_fallback(self, res: _Resolution, condition: str, stacklevel: int = 3) -> None:
        if condition in self._fallbacks:
            return
        self._fallbacks.add(condition)
        warnings.warn(
            f"experiment {self.producer!r} v{res.version} has no condition {condition!r}; "
            f"condition {condition!r} reads the producer's baseline {self.name!r} instead",
            FallbackWarning,
            stacklevel=stacklevel,
        )

    def _missing(self, res: _Resolution, rel: str, condition: str, replicate: int) -> str:
        folder = f"replicate_{replicate}/{condition}"
        written = sorted(
            f"{step}/{name}"
            for step in _names(res.folder, folder, FOLDER)
            for name in _names(res.folder, f"{folder}/{step}", FILE)
        )
        path = f"{res.folder.location}/{rel}"
        try:
            raw = res.folder.read(layout.MANIFEST)
            source = f"{res.folder.location}/{layout.MANIFEST}"
            pruned = set() if raw is None else documents.parse_manifest(raw, source)[0].pruned
        except (OSError, ValueError):
            pruned = set()
        if rel in pruned:
            return (
                f"{path} was removed by artifact retention (experiment {self.producer!r} keeps only newer "
                f"versions' artifacts); read a newer version, or rerun the producer"
            )
        found = ", ".join(written) or "nothing"
        return (
            f"{path} does not exist: experiment {self.producer!r} v{res.version} has no artifact "
            f"{self.name!r} from step {res.step!r} for condition {condition!r}, replicate {replicate} "
            f"(that replicate wrote: {found})"
        )

    # -- pickling ------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        version = "latest" if self.version is None else f"v{self.version}"
        return f"ArtifactDataSource({self.producer!r}, step={self.step!r}, name={self.name!r}, {version})"
