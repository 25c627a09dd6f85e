"""A tracker that files runs by experiment name refuses unnamed experiments before any work starts."""

from crystallize import ConfigurationError, Experiment, data_source, pipeline_step
from crystallize.plugin import hookimpl


class RequireName:
    plugin_name = "require-name"

    @hookimpl
    def validate_experiment(self, experiment):
        if experiment.name is None:
            raise ConfigurationError("this tracker files runs by name: pass Experiment(name=...)")


@data_source
def numbers(ctx):
    return [1, 2, 3]


@pipeline_step()
def total(data, ctx):
    ctx.metrics.add("total", sum(data))
    return data


try:
    Experiment(numbers(), [total()], plugins=[RequireName()]).run()
except ConfigurationError as error:
    print("refused:", error)

result = Experiment(numbers(), [total()], plugins=[RequireName()], name="sums").run()
assert result.metrics.baseline.metrics == {"total": [6]}
