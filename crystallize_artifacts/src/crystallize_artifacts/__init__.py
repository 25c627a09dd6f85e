"""crystallize-artifacts: artifacts, results and completion markers on disk.

``ArtifactPlugin`` stores what steps write with ``Artifact.write`` under
``<root>/<experiment>/v<N>/``, commits every file atomically, writes each
condition's ``results.json`` and completion marker last, keeps a per-replicate
journal for fine-grained resume, and builds the datasources that let another
experiment read those artifacts. :func:`load_result` and :func:`list_runs`
read stored runs back without the experiments' code.
"""

from crystallize_artifacts.datasource import ArtifactDataSource, FallbackWarning, MetadataMissingError
from crystallize_artifacts.listing import RunInfo, list_runs
from crystallize_artifacts.plugin import ArtifactPlugin
from crystallize_artifacts.results import RunNotFoundError, load_result, load_results
from crystallize_artifacts.store import LocalRunStore, RunLockedError
from crystallize_artifacts.verify import verify_path, verify_run

__version__ = "0.1.0"

__all__ = [
    "ArtifactPlugin",
    "ArtifactDataSource",
    "LocalRunStore",
    "RunLockedError",
    "MetadataMissingError",
    "FallbackWarning",
    "verify_run",
    "verify_path",
    "load_result",
    "load_results",
    "RunNotFoundError",
    "list_runs",
    "RunInfo",
    "__version__",
]
