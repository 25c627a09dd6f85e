"""Everything a plugin author needs, in one module.

Experiments are written with ``from crystallize import ...``; plugins are
written with ``from crystallize.plugin import ...``. What is here is the
contract between the core and its plugins, and it is all a plugin needs:
another distribution never imports a module whose name starts with an
underscore (a test in the repository checks ours).

- **Hooks** — :data:`hookimpl` marks an implementation; the hooks themselves
  are documented in :mod:`crystallize.hookspecs`.
- **Records** passed to hooks — :class:`Run` (one execution; shared facts and
  the run's store), :class:`ReplicateOutcome` and :class:`ReplicateError`
  (what one (condition, replicate) produced), :class:`ArtifactRecord` (where
  an artifact went), :class:`CompletedWork` (what ``on_resume`` returns),
  :class:`Upstream` (an input produced by another experiment).
- **Facts** plugins share through ``run.facts`` — :class:`FactKey` (declare
  one per fact, typed with its value) and the shared keys :data:`SEED_FACT`,
  :data:`EXECUTION_FACT`, :data:`RESUME_FACT`, :data:`RERUN_FACT` (with their value types) and
  :data:`PROGRESS_FACT` (an engine's ``progress=`` choice).
- **Storage** — the :class:`RunStore` protocol a storage plugin's
  ``open_store`` returns, the :class:`ArtifactSink` its ``open_artifact``
  streams into, and its records :class:`ConditionRecord` and
  :class:`ReplicateRecord` (:class:`ReplicateColumns` is the cheap form of a
  condition's split by replicate when each replicate recorded each metric once).
- **Artifact digests** (``ArtifactRecord.digest``, ``"<algorithm>:<hex>"``) —
  :func:`new_hasher` (``"blake3"`` or a :mod:`hashlib` algorithm),
  :func:`hash_bytes`, :func:`format_digest`, :func:`parse_digest`,
  :func:`digest_problem` and the :class:`Hasher` they return.
- **Execution engines** — :class:`ReplicateBatch` (what ``execute_replicates``
  receives) and the worker helpers that run units in another process:
  :func:`run_unit`, :func:`prepare_worker`, :func:`encode_outcome`,
  :func:`decode_outcome`, :func:`lost_unit_outcome`.
- **Context keys** every replicate has: :data:`BASELINE`,
  :data:`CONDITION_KEY`, :data:`REPLICATE_KEY`, :data:`SEED_KEY`.
- **Names and documents** — :func:`check_name`, :func:`name_problem`,
  :func:`portable_key` and :data:`TEMP_NAME_OVERHEAD` for names that become
  path segments; :mod:`documents <crystallize.plugin.documents>`, the
  checks that read a JSON document back into typed values, raising
  :class:`DocumentError` naming the file and the field.
- **Commands** — :class:`Command`, a sub-command of ``crystallize`` named in
  the :data:`COMMANDS_GROUP` entry-point group (installing a command
  activates no plugin).
- **Introspection** — :func:`active_plugins` (what runs an experiment, with
  distributions and versions), :func:`installed_version` (a distribution's
  version, read cheaply); the entry-point group :data:`PLUGINS_GROUP`.
- **Identity** — :func:`code_fingerprint` (a function's or class's code,
  normalised), :func:`describe` and :func:`digest` (values by value, as the
  experiment id sees them), :func:`identity_changes` and
  :class:`IdentityChange` (what differs between a recorded
  ``experiment.signature()`` and the current one), :func:`crystallize_ml_ids`
  (the ids crystallize-ml 0.27 gave a pipeline).
- **Errors** a plugin raises or meets: :class:`PluginError`,
  :class:`ConfigurationError`, :class:`ReplicateRejected`,
  :class:`ResumeError`, :class:`ArtifactStoreError`, :class:`DocumentError`,
  :class:`MissingArtifactError` (an artifact read as an input is not there),
  :class:`WorkerStartError` (an engine's workers could not load the run),
  :class:`CrystallizeError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crystallize import _documents as documents
from crystallize._commands import COMMANDS_GROUP, Command
from crystallize._context import BASELINE, CONDITION_KEY, REPLICATE_KEY, SEED_KEY
from crystallize._digests import Hasher, digest_problem, format_digest, hash_bytes, new_hasher, parse_digest
from crystallize._dispatch import hookimpl
from crystallize._entry_points import installed_version
from crystallize._execution.batch import ReplicateBatch, Unit
from crystallize._execution.worker import decode_outcome, encode_outcome, prepare_worker, run_unit
from crystallize._execution.worker import lost_unit as lost_unit_outcome
from crystallize._fingerprint import code_fingerprint
from crystallize._graph import RERUN_FACT, RerunFact
from crystallize._identity import IdentityChange, crystallize_ml_ids, describe, digest, identity_changes
from crystallize._names import TEMP_NAME_OVERHEAD, check_name, name_problem, portable_key
from crystallize._records import (
    EXECUTION_FACT,
    PROGRESS_FACT,
    RESUME_FACT,
    SEED_FACT,
    ArtifactRecord,
    CompletedWork,
    ExecutionFact,
    FactKey,
    Facts,
    ReplicateColumns,
    ReplicateError,
    ReplicateOutcome,
    ResumeFact,
    Run,
    SeedFact,
    Upstream,
)
from crystallize._registry import ENTRY_POINT_GROUP as PLUGINS_GROUP
from crystallize._registry import PluginInfo
from crystallize._store import ArtifactSink, ConditionRecord, ReplicateRecord, RunStore
from crystallize.errors import (
    ArtifactStoreError,
    ConfigurationError,
    CrystallizeError,
    DocumentError,
    MissingArtifactError,
    PluginError,
    ReplicateRejected,
    ResumeError,
    WorkerStartError,
)

if TYPE_CHECKING:
    from crystallize._experiment import Experiment

__all__ = [
    # hooks
    "hookimpl",
    # records
    "Run",
    "Upstream",
    "ReplicateOutcome",
    "ReplicateError",
    "ArtifactRecord",
    "CompletedWork",
    # facts
    "FactKey",
    "Facts",
    "SEED_FACT",
    "EXECUTION_FACT",
    "RESUME_FACT",
    "RERUN_FACT",
    "RerunFact",
    "PROGRESS_FACT",
    "SeedFact",
    "ExecutionFact",
    "ResumeFact",
    # storage
    "RunStore",
    "ArtifactSink",
    "ConditionRecord",
    "ReplicateRecord",
    "ReplicateColumns",
    # artifact digests
    "Hasher",
    "new_hasher",
    "hash_bytes",
    "format_digest",
    "parse_digest",
    "digest_problem",
    # execution engines
    "ReplicateBatch",
    "Unit",
    "run_unit",
    "prepare_worker",
    "encode_outcome",
    "decode_outcome",
    "lost_unit_outcome",
    # context keys and names
    "BASELINE",
    "CONDITION_KEY",
    "REPLICATE_KEY",
    "SEED_KEY",
    "check_name",
    "name_problem",
    "portable_key",
    "TEMP_NAME_OVERHEAD",
    "documents",
    # commands
    "Command",
    "COMMANDS_GROUP",
    # introspection
    "PluginInfo",
    "active_plugins",
    "installed_version",
    "PLUGINS_GROUP",
    # identity
    "code_fingerprint",
    "describe",
    "digest",
    "identity_changes",
    "IdentityChange",
    "crystallize_ml_ids",
    # errors
    "CrystallizeError",
    "PluginError",
    "ConfigurationError",
    "MissingArtifactError",
    "ReplicateRejected",
    "ResumeError",
    "ArtifactStoreError",
    "DocumentError",
    "WorkerStartError",
]


def active_plugins(experiment: Experiment) -> list[PluginInfo]:
    """The plugins active for ``experiment``: built-in, installed, registered and passed ones.

    Each :class:`PluginInfo` names the plugin, says where it came from
    (``source``) and, when known, its distribution and version — what
    ``crystallize plugins`` prints and the metadata plugin records.
    """
    return list(experiment._plugins().infos)
