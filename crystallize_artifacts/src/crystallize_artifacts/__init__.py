"""crystallize-artifacts: artifacts, results and completion markers, in a folder or an object store.

``ArtifactPlugin`` stores what steps write with ``Artifact.write`` (or stream
with ``Artifact.open``) under ``<root>/<experiment>/v<N>/`` — ``root`` a
folder or an fsspec URL such as ``s3://bucket/prefix`` — commits every file
atomically, writes each condition's ``results.json`` and completion marker
last, keeps a per-replicate journal for fine-grained resume, and builds the
datasources that let another experiment read those artifacts.
:func:`load_result` and :func:`list_runs` read stored runs back without the
experiments' code.

Reading one stored run: ``FolderRunStore.open_existing(where, version)`` (a
path, or ``ObjectExperimentFolder(url)``) returns a read-only store with
``read_json``, ``completed_condition``, ``finished_replicates``,
``read_artifact`` and ``artifact_records``; ``ArtifactPlugin.locate_run`` does
the same for an experiment.
"""

from crystallize_artifacts.datasource import ArtifactDataSource, FallbackWarning, MetadataMissingError
from crystallize_artifacts.legacy_metrics import UnmarkedResultsWarning, load_all_metrics, load_metrics
from crystallize_artifacts.listing import RunInfo, list_runs
from crystallize_artifacts.locking import LocksUnavailableError
from crystallize_artifacts.plugin import ArtifactPlugin
from crystallize_artifacts.reading import StoredArtifact
from crystallize_artifacts.results import RunNotFoundError, load_result, load_results
from crystallize_artifacts.store import FolderRunStore, LocalRunStore, RunLockedError
from crystallize_artifacts.verify import verify_path, verify_run

__version__ = "0.1.0"

__all__ = [
    "ArtifactPlugin",
    "ArtifactDataSource",
    "FolderRunStore",
    "LocalRunStore",
    "StoredArtifact",
    "RunLockedError",
    "LocksUnavailableError",
    "MetadataMissingError",
    "FallbackWarning",
    "verify_run",
    "verify_path",
    "load_result",
    "load_results",
    "RunNotFoundError",
    "list_runs",
    "load_metrics",
    "load_all_metrics",
    "UnmarkedResultsWarning",
    "RunInfo",
    "__version__",
]
