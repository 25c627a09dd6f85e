"""Names that would break on some file system are refused up front, naming the rule.

Each test reproduces a finding of the adversarial review (issue 13).
"""

from __future__ import annotations

import unicodedata

import pytest

from crystallize import Artifact, Experiment, Pipeline, PipelineStep, Treatment, data_source, pipeline_step
from crystallize._names import MAX_NAME_BYTES, check_name
from crystallize.errors import ConfigurationError


@pytest.mark.parametrize("size", [MAX_NAME_BYTES + 1, 211, 230, 255])
def test_names_too_long_for_a_temporary_file_name_are_refused_with_the_real_limit(size):
    with pytest.raises(ValueError, match=rf"is {size} bytes long in UTF-8; names may have at most 200 bytes"):
        Artifact("a" * size)


@pytest.mark.parametrize("name", ["CON", "nul", "Aux.txt", "com1", "LPT9.bin", "com\u00b9", "prn .log"])
def test_names_windows_reserves_for_devices_are_refused(name):
    with pytest.raises(ValueError, match="Windows reserves it for a device"):
        Treatment(name, {})


@pytest.mark.parametrize("name", ["run.", "run ", "v1..."])
def test_names_ending_with_a_dot_or_a_space_are_refused(name):
    with pytest.raises(ValueError, match="ends with a dot or a space"):
        Artifact(name)


def test_a_lone_surrogate_is_refused():
    with pytest.raises(ValueError, match="not valid Unicode"):
        check_name("bad\udc80name", "artifact")


@data_source
def one(ctx):
    return 1.0


@pipeline_step()
def noop(data, ctx):
    return data


def run(treatments=(), steps=None, outputs=()):
    return Experiment(
        one(), Pipeline(steps or [noop()]), treatments=list(treatments), outputs=list(outputs), name="e"
    ).validate()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Fast", "fast"),
        ("STRASSE", "straße"),
        (unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")),
        ("Baseline", None),
    ],
)
def test_conditions_that_collide_on_case_insensitive_or_normalising_systems_are_refused(a, b):
    treatments = [Treatment(a, {})] + ([Treatment(b, {})] if b is not None else [])
    with pytest.raises(ConfigurationError, match="differ only in letter case or Unicode normalisation"):
        run(treatments)


def test_outputs_that_collide_on_case_insensitive_systems_are_refused():
    with pytest.raises(ConfigurationError, match=r"artifact names 'Model.bin' and 'model.bin' differ only"):
        run(outputs=[Artifact("Model.bin"), Artifact("model.bin")])


class Fast(PipelineStep):
    def __init__(self, out):
        self.out = out

    def __call__(self, data, ctx):
        self.out.write(b"x")
        return data

    @property
    def params(self):
        return {}


def test_steps_whose_names_collide_case_insensitively_cannot_write_the_same_artifact():
    out = Artifact("model.bin")

    @pipeline_step()
    def fast(data, ctx, out):
        out.write(b"y")
        return data

    with pytest.raises(ConfigurationError, match=r"steps 0 and 1 are named 'Fast' and 'fast'"):
        run(steps=[Fast(out), fast(out=out)], outputs=[out])
