"""Property-based adversarial tests: names, metric values and corrupted documents.

Hypothesis generates what the review tried by hand (issue 13), and more:

- any string offered as a name is either refused with a ``ValueError`` that
  names it, or works as a file name on this system, temporary name included;
- any metric value a step records comes back from a resumed run exactly as a
  fresh run returned it (or its replicate is refused with a clear error);
- any JSON in place of any document the store reads (metadata, manifest,
  results, marker, journal, index, pin) gives a clear error naming the file,
  a rebuild, or a rerun — never an exception of another type, never a hang.

Examples are bounded so the suite runs in well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crystallize import Experiment, Pipeline, PipelineStep, SeedPlugin, Treatment, data_source
from crystallize._names import check_name, portable_key
from crystallize.errors import CrystallizeError, DocumentError
from crystallize.plugin import documents as doc_checks
from crystallize_artifacts import ArtifactPlugin, documents, verify_run
from crystallize_artifacts.commit import temp_name, write_atomic_at
from crystallize_artifacts.safepaths import close, open_folder

FAST = settings(max_examples=300, deadline=None, database=None)
SLOW = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- names ----------------------------------------------------------------------------------

NAMES = st.one_of(
    st.text(min_size=0, max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=150, max_size=260),
    st.sampled_from(["..", ".", "CON", "nul.txt", "a/b", "a\\b", "x\x00y", "é", "e\u0301", "dot.", "space "]),
)


@FAST
@given(NAMES)
def test_every_name_is_refused_clearly_or_fits_a_temporary_file_name(name):
    try:
        check_name(name, "artifact")
    except ValueError as exc:
        assert repr(name)[:40].strip("'\"") in str(exc) or len(name) > 40
        return
    assert len(temp_name(name).encode("utf-8")) <= 255
    assert portable_key(portable_key(name)) == portable_key(name)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(NAMES)
def test_every_accepted_name_can_be_committed_on_this_file_system(tmp_path, name):
    try:
        check_name(name, "artifact")
    except ValueError:
        return
    folder = tmp_path / "names"
    folder.mkdir(exist_ok=True)
    handle = open_folder(folder)
    try:
        write_atomic_at(handle, name, b"x")
    finally:
        close(handle)
    assert (folder / name).read_bytes() == b"x"
    (folder / name).unlink()


# -- metric values -----------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10))
KEYS = st.one_of(st.text(max_size=5), st.integers(min_value=-5, max_value=5))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=4)), max_size=3).map(set),
        st.dictionaries(KEYS, inner, max_size=3),
    ),
    max_leaves=8,
)


@data_source
def one(ctx):
    return 1.0


class Records(PipelineStep):
    def __init__(self, value):
        self.value = value

    def __call__(self, data, ctx):
        ctx.metrics.add("m", self.value)
        ctx.metrics.add(3, ctx["replicate"])
        return data

    @property
    def params(self):
        return {}


def _deep(a, b):
    """Equal values of the same types, all the way down."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(_deep(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_deep(a[k], b[k]) for k in a)
    return a == b


@SLOW
@given(VALUES)
def test_a_metric_comes_back_from_resume_with_the_value_and_types_a_fresh_run_gave(tmp_path, value):
    root = tmp_path / "metrics"
    shutil.rmtree(root, ignore_errors=True)

    def build():
        return Experiment(
            one(),
            Pipeline([Records(value)]),
            plugins=[ArtifactPlugin(root), SeedPlugin(seed=1)],
            name="e",
            replicates=2,
            treatments=[Treatment("t", {})],
        )

    fresh = build().run()
    resumed = build().run(strategy="resume")
    assert fresh.ok and resumed.ok
    for condition in ("baseline", "t"):
        before = fresh.metrics.baseline if condition == "baseline" else fresh.metrics.treatments[condition]
        after = resumed.metrics.baseline if condition == "baseline" else resumed.metrics.treatments[condition]
        assert _deep(before.metrics, after.metrics), (before.metrics, after.metrics)


# -- corrupted documents -------------------------------------------------------------------------

JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _mutations(valid: dict):
    """Random JSON, or ``valid`` with one field replaced, added or dropped."""
    keys = sorted(valid) or ["x"]
    replace = st.tuples(st.sampled_from(keys), JSON).map(lambda kv: {**valid, kv[0]: kv[1]})
    drop = st.sampled_from(keys).map(lambda k: {key: v for key, v in valid.items() if key != k})
    return st.one_of(JSON, replace, drop)


_RECORD = {
    "name": "data.bin",
    "step": "Save",
    "condition": "baseline",
    "replicate": 0,
    "path": "replicate_0/baseline/Save/data.bin",
    "size": 1,
    "digest": "blake3:" + "0" * 64,
}
#: the same record as written before digests were tagged with their algorithm
_UNTAGGED_RECORD = {key: value for key, value in _RECORD.items() if key != "digest"} | {"sha256": "0" * 64}
PARSERS = {
    "marker": (lambda raw: documents.parse_marker(raw, "m"), {"replicates": 2, "results_sha256": "0" * 64}),
    "results": (
        lambda raw: documents.parse_results(raw, "r", "baseline"),
        {"metrics": {"v": [1, 2]}, "replicates": 2, "replicate_metrics": {"0": {"v": [1]}}, "artifacts": [_RECORD]},
    ),
    "manifest": (lambda raw: documents.parse_manifest(raw, "m"), {"version": 0, "artifacts": [_RECORD], "pruned": []}),
    "untagged record": (
        lambda raw: documents.parse_artifact_record(doc_checks.parse_json(raw, "a"), "a"),
        _UNTAGGED_RECORD,
    ),
    "index": (lambda raw: documents.parse_index(raw, "i"), {"conditions": {"baseline": {"stat": [1] * 6}}}),
    "pin": (lambda raw: documents.parse_pin(raw, "p"), {"consumer": "c", "version": 0, "location": "/x"}),
    "producer metadata": (
        lambda raw: documents.parse_producer_metadata(raw, "md"),
        {"replicates": 2, "conditions": ["baseline"], "run_id": "r", "status": "completed"},
    ),
    "journal": (lambda raw: documents.parse_journal(raw + b"\n", "j", "baseline"), {"replicate": 0}),
}


@FAST
@given(st.sampled_from(sorted(PARSERS)), st.data())
def test_every_document_parser_returns_a_record_or_a_document_error(kind, data):
    parse, valid = PARSERS[kind]
    document = data.draw(_mutations(valid))
    try:
        parse(json.dumps(document).encode())
    except DocumentError as exc:
        assert exc.source and exc.problem
    if kind == "journal":
        parse(json.dumps([document]).encode())  # refused entries are reported, never raised


@FAST
@given(st.binary(max_size=64))
def test_every_parser_survives_arbitrary_bytes(raw):
    for kind, (parse, _) in PARSERS.items():
        try:
            parse(raw)
        except DocumentError:
            assert kind != "journal"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A finished run with one failed replicate (so a journal is kept), made once."""
    root = tmp_path_factory.mktemp("template")

    class Save(PipelineStep):
        def __init__(self, out):
            self.out = out

        def __call__(self, data, ctx):
            if (ctx["condition"], ctx["replicate"]) == ("t", 1):
                raise RuntimeError("planned")
            self.out.write(b"x")
            ctx.metrics.add("v", float(ctx["replicate"]))
            return data

        @property
        def params(self):
            return {}

    build(root, Save).run()
    return root, Save


def build(root, step_class):
    from crystallize import Artifact

    out = Artifact("data.bin")
    return Experiment(
        one(),
        Pipeline([step_class(out)]),
        plugins=[ArtifactPlugin(root), SeedPlugin(seed=1)],
        outputs=[out],
        name="e",
        replicates=2,
        treatments=[Treatment("t", {})],
    )


DOCUMENTS = {
    "metadata.json": "metadata.json",
    "manifest.json": "manifest.json",
    "results.json": "baseline/results.json",
    "marker": "baseline/.crystallize_complete",
    "journal": "t/replicates.jsonl",
    "index": ".index.json",
}


@SLOW
@given(st.sampled_from(sorted(DOCUMENTS)), st.data())
def test_resume_and_verify_over_any_corrupted_document_end_clearly(tmp_path, template, which, data):
    source, step_class = template
    root = tmp_path / "corrupt"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(source, root, symlinks=True)
    run_dir = root / "e" / "v0"
    path = run_dir / DOCUMENTS[which]
    valid = json.loads(path.read_bytes().splitlines()[0] or b"{}") if path.exists() else {}
    valid = valid[0] if isinstance(valid, list) and valid else valid
    document = data.draw(_mutations(valid if isinstance(valid, dict) else {}))
    raw = json.dumps(document).encode()
    if which == "marker" and data.draw(st.booleans()):  # a marker that vouches for the corrupted results
        results = run_dir / "baseline" / "results.json"
        results.write_bytes(raw)
        raw = json.dumps({"replicates": 2, "results_sha256": hashlib.sha256(raw).hexdigest()}).encode()
    path.write_bytes(raw + (b"\n" if which == "journal" else b""))
    assert isinstance(verify_run(run_dir), list)
    try:
        result = build(root, step_class).run(strategy="resume")
    except CrystallizeError as exc:
        assert which == "metadata.json" and "metadata.json" in str(exc), exc
        return
    assert set(result.errors) <= {"t"}  # only the planned failure
    assert len(result.metrics.baseline.metrics["v"]) == 2
    assert verify_run(run_dir) == []
