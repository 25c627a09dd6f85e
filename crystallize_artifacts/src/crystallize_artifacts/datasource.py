"""Reading another experiment's artifacts: :class:`ArtifactDataSource`."""

from __future__ import annotations

import json
import logging
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystallize.context import BASELINE, CONDITION_KEY, REPLICATE_KEY
from crystallize.datasource import DataSource
from crystallize.errors import ConfigurationError
from crystallize.run import Upstream
from crystallize_artifacts import layout

if TYPE_CHECKING:
    from crystallize.context import FrozenContext
    from crystallize.run import Run

__all__ = ["ArtifactDataSource", "MetadataMissingError", "FallbackWarning"]

log = logging.getLogger("crystallize.artifacts")


class MetadataMissingError(ConfigurationError, FileNotFoundError):
    """``require_metadata=True`` and the producer's run has no ``metadata.json``."""


class FallbackWarning(UserWarning):
    """A consumer condition reads the producer's baseline artifacts."""


class _Resolution:
    """What one producer run looks like: version, replicates, conditions."""

    __slots__ = ("conditions", "folder", "replicates", "run_id", "status", "version")

    def __init__(
        self,
        version: int,
        folder: Path,
        replicates: int | None,
        conditions: frozenset[str] | None,
        run_id: str | None,
        status: str | None,
    ) -> None:
        self.version = version
        self.folder = folder
        self.replicates = replicates
        self.conditions = conditions
        self.run_id = run_id
        self.status = status


class ArtifactDataSource(DataSource):
    """Yields, for each replicate, the :class:`~pathlib.Path` of a producer's artifact.

    Made by ``producer.artifact_datasource(step, name)``. For the consumer's
    replicate ``r`` and condition ``c`` it yields
    ``<root>/<producer>/v<N>/replicate_<r>/<c>/<step>/<name>``; when the
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
        experiment_dir: Path,
        step: str,
        name: str,
        *,
        require_metadata: bool = False,
        version: int | None = None,
    ) -> None:
        self.producer = producer
        self.producer_id = producer_id
        self.experiment_dir = Path(experiment_dir)
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
                step=self.step,
                artifact=self.name,
                version=None if res is None else res.version,
                run_id=None if res is None else res.run_id,
                location=None if res is None else str(res.folder),
            ),
        )

    def resolve(self) -> ArtifactDataSource:
        """A copy pinned to the producer run chosen now (latest unless ``version`` was given)."""
        pinned = ArtifactDataSource(
            self.producer,
            self.producer_id,
            self.experiment_dir,
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

    def fetch(self, ctx: FrozenContext) -> Path:
        res = self._resolved()
        condition = ctx[CONDITION_KEY]
        replicate = ctx[REPLICATE_KEY]
        used = condition
        if self._prepared:
            if condition in self._fallbacks:
                used = BASELINE
        elif condition != BASELINE and not self._has_condition(res, condition):
            used = BASELINE
            self._warn_fallback(res, condition)
        path = res.folder / f"replicate_{replicate}" / used / self.step / self.name
        if not path.is_file():
            raise FileNotFoundError(self._missing(res, path, used, replicate))
        return path

    # -- resolution ---------------------------------------------------------------------

    def _resolved(self) -> _Resolution:
        if self._resolution is None:
            with self._lock:
                if self._resolution is None:
                    self._resolution = self._lookup()
        return self._resolution

    def _lookup(self) -> _Resolution:
        available = layout.versions(self.experiment_dir)
        if not available:
            raise FileNotFoundError(
                f"experiment {self.producer!r} has no runs in {self.experiment_dir}; run it with "
                "ArtifactPlugin before reading its artifacts"
            )
        version = self.version if self.version is not None else available[-1]
        folder = layout.version_dir(self.experiment_dir, version)
        if version not in available:
            listed = ", ".join(f"v{v}" for v in available)
            raise FileNotFoundError(f"experiment {self.producer!r} has no run v{version} (it has {listed})")
        meta_path = folder / layout.METADATA
        try:
            meta = json.loads(meta_path.read_bytes())
        except FileNotFoundError:
            if self.require_metadata:
                raise MetadataMissingError(
                    f"{meta_path} does not exist: experiment {self.producer!r} must run with "
                    "ArtifactPlugin (and crystallize-metadata installed) to record its metadata"
                ) from None
            meta = None
        except ValueError as exc:
            raise ValueError(
                f"{meta_path} is not valid JSON ({exc}); it is corrupt: rerun experiment "
                f"{self.producer!r} or restore the file"
            ) from None
        if meta is not None and not isinstance(meta, dict):
            raise ValueError(f"{meta_path} holds {type(meta).__name__}, not a JSON object; it is corrupt")
        replicates = None if meta is None else meta.get("replicates")
        if replicates is not None and (
            isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1
        ):
            raise ValueError(f"{meta_path}: 'replicates' is {replicates!r}, not a positive integer; it is corrupt")
        if replicates is None:
            counted = sum(1 for p in folder.glob("replicate_*") if p.is_dir())
            replicates = counted or None
            if meta is None:
                log.warning(
                    "%s has no metadata.json; replicate count %s was inferred from its folders",
                    folder,
                    replicates,
                )
        conditions = None if meta is None or "conditions" not in meta else frozenset(meta["conditions"])
        status = None if meta is None else meta.get("status")
        if status not in (None, "completed"):
            warnings.warn(
                f"reading artifacts of experiment {self.producer!r} v{version}, whose run is "
                f"{status!r}, not completed; some files may be missing",
                stacklevel=3,
            )
        return _Resolution(
            version, folder, replicates, conditions, None if meta is None else meta.get("run_id"), status
        )

    def _has_condition(self, res: _Resolution, condition: str) -> bool:
        if res.conditions is not None:
            return condition in res.conditions
        return (res.folder / condition).is_dir() or (res.folder / "replicate_0" / condition).is_dir()

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

    def _missing(self, res: _Resolution, path: Path, condition: str, replicate: int) -> str:
        folder = res.folder / f"replicate_{replicate}" / condition
        try:
            written = sorted(f"{s.name}/{a.name}" for s in folder.iterdir() if s.is_dir() for a in s.iterdir())
        except FileNotFoundError:
            written = []
        rel = path.relative_to(res.folder).as_posix()
        try:
            pruned = set(json.loads((res.folder / layout.MANIFEST).read_bytes()).get("pruned", ()))
        except (OSError, ValueError, AttributeError):
            pruned = set()
        if rel in pruned:
            return (
                f"{path} was removed by artifact retention (experiment {self.producer!r} keeps only newer "
                f"versions' artifacts); read a newer version, or rerun the producer"
            )
        found = ", ".join(written) or "nothing"
        return (
            f"{path} does not exist: experiment {self.producer!r} v{res.version} has no artifact "
            f"{self.name!r} from step {self.step!r} for condition {condition!r}, replicate {replicate} "
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
