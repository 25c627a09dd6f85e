"""load_metrics / load_all_metrics: crystallize-ml 0.27's readers of stored metrics, over our store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from artifact_helpers import experiment

from crystallize_artifacts import UnmarkedResultsWarning, load_all_metrics, load_metrics

LEGACY = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "crystallize_ml_0_27" / "legacy-train"


def write_results(path: Path, document: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


def test_a_folder_written_by_crystallize_ml_reads_as_it_did_there():
    stored = json.loads((LEGACY / "v1" / "deep" / "results.json").read_text())["metrics"]
    version, baseline, treatments = load_metrics(LEGACY)
    assert version == 1 and list(treatments) == ["deep", "wide"]
    assert treatments["deep"] == stored and baseline
    assert load_all_metrics(LEGACY)[2]["wide"][0] == 1


def test_a_crystallize_ml_results_file_without_its_marker_is_read_with_a_warning_naming_it(tmp_path):
    write_results(tmp_path / "v0" / "baseline" / "results.json", {"metrics": {"acc": [0.9]}})
    write_results(tmp_path / "v0" / "t" / "results.json", {"metrics": {"acc": [0.95]}})
    with pytest.warns(UnmarkedResultsWarning) as caught:
        assert load_metrics(tmp_path) == (0, {"acc": [0.9]}, {"t": {"acc": [0.95]}})
    named = sorted(str(w.message).split(" has no completion marker")[0] for w in caught)
    assert named == [str(tmp_path / "v0" / c / "results.json") for c in ("baseline", "t")]


def test_a_results_file_of_ours_that_lost_its_marker_is_not_read(tmp_path):
    exp = experiment(tmp_path, replicates=2)
    exp.run()
    folder = tmp_path / "producer"
    assert load_metrics(folder)[2]["double"]["value"]  # vouched for: read
    (folder / "v0" / "double" / ".crystallize_complete").unlink()  # as if the run died before the marker
    _, baseline, treatments = load_metrics(folder)
    assert baseline["value"] and treatments == {"double": {}}  # listed (it has results.json), metrics not trusted
    assert "double" not in load_all_metrics(folder)[2]


def test_finished_replicates_of_a_condition_that_failed_are_reported(tmp_path):
    exp = experiment(tmp_path, replicates=3, fail=("double", 1))
    result = exp.run()
    _, _, treatments = load_metrics(tmp_path / "producer")
    assert treatments["double"]["value"] == result.metrics.treatments["double"].metrics["value"]
    assert len(treatments["double"]["value"]) == 2


def test_a_linked_results_file_is_not_followed(tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"metrics": {"secret": [1]}}))
    (tmp_path / "exp" / "v0" / "baseline").mkdir(parents=True)
    (tmp_path / "exp" / "v0" / "baseline" / "results.json").symlink_to(outside)
    assert load_metrics(tmp_path / "exp") == (0, {}, {})


def test_versions_newer_than_the_one_asked_for_are_ignored(tmp_path):
    shutil.copytree(LEGACY, tmp_path / "legacy")
    version, baseline, treatments = load_all_metrics(tmp_path / "legacy", version=0)
    assert version == 0 and {v for v, _ in treatments.values()} == {0}
    assert load_metrics(tmp_path / "legacy", version=0)[1] == baseline
