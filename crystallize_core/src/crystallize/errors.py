"""Exception types raised by Crystallize.

Every error a user can trigger derives from :class:`CrystallizeError`, so
``except CrystallizeError`` catches all of them. Most also derive from the
built-in type a Python user would expect (``ValueError`` for bad input,
``TypeError`` for a wrong type), so existing ``except ValueError`` code keeps
working.
"""

from __future__ import annotations


class CrystallizeError(Exception):
    """Base class of every Crystallize error."""


class ConfigurationError(CrystallizeError, ValueError):
    """The experiment is configured in a way that cannot run.

    Raised by :meth:`crystallize.Experiment.validate` (and therefore by
    :meth:`~crystallize.Experiment.run`) before any work starts.
    """


class ContextMutationError(CrystallizeError, TypeError):
    """A step tried to overwrite a key that is already set in the context."""


class ArtifactStoreError(CrystallizeError, RuntimeError):
    """An artifact was written but no plugin stores artifacts."""


class PluginError(CrystallizeError, RuntimeError):
    """A plugin failed to load, has an invalid hook, or raised during a run.

    The message names the plugin and, when known, the distribution that
    installed it.
    """


class ReplicateRejected(CrystallizeError, ValueError):
    """Raised by a store's ``record_replicate`` for an outcome it cannot record.

    The core then records that replicate as failed, with this error's message,
    and carries on with the others (a store raises it for metrics it cannot
    store).
    """


class ResumeError(CrystallizeError, RuntimeError):
    """``strategy="resume"`` cannot continue the previous run safely."""


class DocumentError(CrystallizeError, ValueError):
    """A file read back from disk does not hold what its reader expects.

    The message names the file and what is wrong with it. ``source`` is the
    file (or file and line); ``problem`` the sentence about it.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.source, self.problem))


class MissingMetricError(CrystallizeError, KeyError):
    """A hypothesis asked for a metric that no replicate recorded."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want prose.
        return str(self.args[0]) if self.args else ""


class PseudoReplicationError(CrystallizeError, ValueError):
    """A hypothesis would test something other than one value per replicate.

    Raised when the tested metric was recorded several times in a replicate
    and the hypothesis was not told how to reduce those values to one
    (``reduce=``): treating them as independent replicates overstates the
    evidence. Also raised when which replicate recorded each value is unknown.
    """


class WorkerStartError(CrystallizeError, RuntimeError):
    """A worker process could not get ready to run replicates.

    Raised in the main process by an execution engine when its workers fail
    before running any replicate: a worker cannot import a module the
    experiment uses, an object of the run fails to load there, or the worker
    process exits while it starts (such as a script without an
    ``if __name__ == "__main__":`` guard under the ``spawn`` start method).
    Every replicate would fail the same way, so the run stops; nothing it
    would have computed is recorded, and ``strategy="resume"`` runs it all.
    The message says which worker, what failed and how to fix it; the
    worker's traceback follows as a note.
    """


class UnreadTreatmentKeyWarning(UserWarning):
    """A treatment set a context key that nothing read during a replicate: it changed nothing.

    The message names the treatment, the key and where it could be read (a
    step or datasource parameter passed explicitly wins over a treatment).
    """


class CacheError(CrystallizeError, OSError):
    """The step cache cannot key, read or store a cacheable step's result.

    The message names the step (or the cache entry) and the fix: usually a
    value that does not pickle, or a cache folder that cannot be written.
    """


class PipelineExecutionError(CrystallizeError, RuntimeError):
    """A step raised while :meth:`Pipeline.run <crystallize.Pipeline.run>` ran it outside an experiment.

    :ivar step_name: the step that raised.
    :ivar original_exception: what it raised (also the ``__cause__``).
    """

    def __init__(self, step_name: str, original_exception: BaseException) -> None:
        super().__init__(f"step {step_name!r} failed: {type(original_exception).__name__}: {original_exception}")
        self.step_name = step_name
        self.original_exception = original_exception

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.step_name, self.original_exception))


class MissingArtifactError(CrystallizeError, FileNotFoundError):
    """An artifact read as an input does not exist, or nothing in its producer writes it."""
