"""Hook specifications: the contract between the core and its plugins.

Read this module top to bottom to learn an experiment's lifecycle. Every
function below is a hook a plugin may implement with
:data:`crystallize.hookimpl`; an implementation may accept any subset of the
arguments listed (pluggy passes them by name). The core calls a hook only when
some active plugin implements it, so an unused hook costs nothing.

Where a hook runs matters when replicates run in other processes or on a
cluster (``ParallelExecution(executor_type="process")``, ``crystallize-dask``):

- hooks marked *runs where the replicate runs* are called in the worker, on a
  copy of your plugin object unpickled there; state they change stays in the
  worker.
- every other hook is called in the main process, in the thread that called
  :meth:`Experiment.run <crystallize.Experiment.run>`.

Lifecycle of :meth:`Experiment.run`::

    validate_experiment
    open_store                  storage plugins attach run.store
    on_resume                   strategy="resume" only
    store.prepare_resume        strategy="resume", on a store continuing a run
    before_run
    execute_replicates          an executor runs every pending unit;
        on_worker_start             once per process that runs units, before its first
        wrap_replicate              per unit, where the replicate runs, around:
            before_replicate
            before_step                 ...once per step
            on_artifact_write           ...once per artifact committed (write, open, write_file)
            after_step                  ...once per step that returned
            on_replicate_error          ...if the replicate failed
        on_replicate_outcome        in the main process, as each unit finishes (after store.record_replicate)
        on_condition_complete       in the main process, once per condition (after store.complete_condition)
    after_run                   always, also after failures
    store.close                 always, last

:meth:`ExperimentGraph.run <crystallize.ExperimentGraph.run>` calls
``before_graph_run``, then for each experiment ``stale_reason`` (when
resuming) and the lifecycle above, then ``after_graph_run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crystallize._dispatch import hookspec

if TYPE_CHECKING:
    from crystallize._artifact import Artifact
    from crystallize._context import FrozenContext
    from crystallize._datasource import DataSource
    from crystallize._execution.batch import ReplicateBatch
    from crystallize._experiment import Experiment
    from crystallize._graph import ExperimentGraph
    from crystallize._records import ArtifactRecord, CompletedWork, ReplicateError, ReplicateOutcome, Run
    from crystallize._result import Result
    from crystallize._steps import PipelineStep
    from crystallize._store import RunStore


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


@hookspec
def validate_experiment(experiment: Experiment) -> None:
    """Check that ``experiment`` is configured in a way this plugin can serve.

    Called by :meth:`Experiment.validate` (and so before every run), after the
    core's own checks, before anything is written. Raise
    :class:`~crystallize.errors.ConfigurationError` (or ``ValueError``) with a
    message that names the offending value and the fix. A storage plugin
    rejects condition names it reserves; an executor checks that everything it
    must ship to workers pickles.

    :param experiment: the experiment about to run.
    """


# ---------------------------------------------------------------------------
# Run set-up
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def open_store(experiment: Experiment, run: Run) -> RunStore | None:
    """Provide the storage for this run: one :class:`~crystallize.plugin.RunStore` object.

    Called once per run, before ``on_resume`` and ``before_run``. A storage
    plugin allocates the run's location (a new version, or with
    ``run.strategy == "resume"`` the latest existing one) and returns its
    store; the core sets it as ``run.store`` and from then on calls the
    store's write side itself, in a fixed order (see
    :class:`~crystallize.plugin.RunStore`), ending with ``store.close``.
    Return ``None`` when this plugin does not store this experiment.

    Stops at first non-None result.

    :param experiment: the experiment about to run.
    :param run: the run being prepared; ``run.store`` is still ``None``.
    """


@hookspec(firstresult=True)
def locate_run(experiment: Experiment, version: int | None) -> RunStore | None:
    """Open an existing run of ``experiment`` for reading.

    Used to inspect earlier runs without starting one: the graph asks whether
    outputs exist, the metadata plugin compares recorded lineage, artifact
    datasources read the producer's ``metadata.json``. Return ``None`` if this
    plugin does not store ``experiment`` or the run does not exist.

    Stops at first non-None result.

    :param experiment: the experiment whose run to open.
    :param version: the version to open; ``None`` for the latest.
    """


@hookspec
def on_resume(experiment: Experiment, run: Run) -> CompletedWork | None:
    """Report work of an earlier run that does not need to run again.

    Called only for ``strategy="resume"``, after ``open_store``, before
    ``before_run``. Return a :class:`~crystallize.plugin.CompletedWork` naming
    complete conditions with their metrics and, optionally, finished
    replicates inside unfinished conditions. The core merges every plugin's
    report, skips that work, and puts the merged report on ``run.completed``.
    Raise :class:`~crystallize.errors.ResumeError` when the earlier run cannot
    be continued safely (for example, its pipeline changed).

    :param experiment: the experiment being resumed.
    :param run: the run; ``run.store`` is the store ``open_store`` returned.
    """


@hookspec
def before_run(experiment: Experiment, run: Run) -> None:
    """Called once per run, before any replicate starts.

    ``run`` is complete at this point: its store is open and, when resuming,
    ``run.completed`` says what will be skipped. Record facts other plugins
    should see in ``run.facts``.

    :param experiment: the experiment about to run.
    :param run: this execution.
    """


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def execute_replicates(experiment: Experiment, run: Run, batch: ReplicateBatch) -> bool | None:
    """Run every pending (condition, replicate) of ``batch``.

    This is the execution-engine hook. The built-in ``SerialExecution`` (the
    default, ``trylast``) and ``ParallelExecution`` implement it, and so does
    ``crystallize_dask.DaskExecution``. An implementation runs each unit in
    ``batch.units`` — in this process with ``batch.run_here(condition,
    replicate)``, or elsewhere with :func:`crystallize.plugin.run_unit`
    and ``batch.payload()`` — and passes every outcome to
    ``batch.report(outcome)`` from the calling thread, as soon as it arrives.
    Return ``True`` once every unit was reported.

    Stops at first non-None result.

    :param experiment: the experiment being run.
    :param run: this execution.
    :param batch: the units to run and the means to run them.
    """


@hookspec
def on_worker_start(experiment: Experiment, run: Run) -> None:
    """Prepare a process to run this run's replicates, once, before its first one.

    Runs where the replicates run: once in each worker process (or Dask
    worker) that runs units of this run, and once in the main process when
    replicates run there (serial or thread execution), before the first of
    them. Set up what every replicate in the process shares: a logger, a
    tracer, an isolated random generator for a library's own threads.

    If it raises, no replicate runs in that process: each unit sent there
    fails with this error, recorded against this plugin
    (``ReplicateError.plugin``, ``hook="on_worker_start"``), and the run
    carries on; ``strategy="resume"`` reruns those units.

    :param experiment: the experiment being run (the worker's copy).
    :param run: this execution (the worker's copy).
    """


# ---------------------------------------------------------------------------
# Inside a replicate (runs where the replicate runs)
# ---------------------------------------------------------------------------


@hookspec
def wrap_replicate(experiment: Experiment, run: Run, ctx: FrozenContext) -> None:
    """Wrap one (condition, replicate): code before and after it, where it runs.

    Implement it as a wrapper that yields exactly once; the replicate
    (``before_replicate``, the datasource, every step) runs at the ``yield``::

        @hookimpl(wrapper=True)
        def wrap_replicate(self, ctx):
            with tracer.start_as_current_span(f"{ctx['condition']}/{ctx['replicate']}"):
                return (yield)

    Runs where the replicate runs, after the treatment applied (so ``ctx``
    holds ``replicate``, ``condition`` and the treatment's keys). For timing,
    tracing spans and context managers. If the replicate fails, its exception
    is raised at the ``yield``: let it propagate — the core records the
    failure (and calls ``on_replicate_error``) either way. An exception the
    wrapper raises itself fails the replicate and is recorded against this
    plugin. Only ``wrapper=True`` implementations are accepted. Costs nothing
    when no plugin implements it.

    :param experiment: the experiment being run.
    :param run: this execution.
    :param ctx: the replicate's context.
    """


@hookspec
def before_replicate(experiment: Experiment, run: Run, ctx: FrozenContext) -> None:
    """Called before each (condition, replicate), after the treatment applied.

    Runs where the replicate runs. ``ctx`` already holds ``replicate``,
    ``condition`` and the treatment's keys; add new keys here (the seeding
    plugin adds ``seed_used``).

    :param experiment: the experiment being run.
    :param run: this execution.
    :param ctx: the replicate's context.
    """


@hookspec
def before_step(experiment: Experiment, run: Run, step: PipelineStep, ctx: FrozenContext) -> None:
    """Called before each step of each replicate.

    Runs where the replicate runs. This is the hottest path of the framework;
    keep implementations cheap. One plugin object serves every run in its
    process: keep per-run state keyed by ``run.run_id``. An exception raised
    here fails the replicate and is recorded against this plugin
    (``ReplicateError.plugin``), not against the step.

    :param experiment: the experiment being run.
    :param run: this execution.
    :param step: the step about to be called.
    :param ctx: the replicate's context.
    """


@hookspec
def after_step(experiment: Experiment, run: Run, step: PipelineStep, data: Any, ctx: FrozenContext) -> None:
    """Called after each step of each replicate returned.

    Runs where the replicate runs. Not called for a step that raised (see
    ``on_replicate_error``). An exception raised here is recorded against
    this plugin, like one raised by ``before_step``.

    :param experiment: the experiment being run.
    :param run: this execution.
    :param step: the step that just returned.
    :param data: what the step returned.
    :param ctx: the replicate's context.
    """


@hookspec
def on_artifact_write(
    experiment: Experiment,
    run: Run,
    artifact: Artifact,
    record: ArtifactRecord,
    ctx: FrozenContext,
) -> None:
    """Called after the run's store committed an artifact a step wrote.

    Runs where the replicate runs, inside the step's ``artifact.write(...)``
    once ``run.store.write_artifact`` returned (or when the stream of
    ``artifact.open("wb")`` is closed, or inside ``artifact.write_file(...)``). Storage is not done here —
    the bytes go through the store object — this hook tells other plugins an
    artifact now exists: lineage, mirroring to another tracker, indexing.
    ``record`` says where it went (``record.step`` is the writing step's
    name, ``record.path`` its place in the run, ``record.digest`` its
    checksum tagged with the store's algorithm, such as ``"blake3:9f2c..."``).
    An exception raised here fails the replicate and is recorded against
    this plugin.

    :param experiment: the experiment being run.
    :param run: this execution.
    :param artifact: the declared :class:`~crystallize.Artifact`.
    :param record: where the store committed it.
    :param ctx: the replicate's context (``ctx["condition"]``, ``ctx["replicate"]``).
    """


@hookspec
def on_replicate_error(
    experiment: Experiment,
    run: Run,
    ctx: FrozenContext,
    step: PipelineStep | None,
    error: BaseException,
) -> None:
    """Called when a replicate fails, with the live exception.

    Runs where the replicate runs, right after the datasource, the treatment,
    a step or a replicate-level hook raised — any exception, including
    ``SystemExit`` and ``GeneratorExit``; only ``KeyboardInterrupt`` stops
    the run instead. The core then records the failure in
    ``result.errors`` and carries on with the other replicates; the
    exception is not re-raised. Use this hook to log, notify or open a
    debugger. ``str(error)`` may itself raise for hostile exceptions: the
    core's record does not (``ReplicateError.capture``).

    :param experiment: the experiment being run.
    :param run: this execution.
    :param ctx: the failed replicate's context.
    :param step: the step that raised, or ``None`` if it was not a step.
    :param error: the exception.
    """


# ---------------------------------------------------------------------------
# Progress and results (main process)
# ---------------------------------------------------------------------------


@hookspec
def on_replicate_outcome(experiment: Experiment, run: Run, outcome: ReplicateOutcome) -> None:
    """Called in the main process as each (condition, replicate) finishes.

    Called for failed replicates too (``outcome.error`` is set), whichever
    executor ran them and in completion order, which is not replicate order
    under parallel executors. Progress displays and per-replicate journals
    implement this.

    An implementation that cannot accept a successful outcome (storage that
    cannot record its metrics) raises
    :class:`~crystallize.errors.ReplicateRejected`: the core then records the
    replicate as failed with that message, and the run carries on. Plugins
    called after the one that raised do not see that outcome.

    :param experiment: the experiment being run.
    :param run: this execution.
    :param outcome: what the replicate produced.
    """


@hookspec
def on_condition_complete(
    experiment: Experiment,
    run: Run,
    condition: str,
    metrics: Mapping[str, list[Any]],
    errors: Mapping[int, ReplicateError],
) -> None:
    """Called once every replicate of ``condition`` has finished.

    "Finished" includes failures: ``errors`` maps each failed replicate to its
    :class:`~crystallize.plugin.ReplicateError` and is empty when every replicate
    succeeded — only then has the run's store completed the condition
    (``store.complete_condition``, called just before). Not called for
    conditions that resume skipped entirely.

    :param experiment: the experiment being run.
    :param run: this execution.
    :param condition: the condition's name.
    :param metrics: ``{metric: [values]}`` over the condition's successful
        replicates, in replicate order (resumed replicates included).
    :param errors: ``{replicate: error}`` of the failed replicates.
    """


@hookspec
def after_run(experiment: Experiment, run: Run, result: Result) -> None:
    """Called once per run, after all work — also when the run failed.

    ``run.status`` tells how it ended: ``"completed"``, ``"failed"`` (some
    replicates failed, or the run raised) or ``"interrupted"`` (Ctrl-C). On a
    raised error or interruption, ``result`` holds what finished before, and
    the exception propagates after this hook.

    :param experiment: the experiment that ran.
    :param run: this execution.
    :param result: the result returned to the caller.
    """


# ---------------------------------------------------------------------------
# Chaining experiments
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def artifact_datasource(
    experiment: Experiment,
    step: str | None,
    name: str,
    require_metadata: bool,
    version: int | None,
) -> DataSource | None:
    """Build a datasource that reads ``experiment``'s artifacts.

    Implements :meth:`Experiment.artifact_datasource`. Called on the
    *producer's* plugins; the storage plugin that stores ``experiment``
    returns a :class:`~crystallize.DataSource` yielding, per replicate, the
    file the producer wrote for that replicate and condition. The datasource
    reports the producer as its ``upstream``.

    Stops at first non-None result.

    :param experiment: the producer experiment.
    :param step: the producing step's name; ``None`` when the caller does not
        know it (an :class:`~crystallize.Artifact` declared in ``outputs`` but
        written by name, ``ctx.artifacts.add(name, ...)``): the datasource then
        reads the one step that wrote ``name`` in the producer's run.
    :param name: the artifact's name.
    :param require_metadata: raise if the producer's run has no metadata.
    :param version: the producer version to read; ``None`` for the latest.
    """


@hookspec
def stale_reason(experiment: Experiment) -> str | None:
    """Say why ``experiment``'s latest run can no longer be resumed as is.

    Called by ``ExperimentGraph.run(strategy="resume")`` before each
    experiment. Return a short reason (``"its code or parameters changed
    since v2 ran: step 1 'Train': code changed (...)"``, ``"upstream 'train'
    was rerun: v2 -> v3"``, ``"outputs missing: model.bin"``) to make the
    graph rerun it, or ``None`` when this plugin sees no reason. The graph
    adds its own (an upstream experiment reran in this call), logs the
    reasons, keeps them in ``graph.reasons`` and records them with the new
    run (``run.facts[RERUN_FACT]``).

    :param experiment: the experiment about to be resumed.
    """


# ---------------------------------------------------------------------------
# Graphs of experiments (main process)
# ---------------------------------------------------------------------------


@hookspec
def before_graph_run(graph: ExperimentGraph, strategy: str) -> None:
    """Called once when :meth:`ExperimentGraph.run` starts, before its first experiment.

    Called on every plugin active for any experiment of the graph, each
    plugin object once. A tracker opens a parent run here, a progress display
    learns how many experiments follow (``graph.order``).

    :param graph: the graph about to run.
    :param strategy: ``"rerun"`` or ``"resume"``.
    """


@hookspec
def after_graph_run(graph: ExperimentGraph, results: Mapping[str, Result]) -> None:
    """Called once when :meth:`ExperimentGraph.run` ends — also when an experiment raised.

    Called on every plugin active for any experiment of the graph, each
    plugin object once, and every implementation runs even if one raises.
    When an experiment raised, ``results`` holds those that finished before
    it and the exception propagates after this hook.

    :param graph: the graph that ran; ``graph.reasons`` says why experiments reran.
    :param results: ``{experiment name: Result}`` in run order.
    """
