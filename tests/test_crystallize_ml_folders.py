"""Run folders written by crystallize-ml 0.27 itself resume under crystallize.

``tests/fixtures/crystallize_ml_027/data`` was written by crystallize-ml 0.27.0
running ``legacy_experiment.py`` (``make_fixture.py`` says how); these tests
resume those folders with the very same definitions, unmodified.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from crystallize import hookimpl
from crystallize.errors import ResumeError
from crystallize_artifacts import ArtifactPlugin
from crystallize_resume import LegacyRunWarning

FIXTURE = Path(__file__).with_name("fixtures") / "crystallize_ml_027"
sys.path.insert(0, str(FIXTURE))
import legacy_experiment as legacy  # noqa: E402


class Units:
    """Records the (condition, replicate) units that ran."""

    plugin_name = "units"

    def __init__(self) -> None:
        self.ran: list[tuple[str, int]] = []

    @hookimpl
    def on_replicate_outcome(self, outcome):
        self.ran.append((outcome.condition, outcome.replicate))


@pytest.fixture
def root(tmp_path):
    shutil.copytree(FIXTURE / "data", tmp_path / "data")
    return tmp_path / "data"


def metrics(result):
    found = {"baseline": result.metrics.baseline.metrics}
    found.update({name: m.metrics for name, m in result.metrics.treatments.items()})
    return found


def test_the_fixture_is_what_crystallize_ml_wrote(root):
    for name in ("legacy_complete", "legacy_failed", "legacy_plain"):
        meta = json.loads((root / name / "v0" / "metadata.json").read_text())
        assert sorted(meta) == ["id", "name", "replicates"] and len(meta["id"]) == 64
        assert (root / name / "v0" / "_manifest.json").is_file()
        assert (root / name / "v0" / "baseline" / ".crystallize_complete").read_bytes() == b""


def test_a_complete_folder_resumes_without_running_anything(root):
    units = Units()
    exp = legacy.complete([ArtifactPlugin(root_dir=root), units])
    # 0.27 hashed an artifact's repr, memory address included: its id cannot be recomputed
    with pytest.warns(LegacyRunWarning, match="written by crystallize-ml 0.27, on trust"):
        result = exp.run(strategy="resume")
    assert units.ran == [] and result.ok
    assert metrics(result) == {"baseline": {"total": [10, 11, 12]}, "double": {"total": [20, 21, 22]}}
    meta = json.loads((root / "legacy_complete" / "v0" / "metadata.json").read_text())
    assert meta["id"] == exp.id and meta["status"] == "completed" and meta["signature"] == exp.signature()

    # from now on the folder carries fingerprints: no warning, still nothing to run
    with warnings.catch_warnings():
        warnings.simplefilter("error", LegacyRunWarning)
        again = legacy.complete([ArtifactPlugin(root_dir=root), units]).run(strategy="resume")
    assert units.ran == [] and metrics(again) == metrics(result)


def test_a_marker_crystallize_ml_wrote_over_a_failed_replicate_is_not_trusted(root):
    units = Units()
    with pytest.warns(LegacyRunWarning):
        result = legacy.with_failure([ArtifactPlugin(root_dir=root), units]).run(strategy="resume")
    assert sorted(units.ran) == [("flaky", 0), ("flaky", 1), ("flaky", 2)]  # only the untrusted condition
    assert metrics(result)["baseline"] == {"total": [10, 11, 12]} and metrics(result)["double"]["total"] == [20, 21, 22]
    assert list(result.errors) == ["flaky"] and list(result.errors["flaky"]) == [1]  # it fails again, honestly


def test_a_folder_whose_crystallize_ml_id_can_be_recomputed_is_checked(root):
    units = Units()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LegacyRunWarning)
        result = legacy.plain([ArtifactPlugin(root_dir=root), units]).run(strategy="resume")
    assert units.ran == [] and metrics(result)["double"] == {"total": [60, 61, 62]}


def test_a_crystallize_ml_folder_of_other_parameters_is_refused_and_left_alone(root):
    before = {p: p.read_bytes() for p in (root / "legacy_plain").rglob("*") if p.is_file() and p.name != ".lock"}
    units = Units()
    with pytest.raises(ResumeError, match=r"crystallize-ml 0.27 wrote it for other steps or parameters.*'factor': 4"):
        legacy.plain([ArtifactPlugin(root_dir=root), units], factor=4).run(strategy="resume")
    after = {p: p.read_bytes() for p in (root / "legacy_plain").rglob("*") if p.is_file() and p.name != ".lock"}
    assert units.ran == [] and after == before
