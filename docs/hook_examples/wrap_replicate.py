"""Run every replicate inside a context manager: decimal arithmetic with six significant digits."""

import decimal

from crystallize import Experiment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class SixDigits:
    plugin_name = "six-digits"

    @hookimpl(wrapper=True)
    def wrap_replicate(self):
        with decimal.localcontext() as context:
            context.prec = 6
            return (yield)  # the replicate runs here; its exception, if any, is raised here


@data_source
def one(ctx):
    return decimal.Decimal(1)


@pipeline_step()
def third(data, ctx):
    ctx.metrics.add("third", str(data / 3))
    return data


result = Experiment(one(), [third()], plugins=[SixDigits()]).run()
assert result.metrics.baseline.metrics == {"third": ["0.333333"]}
