"""The :class:`ArtifactPlugin`: artifacts, results and completion markers on disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystallize.plugin import ConfigurationError, check_name, hookimpl
from crystallize_artifacts import layout
from crystallize_artifacts.backends import ExperimentFolder
from crystallize_artifacts.datasource import ArtifactDataSource
from crystallize_artifacts.outcome import outcome_document, same_outcome
from crystallize_artifacts.retention import add_pin, prune
from crystallize_artifacts.runlock import make_token
from crystallize_artifacts.store import FolderRunStore

if TYPE_CHECKING:
    from crystallize import Experiment, Result
    from crystallize.plugin import Run

__all__ = ["ArtifactPlugin", "ENV_RETENTION", "ENV_BIG_FILE_THRESHOLD"]

#: crystallize-ml 0.27's variables: retention when the argument is left at ``None``.
ENV_RETENTION = "CRYSTALLIZE_ARTIFACT_RETENTION"
ENV_BIG_FILE_THRESHOLD = "CRYSTALLIZE_BIG_FILE_THRESHOLD_MB"


def _from_environment(variable: str, kind: type) -> Any:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"{variable}={raw!r} is not a number; set it to a positive {kind.__name__} or unset it"
        ) from None


class ArtifactPlugin:
    """Store artifacts, results and completion markers under ``root_dir``.

    Layout (that of crystallize-ml 0.27, so its folders can be read too)::

        <root>/<experiment name or id>/v<N>/replicate_<r>/<condition>/<step>/<name>
        <root>/<experiment name or id>/v<N>/<condition>/results.json
        <root>/<experiment name or id>/v<N>/<condition>/.crystallize_complete

    Installing the distribution stores nothing by itself: it adds only the
    ``crystallize verify`` command (``crystallize_artifacts.commands``).
    Storage is a provider: passing ``ArtifactPlugin(...)`` in
    ``plugins=[...]`` turns it on for that experiment.

    Retention applies to ``versioned=True`` runs only, and never by default:
    crystallize-ml 0.27 kept 3 versions and dropped files over 10 MB unless
    told otherwise, which deleted data nobody asked to delete. Its two
    environment variables still work, as an explicit choice: a set variable
    stands in for an argument left at ``None`` (an invalid value is an
    error naming the variable).

    :param root_dir: where experiments are stored: a folder (made absolute
        when the plugin is created, so worker processes write to the same
        place) or an fsspec URL — ``s3://bucket/prefix``, ``gs://...``,
        ``az://...``, ``memory://...`` (``file://`` is a folder). Object stores
        need ``pip install 'crystallize-artifacts[s3]'`` (or ``[fsspec]`` and
        the store's package); see ``docs/storage.md``.
    :param versioned: ``True``: each run takes the next free ``v<N>``,
        allocated atomically. ``False``: every run is ``v0``; a rerun replaces
        it (the old one is moved aside first, never mixed with the new).
    :param artifact_retention: keep the artifacts of this many newest
        versions; older versions keep only their metrics. ``None`` keeps all,
        unless ``CRYSTALLIZE_ARTIFACT_RETENTION`` is set.
    :param big_file_threshold_mb: drop files larger than this from kept
        versions other than the newest. ``None`` keeps them, unless
        ``CRYSTALLIZE_BIG_FILE_THRESHOLD_MB`` is set.
    :param durable: also ``fsync`` every file and folder, so commits survive
        power loss (every commit is atomic either way). Off by default: it
        costs a device flush per file. (Object stores are durable once a
        write returns.)
    :param storage_options: options for the fsspec filesystem of a URL root
        (``endpoint_url``, ``profile``, ...). Credentials are best left to the
        store's usual configuration (environment, config files, roles); what
        is given here is never shown in a repr or a message.
    """

    plugin_name = "artifacts"

    def __init__(
        self,
        root_dir: str | Path = "data",
        versioned: bool = False,
        artifact_retention: int | None = None,
        big_file_threshold_mb: float | None = None,
        durable: bool = False,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        retention_from = threshold_from = ""
        if artifact_retention is None:
            artifact_retention = _from_environment(ENV_RETENTION, int)
            retention_from = f" (from {ENV_RETENTION})"
        if big_file_threshold_mb is None:
            big_file_threshold_mb = _from_environment(ENV_BIG_FILE_THRESHOLD, float)
            threshold_from = f" (from {ENV_BIG_FILE_THRESHOLD})"
        if artifact_retention is not None and (
            isinstance(artifact_retention, bool) or not isinstance(artifact_retention, int) or artifact_retention < 1
        ):
            raise ValueError(
                f"ArtifactPlugin: artifact_retention must be an int >= 1 or None, got "
                f"{artifact_retention!r}{retention_from}"
            )
        if big_file_threshold_mb is not None and not big_file_threshold_mb > 0:
            raise ValueError(
                "ArtifactPlugin: big_file_threshold_mb must be a positive number or None, "
                f"got {big_file_threshold_mb!r}{threshold_from}"
            )
        from crystallize_artifacts.backends import is_object_url

        self.root_dir = root_dir
        self.storage_options = dict(storage_options or {})
        root = str(root_dir)
        #: an fsspec URL (``s3://...``) for object stores, else ``None``.
        self.url: str | None = root.rstrip("/") if is_object_url(root) else None
        if root.startswith("file://"):
            root = root[len("file://") :]
        self.root = Path(root).expanduser().absolute() if self.url is None else Path(root)
        self.versioned = bool(versioned)
        self.artifact_retention = artifact_retention
        self.big_file_threshold_mb = big_file_threshold_mb
        self.durable = bool(durable)
        self._started: set[str] = set()  # run ids past before_run: after_run records their outcome
        self._version: int | None = None

    @property
    def version(self) -> int | None:
        """The version of the latest run this plugin opened in this process (``None`` before the first)."""
        return self._version

    def experiment_dir(self, experiment: Experiment) -> Path:
        """The folder holding every run of ``experiment`` (its key is checked
        again here, where it becomes a path). Local roots only."""
        if self.url is not None:
            raise ConfigurationError(f"{self!r} keeps runs in an object store, not a folder")
        return self.root / check_name(experiment.key, "experiment")

    def experiment_folder(self, experiment: Experiment) -> ExperimentFolder:
        """Where every run of ``experiment`` is kept: a local folder or a prefix of an object store."""
        key = check_name(experiment.key, "experiment")
        if self.url is None:
            from crystallize_artifacts.local import LocalExperimentFolder

            return LocalExperimentFolder(self.root / key)
        from crystallize_artifacts.objects import ObjectExperimentFolder

        return ObjectExperimentFolder(f"{self.url}/{key}", self.storage_options)

    # -- configuration -------------------------------------------------------------

    @hookimpl
    def validate_experiment(self, experiment: Experiment) -> None:
        for treatment in experiment.treatments:
            if layout.reserved_condition(treatment.name):
                raise ConfigurationError(
                    f"treatment name {treatment.name!r} collides with ArtifactPlugin's layout "
                    "(names starting with 'replicate_', metadata.json, manifest.json, outcome.json, _manifest.json and "
                    "names starting with '.' are reserved, in any letter case); rename the treatment"
                )
        check_name(experiment.key, "experiment")

    # -- run set-up ------------------------------------------------------------------

    @hookimpl
    def open_store(self, experiment: Experiment, run: Run) -> FolderRunStore | None:
        folder = self.experiment_folder(experiment)
        store = _RetainingRunStore.open_for_run(
            folder,
            versioned=self.versioned,
            resume=run.strategy == "resume",
            durable=self.durable,
            token=make_token(run.run_id),
        )
        if self.versioned and (self.artifact_retention is not None or self.big_file_threshold_mb is not None):
            threshold = None if self.big_file_threshold_mb is None else int(self.big_file_threshold_mb * 1024 * 1024)
            store.retention = (self.artifact_retention, threshold, self.storage_options)
        self._version = store.version
        for upstream in run.upstream:  # readers pin what they read, so retention keeps it
            if upstream.location:
                add_pin(upstream.location, run.key, store.version, store.location, self.storage_options)
        return store

    @hookimpl
    def locate_run(self, experiment: Experiment, version: int | None) -> FolderRunStore | None:
        return FolderRunStore.open_existing(self.experiment_folder(experiment), version)

    @hookimpl
    def before_run(self, run: Run) -> None:
        if run.store is not None:
            self._started.add(run.run_id)

    @hookimpl
    def after_run(self, run: Run, result: Result) -> None:
        """Keep what the run concluded — verdicts, failures — in ``outcome.json`` (see
        ``crystallize_artifacts.outcome``), so it can be shown without the experiment's code.

        Only for runs that started: a resume refused before any work leaves the folder as it was,
        and so does one that ran nothing and concluded what ``outcome.json`` already says."""
        if run.run_id in self._started and run.store is not None:
            self._started.discard(run.run_id)
            document = outcome_document(run, result)
            if not (run.nothing_to_run and same_outcome(run.store.read_json_bytes(layout.OUTCOME), document)):
                run.store.write_json(layout.OUTCOME, document)

    # -- chaining ------------------------------------------------------------------------

    @hookimpl
    def artifact_datasource(
        self, experiment: Experiment, step: str, name: str, require_metadata: bool, version: int | None
    ) -> ArtifactDataSource | None:
        source = ArtifactDataSource(
            experiment.key,
            experiment.id,
            self.experiment_folder(experiment),
            step,
            name,
            require_metadata=require_metadata,
            version=version,
        )
        if require_metadata and source.experiment.versions():
            source.resolve()  # the producer ran: a missing metadata.json is reported now, not at the consumer's run
        return source

    @hookimpl
    def stale_reason(self, experiment: Experiment) -> str | None:
        store = FolderRunStore.open_existing(self.experiment_folder(experiment))
        if store is None:
            return None
        try:
            missing = store.missing_outputs()
        except (OSError, ValueError) as exc:
            return f"the manifest of v{store.version} is unreadable ({exc})"
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            return f"outputs of v{store.version} are missing: {', '.join(missing[:3])}{more}"
        return None

    def __repr__(self) -> str:
        return f"ArtifactPlugin(root_dir={str(self.root_dir)!r}, versioned={self.versioned!r})"  # no storage_options


class _RetainingRunStore(FolderRunStore):
    """A :class:`FolderRunStore` that applies ``ArtifactPlugin``'s retention once its run completed."""

    #: ``(versions whose artifacts to keep, byte threshold of big files, storage options)``, or ``None``.
    retention: tuple[int | None, int | None, dict[str, Any]] | None = None

    def close(self, status: str) -> None:
        super().close(status)
        if self.retention is not None and status == "completed" and self.experiment is not None:
            keep, threshold, options = self.retention
            prune(self.experiment, keep, threshold, self.version, options)
