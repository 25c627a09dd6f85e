"""Record which machine ran the experiment, as a typed fact other plugins (and metadata.json) can read."""

import platform

from crystallize import Experiment, data_source, pipeline_step
from crystallize.plugin import FactKey, hookimpl

HOST: FactKey[str] = FactKey("host", "the machine that ran the replicates")


class RecordHost:
    plugin_name = "record-host"

    @hookimpl
    def before_run(self, run):
        run.facts[HOST] = platform.node()


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def total(data, ctx):
    ctx.metrics.add("total", sum(data))
    return data


result = Experiment(numbers(), [total()], plugins=[RecordHost()]).run()
assert result.run.facts[HOST] == platform.node()
print(result.run.facts.to_json())  # {'host': '...'}: what metadata.json records under "facts"
