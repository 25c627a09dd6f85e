"""An experiment defined in a module, used to compare ids across processes.

Run as a script (``python identity_fixture.py``) its classes live in
``__main__``; imported, in ``identity_fixture``. The id must not differ.
"""

from crystallize import Artifact, Experiment, Pipeline, PipelineStep, Treatment, data_source, pipeline_step


@data_source
def source(ctx, size=3):
    return list(range(size))


class Model:
    def __init__(self, depth):
        self.depth = depth


class Train(PipelineStep):
    def __init__(self, out, model, lr):
        self.out = out
        self.model = model
        self.lr = lr

    def __call__(self, data, ctx):
        return data


@pipeline_step()
def evaluate(data, ctx, metric="acc", weights=(1.0, 2.0)):
    return data


def build():
    out = Artifact("model.bin", writer=lambda m: repr(m).encode())
    return Experiment(
        datasource=source(size=4),
        pipeline=Pipeline([Train(out, Model(depth=3), lr=0.1), evaluate(metric="f1")]),
        outputs=[out],
        treatments=[Treatment("t", {"lr": 1})],
    )


if __name__ == "__main__":
    print(build().id)
