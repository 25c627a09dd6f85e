"""The :class:`MetadataPlugin`."""

from __future__ import annotations

import logging
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from crystallize.plugin import SEED_FACT, active_plugins, hookimpl, installed_version
from crystallize.plugin import documents as d
from crystallize_metadata.provenance import PendingGit, code_files, identity_summary, library_versions, start_git_state

if TYPE_CHECKING:
    from crystallize import Experiment, Result
    from crystallize.plugin import ReplicateError, Run, RunStore

__all__ = ["MetadataPlugin", "METADATA_FILE", "PreviousRun", "parse_previous"]

METADATA_FILE = "metadata.json"
log = logging.getLogger("crystallize.metadata")

_CORE_DISTRIBUTIONS = ("crystallize-core", "crystallize-artifacts", "crystallize-metadata", "crystallize-resume")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@cache
def _platform() -> str:
    """``Linux-6.1.0-x86_64``: ``platform.platform()`` without its libc probe, which reads the
    interpreter binary (milliseconds, paid by the first run in every process)."""
    uname = platform.uname()
    return f"{uname.system}-{uname.release}-{uname.machine}"


class PreviousRun(NamedTuple):
    """What a resumed run keeps from the ``metadata.json`` it continues.

    A named tuple, like the other records of this plugin: an attrs class costs
    ~0.6 ms to create, paid when the plugin is imported on a process's first run.
    """

    run_id: str | None = None
    conditions: tuple[str, ...] = ()
    fingerprints: Mapping[str, str] = MappingProxyType({})
    completed_conditions: tuple[str, ...] = ()
    created_at: str | None = None
    resumed_at: tuple[str, ...] = ()
    status: str | None = None
    updated_at: str | None = None
    crashed: Mapping[str, Any] | None = None
    interruptions: tuple[Mapping[str, Any], ...] = ()


_STRINGS = d.list_of(d.string)


def parse_previous(document: Any, source: str) -> PreviousRun:
    """The fields of an earlier ``metadata.json`` a resume carries over;
    :class:`~crystallize.plugin.DocumentError` names the file and the field
    when one has the wrong shape."""
    if document is None:
        return PreviousRun()
    doc = d.expect_object(document, source)
    return PreviousRun(
        run_id=d.get(doc, "run_id", d.nullable(d.string), source, default=None),
        conditions=tuple(d.get(doc, "conditions", _STRINGS, source, default=[])),
        fingerprints=d.get(doc, "fingerprints", d.mapping_of(d.string), source, default={}),
        completed_conditions=tuple(d.get(doc, "completed_conditions", _STRINGS, source, default=[])),
        created_at=d.get(doc, "created_at", d.nullable(d.string), source, default=None),
        resumed_at=tuple(d.get(doc, "resumed_at", _STRINGS, source, default=[])),
        status=d.get(doc, "status", d.nullable(d.string), source, default=None),
        updated_at=d.get(doc, "updated_at", d.nullable(d.string), source, default=None),
        crashed=d.get(doc, "crashed", d.nullable(d.mapping_of(d.anything)), source, default=None),
        interruptions=tuple(d.get(doc, "interruptions", d.list_of(d.mapping_of(d.anything)), source, default=[])),
    )


def _interruptions(previous: PreviousRun, resumed: bool) -> list[Mapping[str, Any]]:
    """Earlier attempts at this run that never ended: a resume found them ``running`` (or
    recorded as ``crashed`` by whoever opened the run after its process died)."""
    found = list(previous.interruptions)
    if resumed and previous.status in ("running", "crashed"):
        started = previous.resumed_at[-1] if previous.resumed_at else previous.created_at
        found.append(
            {
                "started_at": started,
                "last_update": previous.updated_at,
                "status": "crashed",
                **({"holder": previous.crashed.get("holder")} if previous.crashed else {}),
            }
        )
    return found


def _previous(store: RunStore) -> PreviousRun:
    return parse_previous(store.read_json(METADATA_FILE), f"{store.location}/{METADATA_FILE}")


_UPSTREAM = d.list_of(d.mapping_of(d.anything))
_UPSTREAM_FIELDS: dict[str, d.Check] = {
    "experiment": d.string,
    "step": d.string,
    "artifact": d.string,
    "version": d.nullable(d.integer(minimum=0)),
    "run_id": d.nullable(d.string),
}


def _upstream(doc: Mapping[str, Any], source: str) -> list[Mapping[str, Any]]:
    """The lineage recorded in ``metadata.json``, each entry checked."""
    entries = d.get(doc, "upstream", d.nullable(_UPSTREAM), source, default=None) or []
    for entry in entries:
        for key, check in _UPSTREAM_FIELDS.items():
            d.get(entry, key, check, source, default=None)
    return entries


class MetadataPlugin:
    """Write ``metadata.json`` into every run folder a storage plugin opens.

    The keys crystallize-ml 0.27 wrote (``replicates``, ``id``, ``name``) are
    kept, so its readers work; the rest is added. The file is written when
    the run starts (status ``running``) and when it ends (``completed``,
    ``failed`` or ``interrupted``, with the conditions completed by then; the
    completion markers show progress in between). A resumed run keeps its
    ``run_id`` and ``created_at``, appends to ``resumed_at``, and lists an
    earlier attempt whose process died (``status`` still ``running``, or
    ``crashed``) under ``interruptions``. A resume that finds every condition
    complete in a folder whose status is ``completed`` writes nothing: the
    runs that produced the results keep their provenance (a later ``git``
    commit or package upgrade did not make them).

    Provenance: ``signature`` (what the id hashes, exactly), ``identity``
    (the datasource and its parameters, each step's code fingerprint and
    parameters, treatment and hypothesis fingerprints), ``git`` (commit,
    branch and dirty flag of the working tree holding the experiment's code,
    or ``null``), ``python``, ``packages`` (crystallize and its plugins) and
    ``libraries`` (what the experiment's modules import).

    Does nothing for runs no storage plugin stores.
    """

    plugin_name = "metadata"

    def __init__(self) -> None:
        self._documents: dict[str, dict[str, Any]] = {}
        self._git: dict[str, PendingGit | None] = {}  # per run: the git probe started with it

    def _packages(self, experiment: Experiment) -> dict[str, str | None]:
        packages = {name: installed_version(name) for name in _CORE_DISTRIBUTIONS}
        for info in active_plugins(experiment):
            if info.distribution:
                packages[info.distribution] = info.version
        return {k: v for k, v in sorted(packages.items()) if v is not None}

    @hookimpl(trylast=True)
    def before_run(self, experiment: Experiment, run: Run) -> None:
        store = run.store
        if store is None:
            return
        previous = _previous(store) if store.resumed else PreviousRun()
        this_run = set(run.conditions)
        if run.nothing_to_run and previous.status == "completed":
            # Every result was produced, and recorded, by the runs before: their git state,
            # packages and times stay the provenance. Nothing is written (or probed).
            return
        git = self._git[run.run_id] = _git(experiment)
        document = {
            "replicates": run.replicates,
            "id": run.experiment_id,
            "name": run.experiment_name,
            "version": run.version,
            "run_id": previous.run_id or run.run_id,
            "status": "running",
            "strategy": run.strategy,
            "description": experiment.description,
            # A resumed folder keeps conditions this invocation left out.
            "conditions": list(dict.fromkeys([*previous.conditions, *run.conditions])),
            "fingerprints": {**previous.fingerprints, **run.fingerprints},
            "outputs": sorted(experiment.outputs),
            "completed_conditions": [
                *(c for c in previous.completed_conditions if c not in this_run),
                *(c for c in run.conditions if run.completed and c in run.completed.conditions),
            ],
            "upstream": [u.to_json() for u in run.upstream],
            "seeds": run.facts.get(SEED_FACT),
            "facts": run.facts.to_json(),
            "signature": experiment.signature(),
            "identity": identity_summary(experiment, run.fingerprints),
            "git": None if git is None else git.known.to_json(),  # "dirty" follows when the run ends
            "packages": self._packages(experiment),
            "libraries": library_versions(experiment),
            "python": platform.python_version(),
            "platform": _platform(),
            "created_at": previous.created_at or run.started_at,
            "resumed_at": [*previous.resumed_at, run.started_at] if store.resumed else [],
            "interruptions": _interruptions(previous, store.resumed),
            "updated_at": _now(),
            "finished_at": None,
        }
        self._documents[run.run_id] = document
        if not run.nothing_to_run:  # a resume with nothing left only gets its final write
            store.write_json(METADATA_FILE, document)

    @hookimpl
    def on_condition_complete(self, run: Run, condition: str, errors: Mapping[int, ReplicateError]) -> None:
        # Noted in memory only; written with the rest when the run ends.
        document = self._documents.get(run.run_id)
        if document is not None and not errors and condition not in document["completed_conditions"]:
            document["completed_conditions"].append(condition)

    @hookimpl
    def after_run(self, run: Run, result: Result) -> None:
        document = self._documents.pop(run.run_id, None)
        git = self._git.pop(run.run_id, None)
        if document is None or run.store is None:
            return  # before_run never wrote it: leave whatever is on disk alone
        if git is not None:
            document["git"] = git.result().to_json()
        now = _now()
        document.update(
            status=run.status,
            facts=run.facts.to_json(),
            seeds=run.facts.get(SEED_FACT),
            failed_replicates=sum(len(e) for e in result.errors.values()),
            updated_at=now,
            finished_at=now,
        )
        run.store.write_json(METADATA_FILE, document)

    @hookimpl
    def stale_reason(self, experiment: Experiment) -> str | None:
        store = experiment.locate_run()
        if store is None:
            return None
        source = f"{store.location}/{METADATA_FILE}"
        try:
            document = store.read_json(METADATA_FILE)
            doc = None if document is None else d.expect_object(document, source)
            upstream = [] if doc is None else _upstream(doc, source)
        except ValueError as exc:
            return f"its metadata is unreadable ({exc})"
        declared = None if doc is None else doc.get("outputs")
        if isinstance(declared, list):  # 0.27's metadata.json has none: nothing to compare
            added = sorted(set(experiment.outputs) - {o for o in declared if isinstance(o, str)})
            if added:
                return (
                    f"it now declares output(s) {', '.join(map(repr, added))}, which its last run "
                    f"(v{store.version}) did not, so it holds none of them"
                )
        if not upstream:
            return None
        recorded = {(u.get("experiment"), u.get("step"), u.get("artifact")): u for u in upstream}
        try:
            current = experiment.datasource.resolve().upstream
        except (OSError, ValueError) as exc:
            return f"its input cannot be read ({exc})"
        for upstream in current:
            before = recorded.get((upstream.experiment, upstream.step, upstream.artifact))
            if before is None:
                return f"it now reads {upstream.artifact!r} of {upstream.experiment!r}, which its last run did not"
            changed = (
                before.get("run_id") != upstream.run_id
                if before.get("run_id") and upstream.run_id
                else before.get("version") != upstream.version
            )
            if changed:
                return (
                    f"upstream {upstream.experiment!r} was rerun since its last run "
                    f"(it read v{before.get('version')}, the latest is v{upstream.version})"
                )
        return None

    def __repr__(self) -> str:
        return "MetadataPlugin()"


def _git(experiment: Experiment) -> PendingGit | None:
    try:
        return start_git_state(code_files(experiment))
    except (OSError, ValueError) as exc:  # provenance is best effort: a run never fails for it
        log.debug("git state of %s could not be read: %s", experiment.key_label, exc)
        return None
