"""Value objects that describe one execution and what it produced.

These are the nouns of the hook contract: :class:`Run` is passed to most
hooks, :class:`ReplicateOutcome` reports one finished (condition, replicate),
:class:`ArtifactRecord` says where an artifact went, and
:class:`CompletedWork` is what ``on_resume`` implementations return.
All of them pickle, so they can cross process and machine boundaries.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar

import attrs

if TYPE_CHECKING:
    from crystallize._store import RunStore

__all__ = [
    "FactKey",
    "Facts",
    "SEED_FACT",
    "EXECUTION_FACT",
    "RESUME_FACT",
    "PROGRESS_FACT",
    "SeedFact",
    "ExecutionFact",
    "ResumeFact",
    "Run",
    "Upstream",
    "ArtifactRecord",
    "ReplicateError",
    "ReplicateOutcome",
    "CompletedWork",
    "ReplicateColumns",
    "STRATEGIES",
]

STRATEGIES = ("rerun", "resume")

T = TypeVar("T")


@attrs.frozen
class FactKey(Generic[T]):
    """A typed key for one fact plugins share through :attr:`Run.facts`.

    Declare one per fact at module level, typed with what it holds, and
    import it wherever the fact is written or read::

        TIMINGS: FactKey[dict[str, float]] = FactKey("step_timer.timings", "seconds per step name")

        run.facts[TIMINGS] = {"train": 1.5}   # a type checker knows the value's type
        run.facts[TIMINGS]["train"]

    Keys are equal when their names are (a key that travelled to a worker
    process still finds its fact), so name yours after your distribution.
    The metadata plugin records every fact under its key's name, as JSON:
    store JSON-serialisable values.

    :ivar name: the fact's name in ``metadata.json``.
    :ivar doc: what the fact holds (for readers of the code and of ``repr``).
    """

    name: str
    doc: str = attrs.field(default="", eq=False)

    def __repr__(self) -> str:
        return f"FactKey({self.name!r})"


class Facts:
    """What plugins know about a run, by :class:`FactKey`; ``run.facts``.

    A small mapping: ``facts[KEY] = value``, ``facts[KEY]``,
    ``facts.get(KEY)``, ``KEY in facts``. :meth:`to_json` gives
    ``{name: value}``, what ``metadata.json`` records.
    """

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[FactKey[Any], Any] = {}

    def __setitem__(self, key: FactKey[T], value: T) -> None:
        self._values[_key(key)] = value

    def __getitem__(self, key: FactKey[T]) -> T:
        try:
            return self._values[_key(key)]  # type: ignore[no-any-return]
        except KeyError:
            known = ", ".join(repr(k.name) for k in self._values) or "none"
            raise KeyError(f"no fact {key.name!r} was recorded for this run (facts: {known})") from None

    def get(self, key: FactKey[T], default: T | None = None) -> T | None:
        """The fact for ``key``, or ``default``."""
        return self._values.get(_key(key), default)

    def __delitem__(self, key: FactKey[Any]) -> None:
        del self._values[_key(key)]

    def __contains__(self, key: object) -> bool:
        return _key(key) in self._values

    def __iter__(self) -> Iterator[FactKey[Any]]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def to_json(self) -> dict[str, Any]:
        """``{fact name: value}``, as recorded in ``metadata.json``."""
        return {key.name: value for key, value in self._values.items()}

    def __getstate__(self) -> dict[FactKey[Any], Any]:
        return self._values

    def __setstate__(self, state: dict[FactKey[Any], Any]) -> None:
        self._values = state

    def __repr__(self) -> str:
        return f"Facts({self.to_json()!r})"


def _key(key: object) -> FactKey[Any]:
    if not isinstance(key, FactKey):
        raise TypeError(
            f"run.facts takes FactKey keys, not {key!r}; declare one (KEY = FactKey({key!r})) or use "
            "the shared ones in crystallize.plugin (SEED_FACT, EXECUTION_FACT, RESUME_FACT). "
            "facts.to_json() gives {name: value}"
        )
    return key


class _SeedBase(TypedDict):
    base: int
    derivation: str


class SeedFact(_SeedBase, total=False):
    """:data:`SEED_FACT`: how replicates were seeded.

    ``base`` and ``derivation`` are always set; ``chosen``, when set, is
    ``True`` if the code gave the base (``SeedPlugin(seed=...)``) and
    ``False`` if it was drawn at random for the run.
    """

    chosen: bool


class ExecutionFact(TypedDict, total=False):
    """:data:`EXECUTION_FACT`: what ran the replicates; engines add their own keys."""

    engine: str
    workers: int | None


#: :data:`RESUME_FACT`: what a resumed run reused (``from``: the location it continued).
ResumeFact = TypedDict("ResumeFact", {"from": str, "complete_conditions": list[str], "finished_replicates": int})


#: Set by the seeding plugin: the base seed and how per-replicate seeds derive from it.
SEED_FACT: FactKey[SeedFact] = FactKey("seed", "base seed and derivation of per-replicate seeds")
#: Set by the execution engine: which engine ran the replicates, and where.
EXECUTION_FACT: FactKey[ExecutionFact] = FactKey("execution", "the engine that ran the replicates")
#: Set by the resume plugin: what a resumed run found complete.
RESUME_FACT: FactKey[ResumeFact] = FactKey("resume", "what a resumed run reused")
#: Set by an execution engine given ``progress=True``/``False``: show progress bars or not.
PROGRESS_FACT: FactKey[bool] = FactKey("progress", "whether the code asked for progress bars")


@attrs.frozen
class Upstream:
    """One input of a run that another experiment produced.

    Artifact datasources report these (``DataSource.upstream``); the graph
    uses them for edges, the metadata plugin records them as lineage.

    :ivar experiment: the producer's storage key (its name, else its id).
    :ivar experiment_id: the producer's pipeline-signature id.
    :ivar step: the producing step's name.
    :ivar artifact: the artifact's file name.
    :ivar version: the producer run version being read (``None`` until resolved).
    :ivar run_id: the unique id of that producer run, when its metadata has one.
    :ivar location: where that producer run lives (a path or URL).
    """

    experiment: str
    experiment_id: str | None
    step: str
    artifact: str
    version: int | None = None
    run_id: str | None = None
    location: str | None = None

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class ArtifactRecord:
    """Where one artifact write went, as returned by ``on_artifact_write``.

    Treat it as read-only (built once per write, so not frozen, for speed).

    :ivar path: location relative to the run's folder (``replicate_0/baseline/Step/model.bin``).
    :ivar size: bytes written.
    :ivar digest: checksum of the bytes written, tagged with the algorithm the
        store used: ``"<algorithm>:<hex>"`` (``"blake3:9f2c..."``,
        ``"sha256:ab01..."``). Rehash with that algorithm to check the bytes
        (:func:`~crystallize.plugin.parse_digest`, :func:`~crystallize.plugin.new_hasher`).
    """

    name: str
    step: str
    condition: str
    replicate: int
    path: str
    size: int
    digest: str

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object: what manifests, journals and ``results.json`` hold."""
        return {
            "name": self.name,
            "step": self.step,
            "condition": self.condition,
            "replicate": self.replicate,
            "path": self.path,
            "size": self.size,
            "digest": self.digest,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArtifactRecord:
        """The record :meth:`to_json` wrote; an older record's ``"sha256": "<hex>"`` becomes ``"sha256:<hex>"``."""
        if "digest" not in data and "sha256" in data:
            data = {**data, "digest": f"sha256:{data['sha256']}"}
        return cls(**{f.name: data[f.name] for f in attrs.fields(cls)})


@attrs.frozen(eq=False)
class ReplicateError:
    """A failure of one (condition, replicate), with its traceback.

    :ivar step: the user's step that was running when the failure happened,
        or ``None`` when it happened outside any step (the datasource, the
        treatment, or a plugin's ``before_step``/``after_step`` around a step).
    :ivar plugin: the plugin whose hook implementation raised, or ``None``
        when user code (or the core) raised; ``hook`` names that hook.
    :ivar exception: the original exception when it could be carried back
        from where the replicate ran (it is ``None`` for exceptions that do
        not pickle; ``type_name``, ``message`` and ``traceback`` are always set).
    """

    condition: str
    replicate: int
    step: str | None
    type_name: str
    message: str
    traceback: str
    exception: BaseException | None = attrs.field(default=None, repr=False)
    plugin: str | None = None
    hook: str | None = None

    @classmethod
    def capture(
        cls,
        exc: BaseException,
        condition: str,
        replicate: int,
        step: str | None,
        *,
        portable: bool = False,
        plugin: str | None = None,
        hook: str | None = None,
    ) -> ReplicateError:
        """Build from a live exception; never raises, whatever ``exc`` is.

        An exception whose ``str()`` raises gets a stand-in message, one whose
        traceback cannot be formatted gets what can be; with ``portable``,
        ``exception`` is kept only if it survives pickling. This is the capture
        every engine uses (see ``crystallize._failures``).
        """
        from crystallize._failures import capture

        error = capture(exc, condition, replicate, step, portable=portable, plugin=plugin, hook=hook)
        return error if cls is ReplicateError else cls(**attrs.asdict(error, recurse=False))

    def to_json(self) -> dict[str, Any]:
        return {
            "condition": self.condition,
            "replicate": self.replicate,
            "step": self.step,
            "plugin": self.plugin,
            "hook": self.hook,
            "type": self.type_name,
            "message": self.message,
            "traceback": self.traceback,
        }

    def __str__(self) -> str:
        where = f" in step {self.step!r}" if self.step else ""
        if self.plugin:
            where += f" in plugin {self.plugin!r} (hook {self.hook!r})"
        return f"{self.condition} replicate {self.replicate}{where}: {self.type_name}: {self.message}"


@attrs.define
class ReplicateOutcome:
    """What one (condition, replicate) produced, reported to the main process.

    Treat it as read-only (it is not frozen only because frozen classes are
    several times slower to build, and one is built per replicate).

    :ivar metrics: ``{metric name: [values recorded in this replicate]}``.
    :ivar error: the failure, or ``None`` when every step finished.
    :ivar artifacts: the records returned by ``on_artifact_write``, in write order.
    :ivar seed: ``ctx["seed_used"]`` if a seeding plugin set it.
    :ivar duration: wall-clock seconds spent running the replicate.
    :ivar unread: keys the condition's treatment set that nothing read during
        the replicate (they changed nothing); the core warns about them.
    """

    condition: str
    replicate: int
    metrics: Mapping[str, list[Any]]
    error: ReplicateError | None = None
    artifacts: tuple[Any, ...] = ()
    seed: int | None = None
    duration: float = 0.0
    unread: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


class ReplicateColumns(Mapping[int, Mapping[str, list[Any]]]):
    """Metrics split by replicate when every replicate recorded each metric exactly once.

    Then a condition's flattened metrics *are* its split: replicate ``r``
    recorded ``columns[name][r]`` and nothing else. This mapping reads as
    ``{replicate: {metric: [value]}}`` for replicates ``0 .. n-1``, like the
    dicts it stands for, without building one dict per replicate. A store may
    return it as :attr:`ConditionRecord.replicate_metrics
    <crystallize.plugin.ConditionRecord>`; resume then builds a condition's
    :class:`~crystallize.ConditionMetrics` from the columns directly.

    :param columns: ``{metric: [value of replicate 0, ..., value of replicate n-1]}``.
    :param replicates: ``n``; every column must hold exactly ``n`` values.
    :raises ValueError: a column whose length is not ``n``.
    """

    __slots__ = ("columns", "replicates")

    def __init__(self, columns: Mapping[str, Sequence[Any]], replicates: int) -> None:
        for name, column in columns.items():
            if len(column) != replicates:
                raise ValueError(
                    f"metric {name!r} holds {len(column)} value(s) for {replicates} replicate(s); "
                    "ReplicateColumns needs exactly one per replicate"
                )
        self.columns = columns
        self.replicates = replicates

    def __getitem__(self, replicate: int) -> dict[str, list[Any]]:
        if type(replicate) is not int or not 0 <= replicate < self.replicates:
            raise KeyError(replicate)
        return {name: [column[replicate]] for name, column in self.columns.items()}

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.replicates))

    def __len__(self) -> int:
        return self.replicates

    def __contains__(self, replicate: object) -> bool:
        return type(replicate) is int and 0 <= replicate < self.replicates

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReplicateColumns, (self.columns, self.replicates))

    def __repr__(self) -> str:
        return f"ReplicateColumns({self.columns!r}, replicates={self.replicates})"


@attrs.frozen
class CompletedWork:
    """What an ``on_resume`` implementation knows to be complete.

    :ivar conditions: conditions whose every replicate finished, with their
        metrics (``{condition: {metric: [values over replicates]}}``, flattened
        as in ``Result``).
    :ivar replicates: metrics per replicate, ``{condition: {replicate:
        {metric: [values]}}}``: for unfinished conditions, the replicates that
        finished (they are not run again); for conditions in ``conditions``,
        their split by replicate when it is known (``Result`` then shows
        resumed replicates exactly as fresh ones).
    :ivar seeds: ``{condition: {replicate: seed}}`` of those replicates,
        where known (``ReplicateOutcome.seed`` when they ran).
    """

    conditions: Mapping[str, Mapping[str, list[Any]]] = attrs.field(factory=dict)
    replicates: Mapping[str, Mapping[int, Mapping[str, list[Any]]]] = attrs.field(factory=dict)
    seeds: Mapping[str, Mapping[int, int | None]] = attrs.field(factory=dict)

    def merge(self, other: CompletedWork) -> CompletedWork:
        conditions = {**self.conditions, **other.conditions}
        replicates: dict[str, dict[int, Mapping[str, list[Any]]]] = {}
        seeds: dict[str, dict[int, int | None]] = {}
        for source in (self.replicates, other.replicates):
            for cond, reps in source.items():
                replicates.setdefault(cond, {}).update(reps)
        for seed_source in (self.seeds, other.seeds):
            for cond, known in seed_source.items():
                seeds.setdefault(cond, {}).update(known)
        return CompletedWork(conditions=conditions, replicates=replicates, seeds=seeds)

    def __bool__(self) -> bool:
        return bool(self.conditions) or any(self.replicates.values())


@attrs.define(eq=False)
class Run:
    """Describes one execution of an experiment; passed to most hooks.

    The core fills in the identity and plan; a storage plugin provides a
    :class:`~crystallize.plugin.RunStore` through ``open_store``; plugins share
    further JSON-serialisable facts (seeds, executor, ...) in :attr:`facts`,
    keyed by :class:`FactKey`, which the metadata plugin records. Plugins never need each other's
    internals: what one knows and another needs goes here.

    :ivar experiment_id: stable hash of the pipeline signature.
    :ivar experiment_name: the experiment's ``name`` (``None`` if unnamed).
    :ivar key: storage key, the name if given, else the id.
    :ivar run_id: unique id of this execution.
    :ivar strategy: ``"rerun"`` or ``"resume"``.
    :ivar replicates: replicates per condition.
    :ivar conditions: condition names, ``"baseline"`` first.
    :ivar fingerprints: ``{condition: hash of its treatment}``, so storage can
        tell when a condition's definition changed between runs.
    :ivar upstream: inputs produced by other experiments.
    :ivar store: where this run's files live, or ``None`` if nothing stores them.
    :ivar status: ``"running"``, then ``"completed"``, ``"failed"`` (some
        replicates failed or the run raised) or ``"interrupted"``.
    :ivar completed: what resume found already done (``None`` for a rerun).
    :ivar initial_ctx: the keys every replicate's context starts with: the
        experiment's ``initial_ctx`` plus what steps' ``setup`` added.
    """

    experiment_id: str
    experiment_name: str | None
    key: str
    run_id: str
    strategy: str
    replicates: int
    conditions: tuple[str, ...]
    fingerprints: Mapping[str, str] = attrs.field(factory=dict)
    upstream: tuple[Upstream, ...] = ()
    started_at: str = ""
    store: RunStore | None = None
    status: str = "running"
    facts: Facts = attrs.field(factory=Facts)
    completed: CompletedWork | None = None
    initial_ctx: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    @property
    def version(self) -> int | None:
        """The run version the store allocated (``None`` without a store)."""
        return None if self.store is None else self.store.version

    @property
    def location(self) -> str | None:
        """Where the store keeps this run (a path or URL), if anywhere."""
        return None if self.store is None else self.store.location

    @property
    def nothing_to_run(self) -> bool:
        """Whether resume found every condition of this run complete, so no replicate runs."""
        return self.completed is not None and self.completed.conditions.keys() >= set(self.conditions)
