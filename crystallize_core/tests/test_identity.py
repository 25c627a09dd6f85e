import subprocess
import sys
from pathlib import Path

import identity_fixture as fx
import pytest

from crystallize import Experiment, Pipeline
from crystallize._identity import describe

HERE = Path(__file__).parent


def test_id_is_stable_and_has_no_memory_addresses():
    exp = fx.build()
    assert exp.id == fx.build().id
    description = repr(describe(exp.pipeline.steps))
    assert "0x" not in description
    assert "Train" in description and "model.bin" in description and "depth" in description


def test_same_id_as_script_and_as_imported_module_in_other_processes():
    as_script = subprocess.run(
        [sys.executable, str(HERE / "identity_fixture.py")], capture_output=True, text=True, check=True
    ).stdout.strip()
    as_module = subprocess.run(
        [sys.executable, "-c", "import identity_fixture as m; print(m.build().id)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    ).stdout.strip()
    assert as_script == as_module == fx.build().id


@pytest.mark.parametrize(
    "change",
    [
        lambda: Pipeline([fx.Train(fx.Artifact("model.bin"), fx.Model(depth=4), lr=0.1), fx.evaluate(metric="f1")]),
        lambda: Pipeline([fx.Train(fx.Artifact("model.bin"), fx.Model(depth=3), lr=0.2), fx.evaluate(metric="f1")]),
        lambda: Pipeline([fx.Train(fx.Artifact("other.bin"), fx.Model(depth=3), lr=0.1), fx.evaluate(metric="f1")]),
        lambda: Pipeline([fx.Train(fx.Artifact("model.bin"), fx.Model(depth=3), lr=0.1), fx.evaluate()]),
        lambda: Pipeline([fx.evaluate(metric="f1")]),
    ],
)
def test_parameters_artifacts_and_steps_change_the_id(change):
    base = fx.build()
    changed = Experiment(base.datasource, change())
    assert changed.id != base.id


def test_datasource_parameters_change_the_id():
    base = fx.build()
    assert Experiment(fx.source(size=5), base.pipeline).id != Experiment(fx.source(size=4), base.pipeline).id


def test_describe_handles_awkward_values():
    import math

    class Opaque:
        __slots__ = ()

    desc = describe({"nan": math.nan, "set": {3, 1}, "bytes": b"ab", "path": Path("a/b"), "obj": Opaque()})
    text = repr(desc)
    assert "nan" in text and "0x" not in text and "Opaque" in text
    cyc: list = []
    cyc.append(cyc)
    assert "cycle" in repr(describe(cyc))


def test_numpy_arrays_are_described_by_content():
    np = pytest.importorskip("numpy")
    assert describe(np.arange(3)) == describe(np.arange(3))
    assert describe(np.arange(3)) != describe(np.arange(4))
    assert describe(np.float64(1.5)) == 1.5
