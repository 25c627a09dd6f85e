"""Artifact digests are BLAKE3, tagged ``"blake3:<hex>"``; runs recorded with untagged SHA-256 still load and verify.

Runs written before digests were tagged hold ``"sha256": "<hex>"`` in every
artifact record (manifest, ``results.json``, journal lines). :func:`untag`
turns a fresh run into one of those, exactly as that version wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import blake3
import pytest
from artifact_helpers import experiment

from crystallize import Artifact, Experiment, Pipeline, PipelineStep, data_source
from crystallize.plugin import DocumentError
from crystallize_artifacts import ArtifactPlugin, documents, verify_path, verify_run

CLI_ENV = {**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume"}


def blake3_digest(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


def untag(files: dict[str, bytes]) -> dict[str, bytes]:
    """The documents of a run (``{relative path: bytes}``) rewritten with untagged ``"sha256"`` records."""

    def old(record: dict) -> dict:
        assert record.pop("digest").startswith("blake3:")
        return record | {"sha256": hashlib.sha256(files[record["path"]]).hexdigest()}

    changed = {}
    for path, raw in files.items():
        name = path.rsplit("/", 1)[-1]
        if name in ("manifest.json", "results.json"):
            doc = json.loads(raw)
            doc["artifacts"] = [old(r) for r in doc["artifacts"]]
            changed[path] = json.dumps(doc).encode()
            if name == "results.json":
                marker = path.replace("results.json", ".crystallize_complete")
                vouched = json.loads(files[marker]) | {"results_sha256": hashlib.sha256(changed[path]).hexdigest()}
                changed[marker] = json.dumps(vouched).encode()
        elif name == "replicates.jsonl":
            lines = []
            for line in raw.splitlines():
                entry = json.loads(line)
                for e in entry if isinstance(entry, list) else [entry]:
                    e["artifacts"] = [old(r) for r in e["artifacts"]]
                lines.append(json.dumps(entry).encode() + b"\n")
            changed[path] = b"".join(lines)
    return changed


def untag_folder(run_dir: Path) -> None:
    files = {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    for path, raw in untag(files).items():
        (run_dir / path).write_bytes(raw)
    (run_dir / ".index.json").unlink(missing_ok=True)  # a cache; older runs may not have one


def verify_command(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crystallize", "verify", str(path)], capture_output=True, text=True, env=CLI_ENV
    )


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the digest can tell
    path.write_bytes(bytes(data))


# -- new runs ----------------------------------------------------------------------------------------------


@data_source
def payload(ctx):
    return os.urandom(300_000) + bytes([ctx["replicate"]])  # larger than the stream's buffer


class WriteEveryWay(PipelineStep):
    """Writes one artifact whole, one streamed in uneven pieces, and two from files (copied, moved)."""

    def __init__(self, whole, streamed, copied, moved):
        self.whole, self.streamed, self.copied, self.moved = whole, streamed, copied, moved

    def __call__(self, data, ctx):
        self.whole.write(data)
        with self.streamed.open("wb") as f:
            for start in range(0, len(data), 70_001):
                f.write(data[start : start + 70_001])
            f.write(memoryview(data)[:5])
        for artifact, move in ((self.copied, False), (self.moved, True)):
            with tempfile.NamedTemporaryFile(delete=False) as source:
                source.write(data[::-1])
            artifact.write_file(source.name, move=move)
            if not move:
                os.unlink(source.name)
        return data

    @property
    def params(self):
        return {}


def test_a_new_runs_records_carry_the_blake3_digest_of_their_bytes(tmp_path):
    outputs = [Artifact(name) for name in ("whole.bin", "streamed.bin", "copied.bin", "moved.bin")]
    result = Experiment(
        payload(),
        Pipeline([WriteEveryWay(*outputs)]),
        plugins=[ArtifactPlugin(root_dir=tmp_path)],
        outputs=outputs,
        name="digests",
        replicates=2,
    ).run()
    assert result.ok, result.errors
    run_dir = tmp_path / "digests" / "v0"
    manifest = json.loads((run_dir / "manifest.json").read_bytes())
    results = json.loads((run_dir / "baseline" / "results.json").read_bytes())
    assert len(manifest["artifacts"]) == len(results["artifacts"]) == len(result.artifacts) == 8
    for records in (manifest["artifacts"], results["artifacts"], [r.to_json() for r in result.artifacts]):
        for record in records:
            data = (run_dir / record["path"]).read_bytes()
            assert "sha256" not in record
            assert record["digest"] == blake3_digest(data) == f"blake3:{blake3.blake3(data).hexdigest()}"
    assert verify_path(run_dir) == {str(run_dir): []}


# -- runs recorded with untagged SHA-256 ----------------------------------------------------------------------


def test_a_run_recorded_with_untagged_sha256_digests_loads_and_verifies(tmp_path):
    experiment(tmp_path, replicates=2).run()
    run_dir = tmp_path / "producer" / "v0"
    untag_folder(run_dir)
    manifest, problems = documents.parse_manifest((run_dir / "manifest.json").read_bytes(), "manifest.json")
    assert problems == [] and len(manifest.artifacts) == 4
    for record in manifest.artifacts:
        assert record.digest == "sha256:" + hashlib.sha256((run_dir / record.path).read_bytes()).hexdigest()
    ok = verify_command(tmp_path / "producer")
    assert ok.returncode == 0 and "v0: ok" in ok.stdout, ok.stdout + ok.stderr

    flip_a_byte(run_dir / "replicate_1" / "double" / "ModelStep" / "data.json")
    bad = verify_command(tmp_path / "producer")
    assert bad.returncode == 1
    assert "replicate_1/double/ModelStep/data.json: content differs from its sha256 digest in the manifest" in (
        bad.stdout
    )


def test_resuming_a_run_recorded_with_untagged_sha256_digests_keeps_them_beside_new_blake3_ones(tmp_path):
    first = experiment(tmp_path, replicates=3, fail=("double", 1)).run()
    assert [(e.condition, e.replicate) for e in first.error_list()] == [("double", 1)]
    run_dir = tmp_path / "producer" / "v0"
    assert (run_dir / "double" / "replicates.jsonl").is_file()  # the journal holds records too
    untag_folder(run_dir)

    resumed = experiment(tmp_path, replicates=3).run(strategy="resume")
    uninterrupted = experiment(tmp_path / "reference", replicates=3).run()
    assert resumed.ok and resumed.metrics.treatments == uninterrupted.metrics.treatments
    manifest = json.loads((run_dir / "manifest.json").read_bytes())
    digests = {r["path"]: r["digest"] for r in manifest["artifacts"]}
    assert digests.pop("replicate_1/double/ModelStep/data.json").startswith("blake3:")  # written by the resume
    assert len(digests) == 5 and all(d.startswith("sha256:") for d in digests.values())  # read as they were
    assert verify_run(run_dir) == []


def test_verify_on_an_object_store_rehashes_untagged_sha256_records(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    root = f"memory://crystallize-tests/{uuid.uuid4().hex}"
    experiment(root, replicates=2).run()
    fs = fsspec.filesystem("memory")
    base = f"/{root.removeprefix('memory://')}/producer/v0"  # the memory file system's keys start with /
    files = {key[len(base) + 1 :]: fs.cat_file(key) for key in fs.find(base)}
    for path, raw in untag(files).items():
        fs.pipe_file(f"{base}/{path}", raw)
    assert list(verify_path(f"{root}/producer").values()) == [[]]

    data = bytearray(files["replicate_0/baseline/ModelStep/data.json"])
    data[3] ^= 0x01
    fs.pipe_file(f"{base}/replicate_0/baseline/ModelStep/data.json", bytes(data))
    [problems] = verify_path(f"{root}/producer").values()
    assert len(problems) == 1 and problems[0].endswith(
        "/producer/v0/replicate_0/baseline/ModelStep/data.json: content differs from its sha256 digest in the manifest"
    )


def test_a_changed_byte_under_a_blake3_digest_is_reported_naming_blake3(tmp_path):
    experiment(tmp_path, replicates=1, treatments=[]).run()
    run_dir = tmp_path / "producer" / "v0"
    flip_a_byte(run_dir / "replicate_0" / "baseline" / "ModelStep" / "data.json")
    assert verify_run(run_dir) == [
        f"{run_dir}/replicate_0/baseline/ModelStep/data.json: content differs from its blake3 digest in the manifest"
    ]


# -- malformed digests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digest", "why"),
    [
        ("blake3:zz", "expected '<algorithm>:<lowercase hex>'"),
        ("md9:00", "unknown algorithm 'md9'"),
        ("0" * 64, "expected '<algorithm>:<lowercase hex>'"),  # missing its algorithm and colon
        ("blake3:" + "0" * 62, "a blake3 digest has 64 hex digits, not 62"),
    ],
)
def test_a_malformed_digest_is_refused_at_load_naming_it(tmp_path, digest, why):
    experiment(tmp_path, replicates=1, treatments=[]).run()
    run_dir = tmp_path / "producer" / "v0"
    for name in ("manifest.json", "baseline/results.json"):
        doc = json.loads((run_dir / name).read_bytes())
        doc["artifacts"][0]["digest"] = digest
        (run_dir / name).write_text(json.dumps(doc))

    _, problems = documents.parse_manifest((run_dir / "manifest.json").read_bytes(), "manifest.json")
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"manifest.json: artifact record 0['digest'] is a string ({digest!r}), not a valid")
    assert why in problems[0]
    with pytest.raises(DocumentError) as refused:
        documents.parse_results((run_dir / "baseline" / "results.json").read_bytes(), "results.json", "baseline")
    assert repr(digest) in str(refused.value) and why in str(refused.value)
    reported = verify_run(run_dir)
    assert any(repr(digest) in p and "manifest.json" in p for p in reported)
    assert any(repr(digest) in p and "results.json" in p for p in reported)


def test_an_untagged_sha256_that_is_not_a_sha256_is_refused_naming_it(tmp_path):
    experiment(tmp_path, replicates=1, treatments=[]).run()
    run_dir = tmp_path / "producer" / "v0"
    untag_folder(run_dir)
    doc = json.loads((run_dir / "manifest.json").read_bytes())
    doc["artifacts"][0]["sha256"] = "blake3:" + "0" * 64
    _, problems = documents.parse_manifest(json.dumps(doc).encode(), "manifest.json")
    assert len(problems) == 1 and "['sha256']" in problems[0] and "'blake3:" in problems[0]
