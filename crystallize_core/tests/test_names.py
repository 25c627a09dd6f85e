import pytest
from core_helpers import numbers, total

from crystallize import Artifact, Experiment, Pipeline, Treatment
from crystallize._names import check_name

BAD = ["", ".", "..", "a/b", "a\\b", "nul\x00byte", "tab\tname", "line\nbreak", "\x7f", "x" * 256]


@pytest.mark.parametrize("bad", BAD)
def test_bad_names_are_rejected_everywhere_with_the_value_named(bad):
    for build in (
        lambda: Artifact(bad),
        lambda: Treatment(bad, {"k": 1}),
        lambda: Experiment(numbers(), Pipeline([total()]), name=bad),
    ):
        with pytest.raises(ValueError) as info:
            build()
        assert repr(bad)[:40] in str(info.value)


@pytest.mark.parametrize("good", ["model.bin", "data.json", "run-1_final", "Ünïcode", "a b"])
def test_good_names_pass(good):
    assert check_name(good, "artifact") == good


def test_non_string_names_are_type_errors():
    with pytest.raises(TypeError, match="artifact name must be a str"):
        Artifact(3)  # type: ignore[arg-type]


def test_artifact_datasource_checks_step_and_artifact_names():
    exp = Experiment(numbers(), Pipeline([total()]), name="producer")
    with pytest.raises(ValueError, match=r"invalid step name '\.\./up'"):
        exp.artifact_datasource(step="../up", name="x")
    with pytest.raises(ValueError, match="invalid artifact name 'a/b'"):
        exp.artifact_datasource(step="S", name="a/b")
