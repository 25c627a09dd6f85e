"""Links, FIFOs and hostile names below the root: the store never leaves its folder.

Each test reproduces a finding of the adversarial review (issue 13): a link or
special file planted where the store keeps its own files, or a name that would
become a path outside the root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from artifact_helpers import experiment

from crystallize import Artifact, Experiment, Pipeline, PipelineStep, Treatment, data_source, pipeline_step
from crystallize.plugin import ConfigurationError, ResumeError
from crystallize_artifacts import ArtifactPlugin, verify_run
from crystallize_artifacts.retention import prune
from crystallize_artifacts.safepaths import UnsafePathError


@pytest.fixture
def outside(tmp_path):
    """A folder outside the root with a file the store must never touch."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    return folder


def untouched(outside):
    return (
        sorted(p.name for p in outside.rglob("*")) == ["precious.txt"]
        and (outside / "precious.txt").read_text() == "keep me"
    )


def test_a_symlink_planted_as_the_lock_is_never_truncated_or_written(tmp_path, outside):
    root = tmp_path / "root"
    experiment(root, replicates=1).run()
    lock = root / "producer" / "v0" / ".lock"
    lock.unlink()
    lock.symlink_to(outside / "precious.txt")
    with pytest.raises(UnsafePathError, match=r"\.lock is a symbolic link"):
        experiment(root, replicates=1).run(strategy="resume")
    assert untouched(outside)


def test_retention_never_follows_a_symlinked_replicate_folder(tmp_path, outside):
    root = tmp_path / "root"
    for _ in range(3):
        experiment(root, replicates=1, versioned=True, treatments=[]).run()
    link = root / "producer" / "v0" / "replicate_7"
    link.symlink_to(outside, target_is_directory=True)
    actions = prune(root / "producer", keep=1, big_file_bytes=None, current=2)
    assert any("v0" in a for a in actions)
    assert untouched(outside)
    assert link.is_symlink()  # left alone, not followed


def test_a_symlinked_version_folder_is_never_a_run(tmp_path, outside):
    root = tmp_path / "root"
    experiment(root, replicates=1, versioned=True, treatments=[]).run()
    (root / "producer" / "v5").symlink_to(outside, target_is_directory=True)
    result = experiment(root, replicates=1, versioned=True, treatments=[]).run(strategy="resume")
    assert result.run.version == 0  # v5 is a link: not the latest run, never written through
    assert untouched(outside)


@pytest.mark.parametrize("where", ["replicate_0", "replicate_0/baseline", "baseline"])
def test_a_symlinked_folder_in_the_run_is_refused_not_written_through(tmp_path, outside, where):
    root = tmp_path / "root"
    exp = experiment(root, replicates=2, treatments=[], fail=("baseline", 0))
    exp.run()
    target = root / "producer" / "v0" / where
    if target.exists():
        os.rename(target, tmp_path / "moved")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(outside, target_is_directory=True)
    try:
        result = experiment(root, replicates=2, treatments=[]).run(strategy="resume")
    except UnsafePathError as exc:
        assert "symbolic link" in str(exc)
    else:
        assert not result.ok and "symbolic link" in str(result.error_list()[0])
    assert untouched(outside)


def test_a_dangling_journal_link_is_not_created_through(tmp_path, outside):
    root = tmp_path / "root"
    exp = experiment(root, replicates=2, treatments=[], fail=("baseline", 1))
    exp.run()
    journal = root / "producer" / "v0" / "baseline" / "replicates.jsonl"
    journal.unlink()
    journal.symlink_to(outside / "created-by-the-store.jsonl")
    with pytest.raises(UnsafePathError, match="replicates.jsonl is a symbolic link"):
        experiment(root, replicates=2, treatments=[], fail=("baseline", 1)).run(strategy="resume")
    assert untouched(outside)


def test_a_consumers_link_in_a_producer_folder_is_not_written_through(tmp_path, outside):
    root = tmp_path / "root"
    producer = experiment(root, replicates=1, treatments=[])
    producer.run()
    (root / "producer" / "v0" / ".consumers").symlink_to(outside, target_is_directory=True)

    @pipeline_step()
    def read(path, ctx):
        return path

    consumer = Experiment(
        producer.artifact_datasource("ModelStep", "data.json"),
        Pipeline([read()]),
        name="consumer",
        plugins=[ArtifactPlugin(root)],
    )
    assert consumer.run().ok  # a pin that cannot be written is only a warning
    assert untouched(outside)


def test_a_link_in_a_producer_folder_is_never_handed_to_a_consumer(tmp_path, outside):
    root = tmp_path / "root"
    producer = experiment(root, replicates=1, treatments=[])
    producer.run()
    artifact = root / "producer" / "v0" / "replicate_0" / "baseline" / "ModelStep" / "data.json"
    artifact.unlink()
    artifact.symlink_to(outside / "precious.txt")

    @pipeline_step()
    def read(path, ctx):
        ctx.metrics.add("text", path.read_text())
        return path

    result = Experiment(producer.artifact_datasource("ModelStep", "data.json"), Pipeline([read()])).run()
    assert not result.ok
    assert "not a regular file written by the store" in result.errors["baseline"][0].message


FIFO_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from artifact_helpers import experiment
    try:
        experiment(sys.argv[1], replicates=1).run(strategy="resume")
    except Exception as exc:
        print(type(exc).__name__, exc)
    """
)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["metadata.json", "manifest.json", "baseline/.crystallize_complete", ".index.json"])
def test_a_fifo_planted_as_a_document_neither_hangs_resume_nor_verify(tmp_path, name):
    root = tmp_path / "root"
    experiment(root, replicates=1).run()
    path = root / "producer" / "v0" / name
    path.unlink()
    os.mkfifo(path)
    child = subprocess.run(
        [sys.executable, "-c", FIFO_SCRIPT, str(root), os.path.dirname(__file__)],
        capture_output=True,
        text=True,
        timeout=60,  # a blocking open would hang here
        env={**os.environ, "CRYSTALLIZE_LOAD_PLUGINS": "artifacts,metadata,resume"},
    )
    assert child.returncode == 0, child.stderr
    if name == ".index.json":  # a cache: rebuilt, the FIFO replaced
        assert child.stdout == "" and path.is_file()
    elif name == "manifest.json":  # replaced when the run closes
        assert child.stdout == ""
    else:
        assert "FIFO" in child.stdout and ("ResumeError" in child.stdout or "UnsafePathError" in child.stdout)
    problems = verify_run(root / "producer" / "v0")  # returns at once, whatever is there
    assert isinstance(problems, list)


# -- names that become paths ---------------------------------------------------------------


@data_source
def ten(ctx):
    return 10.0


def writer_experiment(root, step, treatments=()):
    out = Artifact("out.bin")
    step.out = out
    return Experiment(
        ten(),
        Pipeline([step]),
        plugins=[ArtifactPlugin(root)],
        outputs=[out],
        name="e",
        treatments=list(treatments),
    )


class Writes(PipelineStep):
    def __call__(self, data, ctx):
        self.out.write(b"x")
        return data

    @property
    def params(self):
        return {}


class Escapes(Writes):
    @property
    def step_name(self):
        return "../../escaped"


class Shifty(Writes):
    """Passes validation, then names itself differently while running."""

    calls = 0

    @property
    def step_name(self):
        Shifty.calls += 1
        return "Shifty" if Shifty.calls <= 2 else "../../escaped"


def test_a_step_name_holding_a_path_is_refused_at_validation(tmp_path):
    with pytest.raises(ConfigurationError, match=r"invalid step name '\.\./\.\./escaped'"):
        writer_experiment(tmp_path / "root", Escapes()).run()
    assert not (tmp_path / "escaped").exists()


def test_a_step_name_that_changes_after_validation_is_refused_where_it_becomes_a_path(tmp_path):
    Shifty.calls = 0
    result = writer_experiment(tmp_path / "root", Shifty()).run()
    assert not result.ok and "invalid step name '../../escaped'" in result.errors["baseline"][0].message
    assert not (tmp_path / "root" / "escaped").exists() and not (tmp_path / "escaped").exists()


def test_a_function_step_whose_name_holds_a_path_is_refused(tmp_path):
    def fn(data, ctx):
        return data

    fn.__name__ = "../up"
    with pytest.raises(ConfigurationError, match=r"invalid step name '\.\./up'"):
        Experiment(ten(), Pipeline([pipeline_step()(fn)()]), plugins=[ArtifactPlugin(tmp_path)], name="e").run()


def test_a_treatment_renamed_after_construction_is_refused(tmp_path):
    treatment = Treatment("fine", {})
    treatment.name = "../../escaped"
    with pytest.raises(ConfigurationError, match=r"invalid treatment name '\.\./\.\./escaped'"):
        writer_experiment(tmp_path / "root", Writes(), [treatment]).run()
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize("name", ["replicate_x", "replicate_", "Replicate_0", "METADATA.json", "_manifest.json"])
def test_condition_names_the_layout_uses_are_reserved(tmp_path, name):
    with pytest.raises(ConfigurationError, match="collides with ArtifactPlugin's layout"):
        writer_experiment(tmp_path, Writes(), [Treatment(name, {})]).run()


def test_a_resume_refuses_a_planted_link_named_v0(tmp_path, outside):
    root = tmp_path / "root"
    (root / "producer").mkdir(parents=True)
    (root / "producer" / "v0").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="v0 is a symbolic link"):
        experiment(root, replicates=1).run()
    assert untouched(outside)


def test_a_resume_with_finished_work_and_a_missing_metadata_file_is_refused(tmp_path):
    root = tmp_path / "root"
    experiment(root, replicates=2).run()
    (root / "producer" / "v0" / "metadata.json").unlink()
    with pytest.raises(ResumeError, match="no metadata.json"):
        experiment(root, replicates=2).run(strategy="resume")


@pytest.mark.parametrize("content", [b"null", b"[]", b"7", b'"x"', b'{"name": "producer"}', b'{"id": 5}'])
def test_a_resume_over_metadata_of_the_wrong_shape_is_refused(tmp_path, content):
    root = tmp_path / "root"
    experiment(root, replicates=2).run()
    meta = root / "producer" / "v0" / "metadata.json"
    meta.write_bytes(content)
    with pytest.raises(ResumeError, match="metadata.json"):
        experiment(root, replicates=2).run(strategy="resume")
    assert meta.read_bytes() == content  # not rewritten with the new id


def test_verify_never_reads_files_a_manifest_points_outside_the_run(tmp_path, outside):
    root = tmp_path / "root"
    experiment(root, replicates=1, treatments=[]).run()
    manifest_path = root / "producer" / "v0" / "manifest.json"
    manifest = json.loads(manifest_path.read_bytes())
    record = manifest["artifacts"][0]
    manifest["artifacts"] = [
        {**record, "path": str(outside / "precious.txt")},
        {**record, "path": "../../../outside/precious.txt"},
        {**record, "path": "replicate_0/../../../outside/precious.txt"},
    ]
    manifest_path.write_text(json.dumps(manifest))
    problems = verify_run(root / "producer" / "v0")
    assert len(problems) == 3 and all("refusing it" in p for p in problems)
    assert not any("size" in p or "content differs" in p for p in problems)
