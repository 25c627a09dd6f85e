"""What is stored under a root: experiments, their versions and each run's state.

``crystallize ls`` reads one small document per run — ``metadata.json``,
which the metadata plugin keeps up to date with the run's status,
conditions, replicates, failures and lineage — and never the metrics,
journals or artifacts. Listing a root costs a directory scan per experiment
and one read per run.

Folders written by crystallize-ml 0.27 have a ``metadata.json`` with
``replicates``, ``id`` and ``name`` only; their state is read from the
completion markers of their condition folders instead (one scan per run).

Status, as listed:

- ``completed``, ``failed`` (some replicate failed, or the run raised),
  ``interrupted`` (Ctrl-C) — what the run recorded when it ended;
- ``running`` — the run recorded that it started and its lock is held by a
  live process;
- ``crashed`` — it recorded that it started, and no process holds its lock:
  it was killed (``SIGKILL``, out of memory, power loss) before it could
  record its end. ``strategy="resume"`` continues it;
- ``incomplete`` — no record of the run's state (no ``metadata.json``, or
  a crystallize-ml folder) and some condition has no completion marker.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from crystallize.plugin import DocumentError, name_problem
from crystallize.plugin import documents as d
from crystallize_artifacts import layout
from crystallize_artifacts.runlock import lock_held
from crystallize_artifacts.safepaths import read_in
from crystallize_artifacts.store import LocalRunStore

__all__ = [
    "RunInfo",
    "list_runs",
    "experiment_dirs",
    "read_metadata",
    "condition_folders",
    "run_status",
    "git_commit",
    "LEGACY_FORMAT",
]

#: ``RunInfo.format`` of folders written by crystallize-ml 0.27.
LEGACY_FORMAT = "crystallize-ml 0.27"


@attrs.frozen
class RunInfo:
    """One stored run, as ``crystallize ls`` lists it.

    :ivar experiment: the experiment folder's name (the experiment's name, or its id).
    :ivar version: the run's ``N`` in ``v<N>``.
    :ivar path: the run folder.
    :ivar status: ``completed``, ``failed`` or ``interrupted`` (as the run
        recorded its end), ``running`` (a live process holds its lock),
        ``crashed`` (it started and no process holds its lock) or
        ``incomplete`` (no record of its state, and a condition without a
        completion marker).
    :ivar format: ``"crystallize"``, or ``"crystallize-ml 0.27"`` for a folder it wrote.
    :ivar conditions: the run's conditions, baseline first.
    :ivar completed: conditions whose every replicate succeeded.
    :ivar failures: failed replicates when the run ended (``None``: unknown).
    :ivar upstream: ``experiment@vN`` of each input produced by another experiment.
    :ivar problem: why ``metadata.json`` could not be read, if it could not.
    """

    experiment: str
    version: int
    path: str
    status: str
    format: str = "crystallize"
    experiment_id: str | None = None
    name: str | None = None
    run_id: str | None = None
    started: str | None = None
    finished: str | None = None
    conditions: tuple[str, ...] = ()
    completed: tuple[str, ...] = ()
    replicates: int | None = None
    failures: int | None = None
    git_commit: str | None = None
    upstream: tuple[str, ...] = ()
    description: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-friendly data (``crystallize ls --json``)."""
        row = attrs.asdict(self)
        for key in ("conditions", "completed", "upstream"):
            row[key] = list(row[key])
        return row


def experiment_dirs(root: Path) -> list[Path]:
    """Folders of ``root`` that hold at least one run (``v<N>``), sorted by name; links are skipped."""
    found = []
    try:
        with os.scandir(root) as entries:
            names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for name in names:
        if layout.versions(root / name):
            found.append(root / name)
    return found


def read_metadata(store: LocalRunStore) -> tuple[Mapping[str, Any] | None, str | None]:
    """``(metadata.json as an object, None)``, ``(None, None)`` when missing, ``(None, problem)`` when unreadable."""
    source = f"{store.location}/{layout.METADATA}"
    try:
        document = store.read_json(layout.METADATA)
        if document is None:
            return None, None
        return d.expect_object(document, source), None
    except (OSError, ValueError) as exc:
        return None, str(exc)


def condition_folders(run_dir: Path) -> list[str]:
    """Condition folders of a run folder (not ``replicate_*``, not hidden), baseline first."""
    try:
        with os.scandir(run_dir) as entries:
            names = [
                e.name
                for e in entries
                if e.is_dir(follow_symlinks=False)
                and not e.name.startswith((".", "replicate_"))
                and name_problem(e.name) is None
            ]
    except OSError:
        return []
    return sorted(names, key=lambda n: (n != "baseline", n))


def _marked(run_dir: Path, condition: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(run_dir / condition / layout.MARKER).st_mode)
    except OSError:
        return False


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def git_commit(meta: Mapping[str, Any]) -> str | None:
    """The git commit a run's code came from, when its metadata records one
    (``"git": {"commit": ...}``, ``"git": "<sha>"`` or ``"git_commit"``)."""
    git = meta.get("git")
    if isinstance(git, Mapping):
        commit = git.get("commit") or git.get("sha")
        if isinstance(commit, str):
            return commit + ("+dirty" if git.get("dirty") is True else "")
    if isinstance(git, str):
        return git
    commit = meta.get("git_commit")
    return commit if isinstance(commit, str) else None


def run_status(recorded: str | None, run_dir: Path, all_marked: bool | None) -> str:
    """The status ``ls`` shows for a run that recorded ``recorded`` (see the module)."""
    if recorded in (None, "running"):
        if lock_held(run_dir):
            return "running"
        if recorded == "running":
            return "crashed"
        return "completed" if all_marked else "incomplete"
    return recorded


def _upstream(meta: Mapping[str, Any]) -> tuple[str, ...]:
    entries = meta.get("upstream")
    if not isinstance(entries, list):
        return ()
    found = []
    for entry in entries:
        if isinstance(entry, Mapping) and isinstance(entry.get("experiment"), str):
            version = entry.get("version")
            found.append(f"{entry['experiment']}@v{version}" if isinstance(version, int) else entry["experiment"])
    return tuple(dict.fromkeys(found))


def _metadata_of(run_dir: str) -> tuple[Mapping[str, Any] | None, str | None]:
    """A run folder's ``metadata.json`` read without following links (one ``open`` of the folder, one of
    the file): ``(document, None)``, ``(None, None)`` when missing, ``(None, problem)`` when unusable."""
    source = os.path.join(run_dir, layout.METADATA)
    try:
        raw = read_in(run_dir, layout.METADATA, limit=MAX_METADATA_BYTES)
        if raw is None:
            return None, None
        return d.expect_object(d.parse_json(raw, source), source), None
    except (OSError, ValueError) as exc:
        return None, str(exc)


#: a ``metadata.json`` larger than this is refused by ``ls`` (its own are a few KiB).
MAX_METADATA_BYTES = 16 << 20


def run_info(experiment_dir: Path, version: int) -> RunInfo:
    """Describe one run from its ``metadata.json`` (and, for crystallize-ml folders, its markers)."""
    run_dir = layout.version_dir(experiment_dir, version)
    where = str(run_dir)
    if not layout.is_real_dir(run_dir):
        return RunInfo(experiment_dir.name, version, where, "missing", problem=f"{where} is not a run folder")
    meta, problem = _metadata_of(where)
    meta = meta or {}
    legacy = not meta or "status" not in meta
    conditions = _strings(meta.get("conditions"))
    all_marked = None
    completed = _strings(meta.get("completed_conditions"))
    if legacy:
        conditions = tuple(condition_folders(run_dir))
        completed = tuple(c for c in conditions if _marked(run_dir, c))
        all_marked = bool(conditions) and len(completed) == len(conditions)
    status = run_status(_text(meta.get("status")), run_dir, all_marked)
    if status in ("running", "crashed"):  # metadata.json records completed conditions when the run ends
        completed = tuple(c for c in conditions if _marked(run_dir, c))
    replicates = meta.get("replicates")
    failures = meta.get("failed_replicates")
    is_ours = not legacy or os.path.lexists(run_dir / layout.MANIFEST)
    return RunInfo(
        experiment=experiment_dir.name,
        version=version,
        path=where,
        status=status,
        format="crystallize" if is_ours else LEGACY_FORMAT,
        experiment_id=_text(meta.get("id")),
        name=_text(meta.get("name")),
        run_id=_text(meta.get("run_id")),
        started=_text(meta.get("created_at")),
        finished=_text(meta.get("finished_at")),
        conditions=conditions,
        completed=completed,
        replicates=replicates if type(replicates) is int else None,
        failures=failures if type(failures) is int else None,
        git_commit=git_commit(meta),
        upstream=_upstream(meta),
        description=_text(meta.get("description")),
        problem=problem,
    )


def list_runs(root: Path, experiment: str | None = None) -> Iterator[RunInfo]:
    """Every run under ``root`` (or of one experiment), experiment by experiment, oldest version first.

    ``root`` may also be an experiment folder (it holds ``v<N>`` folders itself).
    """
    root = Path(root)
    if experiment is not None:
        folders = [root / experiment]
    elif layout.versions(root):
        folders = [root]
    else:
        folders = experiment_dirs(root)
    for folder in folders:
        for version in layout.versions(folder):
            yield run_info(folder, version)


def describe_problem(exc: BaseException) -> str:
    """One line for an error met while reading a stored run."""
    if isinstance(exc, DocumentError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
