"""The store's documents, read back into typed records with their shapes checked.

Every document the store reads from a run folder is parsed here, never
trusted as it is: completion markers, ``results.json``, journal lines,
``manifest.json``, the ``.index.json`` cache, retention pins, and the
producer's ``metadata.json`` that :class:`~crystallize_artifacts.ArtifactDataSource`
reads. A wrong shape raises :class:`~crystallize.plugin.DocumentError`
naming the file and the field (callers decide whether that is an error, a
condition to rerun, or — for the index, a cache — a silent rebuild).

Artifact records are checked hardest, because they hold paths: a record's
``path`` must be exactly ``replicate_<r>/<condition>/<step>/<name>`` built
from its own valid fields, so no record read from disk can point outside
the run folder. Its ``digest`` must be ``"<algorithm>:<hex>"`` of a known
algorithm; records written before digests were tagged hold
``"sha256": "<hex>"`` instead, read as ``"sha256:<hex>"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from crystallize.plugin import ArtifactRecord, DocumentError, name_problem
from crystallize.plugin import documents as d
from crystallize_artifacts import layout

__all__ = [
    "Marker",
    "Results",
    "JournalEntry",
    "Manifest",
    "Pin",
    "ProducerMetadata",
    "parse_artifact_record",
    "parse_marker",
    "parse_results",
    "parse_journal",
    "parse_manifest",
    "parse_index",
    "INDEX_COLUMNS",
    "parse_pin",
    "parse_producer_metadata",
    "METRICS",
    "REPLICATE_METRICS",
]

#: ``{metric name: [values]}``
METRICS = d.lists_by_name
#: ``{"<replicate>": {metric name: [values]}}``, keys returned as ints
REPLICATE_METRICS = d.mapping_of(METRICS, keys=d.decimal_key)
#: ``{"<replicate>": seed}`` (whatever ``ctx["seed_used"]`` held), keys returned as ints
SEEDS = d.nullable(d.mapping_of(d.anything, keys=d.decimal_key))
_NAME_CACHE: set[str] = set()


def _name(value: Any) -> str:
    d.string(value)
    if value in _NAME_CACHE:
        return value  # type: ignore[no-any-return]
    problem = name_problem(value)
    if problem is not None:
        raise d.WrongShape(f"is {d.describe(value)}, not a usable name: {problem}")
    if len(_NAME_CACHE) < 100_000:
        _NAME_CACHE.add(value)
    return value  # type: ignore[no-any-return]


_REPLICATE = d.integer(minimum=0)
_SIZE = d.integer(minimum=0)
_RECORD_FIELDS = (
    ("name", _name),
    ("step", _name),
    ("condition", _name),
    ("replicate", _REPLICATE),
    ("path", d.string),
    ("size", _SIZE),
)


def _record_digest(value: dict[str, Any]) -> str:
    """The record's tagged digest; an untagged ``"sha256"`` (records written before tags) gets its tag."""
    if "digest" in value:
        key, check, tag = "digest", d.tagged_digest, ""
    elif "sha256" in value:
        key, check, tag = "sha256", d.hex_digest, "sha256:"
    else:
        raise d.WrongShape("has no 'digest'")
    try:
        return tag + check(value[key])
    except d.WrongShape as exc:
        raise exc.at(f"[{key!r}]") from None


def _record(value: Any) -> ArtifactRecord:
    if type(value) is not dict:
        raise d.WrongShape(f"is {d.describe(value)}, expected an artifact record")
    fields = []
    for key, check in _RECORD_FIELDS:
        if key not in value:
            raise d.WrongShape(f"has no {key!r}")
        try:
            fields.append(check(value[key]))
        except d.WrongShape as exc:
            raise exc.at(f"[{key!r}]") from None
    name, step, condition, replicate, path, size = fields
    digest = _record_digest(value)
    expected = layout.artifact_relpath(condition, replicate, step, name)
    if path != expected:
        raise d.WrongShape(
            f"has path {path[:200]!r}, not {expected!r}: records may only point at their own artifact "
            "inside the run; refusing it"
        )
    return ArtifactRecord(name, step, condition, replicate, path, size, digest)


def parse_artifact_record(value: Any, source: str, where: str = "the artifact record") -> ArtifactRecord:
    """One artifact record; its path must be the layout's path for its own fields."""
    try:
        return _record(value)
    except d.WrongShape as exc:
        raise DocumentError(source, exc.sentence(where)) from None


_RECORDS = d.list_of(_record)


# -- completion markers ---------------------------------------------------------------------


@attrs.frozen
class Marker:
    """A condition's completion marker.

    :ivar replicates: the replicate count it vouches for; ``None`` for an empty
        marker (what crystallize-ml 0.27 wrote).
    :ivar results_sha256: the digest of the ``results.json`` it vouches for.
    """

    replicates: int | None
    results_sha256: str | None

    @property
    def legacy(self) -> bool:
        """An empty marker: only trusted beside a crystallize-ml ``results.json``."""
        return self.results_sha256 is None


def parse_marker(raw: bytes, source: str) -> Marker:
    """An empty file is crystallize-ml's marker; anything else must be ours, whole."""
    if not raw.strip():
        return Marker(None, None)
    doc = d.expect_object(d.parse_json(raw, source), source)
    return Marker(
        replicates=d.get(doc, "replicates", d.integer(minimum=1), source),
        results_sha256=d.get(doc, "results_sha256", d.hex_digest, source),
    )


# -- results.json --------------------------------------------------------------------------------


@attrs.frozen
class Results:
    """A completed condition's ``results.json``.

    :ivar legacy: written by crystallize-ml 0.27 (``{"metrics": ...}`` only).
    """

    metrics: Mapping[str, list[Any]]
    replicates: int | None
    fingerprint: str | None
    replicate_metrics: Mapping[int, Mapping[str, list[Any]]] | None
    artifacts: tuple[ArtifactRecord, ...]
    legacy: bool
    seeds: Mapping[int, Any] | None = None


def parse_results(raw: bytes, source: str, condition: str) -> Results:
    """``results.json`` of ``condition``; its metric lists must add up.

    For our files: every replicate number is below ``replicates``, every
    artifact record belongs to this condition and to one of its replicates,
    and ``metrics`` is exactly the replicates' lists joined in replicate
    order (so a list of the wrong length is caught).
    """
    doc = d.expect_object(d.parse_json(raw, source), source)
    metrics = d.get(doc, "metrics", METRICS, source)
    if set(doc) == {"metrics"}:
        return Results(metrics, None, None, None, (), legacy=True)
    replicates = d.get(doc, "replicates", d.integer(minimum=1), source)
    fingerprint = d.get(doc, "fingerprint", d.nullable(d.string), source, default=None)
    per_replicate = d.get(doc, "replicate_metrics", d.nullable(REPLICATE_METRICS), source, default=None)
    seeds = d.get(doc, "seeds", SEEDS, source, default=None)
    artifacts = tuple(d.get(doc, "artifacts", _RECORDS, source, default=[]))
    for record in artifacts:
        if record.condition != condition or record.replicate >= replicates:
            raise DocumentError(
                source, f"lists artifact {record.path!r}, which is not one of condition {condition!r}'s replicates"
            )
    if per_replicate is not None:
        if any(r >= replicates for r in per_replicate):
            raise DocumentError(source, f"'replicate_metrics' has replicates beyond its {replicates}")
        joined: dict[str, list[Any]] = {}
        for replicate in sorted(per_replicate):
            for name, values in per_replicate[replicate].items():
                joined.setdefault(name, []).extend(values)
        if joined != metrics:
            raise DocumentError(
                source,
                "'metrics' is not the replicates' values joined in order ('replicate_metrics'); "
                "a metric list has the wrong length or values",
            )
    return Results(metrics, replicates, fingerprint, per_replicate, artifacts, legacy=False, seeds=seeds)


# -- the journal (replicates.jsonl) -----------------------------------------------------------------


@attrs.frozen
class JournalEntry:
    """One finished replicate, as journaled; ``raw`` is the object as read (rewritten as it is)."""

    replicate: int
    fingerprint: str | None
    metrics: Mapping[str, list[Any]]
    artifacts: tuple[ArtifactRecord, ...]
    raw: Mapping[str, Any] = attrs.field(repr=False)
    seed: Any = None


_FINGERPRINT = d.nullable(d.string)


def _entry(value: Any, condition: str) -> JournalEntry:
    if type(value) is not dict:
        raise d.WrongShape(f"is {d.describe(value)}, expected a journal entry")
    fields = []
    for key, check, default in (
        ("replicate", _REPLICATE, None),
        ("fingerprint", _FINGERPRINT, None),
        ("metrics", METRICS, {}),
        ("artifacts", _RECORDS, []),
    ):
        try:
            fields.append(check(value.get(key, default)))
        except d.WrongShape as exc:
            raise exc.at(f"[{key!r}]") from None
    replicate, fingerprint, metrics, artifacts = fields
    for record in artifacts:
        if record.condition != condition or record.replicate != replicate:
            raise d.WrongShape(f"lists artifact {record.path!r} of another condition or replicate")
    return JournalEntry(replicate, fingerprint, metrics, tuple(artifacts), value, value.get("seed"))


def parse_journal(raw: bytes, source: str, condition: str) -> tuple[dict[int, JournalEntry], list[str]]:
    """The entries of a condition's journal, and one sentence per refused line.

    A line that is not valid JSON was torn by a crash and is skipped
    silently (its replicate runs again); the piece after the last newline is
    unfinished and ignored. Well-formed lines of the wrong shape, and entries
    pointing outside the run, are refused and reported.
    """
    found: dict[int, JournalEntry] = {}
    problems: list[str] = []
    for number, line in enumerate(raw.split(b"\n")[:-1], start=1):
        try:
            parsed = d.parse_json(line, source)
        except DocumentError:
            continue
        for index, value in enumerate(parsed if type(parsed) is list else [parsed]):
            try:
                entry = _entry(value, condition)
            except d.WrongShape as exc:
                problems.append(f"{source} line {number}: {exc.sentence(f'entry {index}')}")
                continue
            except RecursionError:
                problems.append(f"{source} line {number}: entry {index} is nested too deeply to be read")
                continue
            found[entry.replicate] = entry
    return found, problems


# -- manifest.json -------------------------------------------------------------------------------------


@attrs.frozen
class Manifest:
    """A run's ``manifest.json``: one record per artifact path (the last written)."""

    version: int | None
    status: str | None
    artifacts: tuple[ArtifactRecord, ...]
    pruned: frozenset[str]


def parse_manifest(raw: bytes, source: str) -> tuple[Manifest, list[str]]:
    """The manifest, and one sentence per artifact record refused (the others are kept)."""
    doc = d.expect_object(d.parse_json(raw, source), source)
    version = d.get(doc, "version", d.nullable(d.integer(minimum=0)), source, default=None)
    status = d.get(doc, "status", d.nullable(d.string), source, default=None)
    records = d.get(doc, "artifacts", d.list_of(d.anything), source)
    pruned = frozenset(d.get(doc, "pruned", d.list_of(d.string), source, default=[]))
    kept: dict[str, ArtifactRecord] = {}
    problems = []
    for index, value in enumerate(records):
        try:
            record = _record(value)
        except d.WrongShape as exc:
            problems.append(f"{source}: {exc.sentence(f'artifact record {index}')}")
            continue
        except RecursionError:
            problems.append(f"{source}: artifact record {index} is nested too deeply to be read")
            continue
        kept[record.path] = record
    return Manifest(version, status, tuple(kept.values()), pruned), problems


# -- .index.json (a cache) -----------------------------------------------------------------------------

_SIGNATURE = d.list_of(d.integer())


_REPLICATE_METRICS_AS_STORED = d.nullable(d.mapping_of(METRICS, keys=d.decimal_string))


#: an index entry's ``replicate_metrics`` when each replicate recorded each metric once: the
#: split is its ``metrics`` read as columns (``completion.index_split``).
INDEX_COLUMNS = "columns"


def _index_replicate_metrics(value: Any) -> Any:
    """``{"<replicate>": {name: [values]}}``, :data:`INDEX_COLUMNS` or null, in one quick pass
    (the index is read whole on resume)."""
    if value is None or value == INDEX_COLUMNS:
        return value
    if type(value) is dict:
        for key, metrics in value.items():
            if type(key) is not str or not key.isdecimal() or type(metrics) is not dict:
                break
            for name, values in metrics.items():
                if type(name) is not str or type(values) is not list:
                    break
            else:
                continue
            break
        else:
            return value
    return _REPLICATE_METRICS_AS_STORED(value)  # the slow path, for its message


_INDEX_ENTRY_FIELDS: dict[str, d.Check] = {
    "metrics": METRICS,
    "replicates": d.nullable(d.integer(minimum=1)),
    "fingerprint": d.nullable(d.string),
    "replicate_metrics": _index_replicate_metrics,
    "seeds": d.nullable(d.mapping_of(d.anything, keys=d.decimal_string)),
    "stat": _SIGNATURE,
}


def _index_entry_ok(entry: Any) -> bool:
    """The quick test of one index entry (what ``_INDEX_ENTRY_FIELDS`` checks, without messages)."""
    if type(entry) is not dict:
        return False
    try:
        metrics, replicates, fingerprint = entry["metrics"], entry["replicates"], entry["fingerprint"]
        per_replicate, signature = entry["replicate_metrics"], entry["stat"]
    except KeyError:
        return False
    seeds = entry.get("seeds")
    if type(metrics) is not dict or any(type(k) is not str or type(v) is not list for k, v in metrics.items()):
        return False
    if not (replicates is None or (type(replicates) is int and replicates >= 1)):
        return False
    if not (fingerprint is None or type(fingerprint) is str):
        return False
    if type(signature) is not list or len(signature) != 6 or any(type(n) is not int for n in signature):
        return False
    if per_replicate == INDEX_COLUMNS:  # the metrics are the split, one value per replicate; seeds a list
        return (
            type(replicates) is int
            and all(len(values) == replicates for values in metrics.values())
            and (seeds is None or (type(seeds) is list and len(seeds) == replicates))
        )
    if seeds is not None and (type(seeds) is not dict or any(type(k) is not str or not k.isdecimal() for k in seeds)):
        return False
    return per_replicate is None or _index_replicate_metrics(per_replicate) is per_replicate


def parse_index(raw: bytes, source: str) -> dict[str, dict[str, Any]]:
    """The completion index's entries; :class:`DocumentError` if any is malformed
    (the caller then rebuilds the whole cache)."""
    doc = d.expect_object(d.parse_json(raw, source), source)
    conditions = d.get(doc, "conditions", d.mapping_of(d.anything), source)
    for condition, entry in conditions.items():
        if _index_entry_ok(entry):
            continue
        d.expect_object(entry, source, f"entry {condition!r}")  # the slow path, for its message
        for key, check in _INDEX_ENTRY_FIELDS.items():
            d.get(entry, key, check, source, default=None if key == "seeds" else d.REQUIRED)
        if entry.get("replicate_metrics") == INDEX_COLUMNS:
            raise DocumentError(
                source,
                f"entry {condition!r} keeps its split as columns, but not one metric value and one seed "
                "(or null) per replicate",
            )
        raise DocumentError(source, f"entry {condition!r} has a malformed 'stat'")
    return conditions


# -- retention pins --------------------------------------------------------------------------------------


@attrs.frozen
class Pin:
    """A consumer run that reads this version (``.consumers/<consumer>--v<N>.json``)."""

    consumer: str
    version: int
    location: str


def parse_pin(raw: bytes, source: str) -> Pin:
    doc = d.expect_object(d.parse_json(raw, source), source)
    return Pin(
        consumer=d.get(doc, "consumer", d.string, source),
        version=d.get(doc, "version", d.integer(minimum=0), source),
        location=d.get(doc, "location", d.string, source),
    )


# -- the producer's metadata.json, as artifact_datasource reads it ------------------------------------------


@attrs.frozen
class ProducerMetadata:
    """What a consumer needs from its producer's ``metadata.json``."""

    replicates: int | None
    conditions: frozenset[str] | None
    run_id: str | None
    status: str | None


def parse_producer_metadata(raw: bytes, source: str) -> ProducerMetadata:
    doc = d.expect_object(d.parse_json(raw, source), source)
    return ProducerMetadata(
        replicates=d.get(doc, "replicates", d.nullable(d.integer(minimum=1)), source, default=None),
        conditions=_optional_set(d.get(doc, "conditions", d.nullable(d.list_of(_name)), source, default=None)),
        run_id=d.get(doc, "run_id", d.nullable(d.string), source, default=None),
        status=d.get(doc, "status", d.nullable(d.string), source, default=None),
    )


def _optional_set(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)
