"""What :meth:`Experiment.run` returns: :class:`Result`.

The shape follows crystallize-ml, so existing analysis code keeps working::

    result.metrics.baseline.metrics["accuracy"]         # values, flattened over replicates
    result.metrics.treatments["fast"].metrics["accuracy"]
    result.metrics.hypotheses                           # [HypothesisResult]
    result.errors["fast"][3]                             # ReplicateError (with .traceback)

and adds the view statistics need, one entry per replicate::

    result.metrics.baseline.by_replicate["accuracy"]    # [0.91, None, Series([...]), ...]
    result.metrics.baseline.seeds                       # [seed of replicate 0, ...]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import attrs

from crystallize._hypothesis import HypothesisResult
from crystallize._records import ReplicateColumns

if TYPE_CHECKING:
    from pathlib import Path

    from crystallize._records import ReplicateError, Run
    from crystallize._summary import Summary

__all__ = ["Result", "ExperimentMetrics", "ConditionMetrics", "TreatmentMetrics", "Series", "ReplicateErrors"]


class Series(list):  # type: ignore[type-arg]
    """The values one replicate recorded for a metric it recorded more than once, in order.

    A plain ``list`` in every respect; its type tells "recorded three times"
    (``Series([1, 2, 3])``) from "recorded once, and the value is a list"
    (``[1, 2, 3]``) in :attr:`ConditionMetrics.by_replicate`.
    """

    __slots__ = ()
    __init__ = list.__init__  # built once per (replicate, metric): the inherited slot is found faster

    def __repr__(self) -> str:
        return f"Series({list.__repr__(self)})"


@attrs.define
class ConditionMetrics:
    """One condition's metrics, flattened (crystallize-ml's shape) and per replicate.

    A replicate resumed from an earlier run appears exactly as if it had run
    in this one.

    :ivar metrics: ``{name: values}``: every value recorded for the metric,
        replicate after replicate (in replicate order, each replicate's
        values in the order recorded). Failed replicates, and replicates that
        did not record the metric, contribute nothing — so a position in this
        list is a replicate only when every replicate recorded the metric
        exactly once. Use :attr:`by_replicate` to know which replicate a
        value came from.
    :ivar by_replicate: ``{name: entries}``, one entry per replicate
        ``0 .. n-1``: the value when the replicate recorded the metric once,
        a :class:`Series` of its values when it recorded it several times,
        and ``None`` — a gap — when it has no value (it failed, never ran, or
        did not record this metric; :attr:`missing` tells the first two apart).
    :ivar seeds: ``seeds[r]`` is the seed replicate ``r`` ran with
        (``ctx["seed_used"]``, also for a replicate that failed), ``None``
        when no seeding plugin set one or it is unknown. Baseline and
        treatment replicates with equal seeds are paired. ``==`` compares
        their number, not their values: two conditions are equal when they
        recorded the same metrics over as many replicates, whatever seeds
        they drew with (a run without ``SeedPlugin(seed=...)`` draws a new
        base every time).
    :ivar missing: the replicates without a successful outcome: failed
        (see ``Result.errors``) or never run (the run stopped first).
    """

    metrics: dict[str, list[Any]] = attrs.field(factory=dict)
    by_replicate: dict[str, list[Any]] = attrs.field(factory=dict)
    seeds: list[int | None] = attrs.field(factory=list, eq=len)
    missing: tuple[int, ...] = ()

    @property
    def replicates(self) -> int:
        """The number of replicates ``n`` (the length of every :attr:`by_replicate` list)."""
        return len(self.seeds)

    @classmethod
    def from_replicates(
        cls,
        replicates: int,
        values: Mapping[int, Mapping[str, Sequence[Any]]],
        seeds: Mapping[int, int | None] | None = None,
        missing: Iterable[int] = (),
    ) -> ConditionMetrics:
        """Build from each replicate's recorded metrics.

        :param replicates: the replicate count ``n``.
        :param values: ``{replicate: {metric: [values recorded]}}``; replicates
            that recorded nothing may be left out.
        :param seeds: ``{replicate: seed}`` where known.
        :param missing: replicates that failed or never ran.
        """
        known = seeds or {}
        if type(values) is ReplicateColumns and values.replicates == replicates:  # one value each: no loop
            return cls(
                metrics={name: list(column) for name, column in values.columns.items()},
                by_replicate={name: list(column) for name, column in values.columns.items()},
                seeds=[known.get(r) for r in range(replicates)] if known else [None] * replicates,
                missing=tuple(sorted(r for r in set(missing) if 0 <= r < replicates)),
            )
        flat: dict[str, list[Any]] = {}
        columns: dict[str, list[Any]] = {}
        for replicate in sorted(values):  # once per run: kept to a few dict and list operations per replicate
            if not 0 <= replicate < replicates:
                continue
            for name, recorded in values[replicate].items():
                values_of = flat.get(name)
                if values_of is None:
                    values_of = flat[name] = []
                    columns[name] = [None] * replicates
                values_of.extend(recorded)
                n = len(recorded)
                columns[name][replicate] = recorded[0] if n == 1 else (Series(recorded) if n else None)
        return cls(
            metrics=flat,
            by_replicate=columns,
            seeds=[known.get(r) for r in range(replicates)] if known else [None] * replicates,
            missing=tuple(sorted(r for r in set(missing) if 0 <= r < replicates)),
        )

    @classmethod
    def from_flat(
        cls, replicates: int, metrics: Mapping[str, Sequence[Any]], seeds: Mapping[int, int | None] | None = None
    ) -> ConditionMetrics:
        """Build from flattened metrics of a condition whose every replicate succeeded.

        For results that kept no split by replicate (crystallize-ml 0.27's
        ``results.json``): a metric with ``n`` values has one per replicate;
        with ``k * n`` values, ``k`` per replicate in replicate order (as
        0.27 wrote them). A metric whose count is not a multiple of ``n`` has
        no ``by_replicate`` entry: which replicate recorded what is unknown.
        """
        split: dict[int, dict[str, list[Any]]] = {}
        unknown = []
        for name, recorded in metrics.items():
            if replicates and recorded and len(recorded) % replicates == 0:
                k = len(recorded) // replicates
                for r in range(replicates):
                    split.setdefault(r, {})[name] = list(recorded[r * k : (r + 1) * k])
            else:
                unknown.append(name)
        built = cls.from_replicates(replicates, split, seeds)
        built.metrics = {name: list(recorded) for name, recorded in metrics.items()}
        for name in unknown:
            built.by_replicate.pop(name, None)
        return built


TreatmentMetrics = ConditionMetrics  # crystallize-ml's name


@attrs.define
class ExperimentMetrics:
    """Metrics of every condition and the verified hypotheses."""

    baseline: ConditionMetrics
    treatments: dict[str, ConditionMetrics]
    hypotheses: list[HypothesisResult] = attrs.field(factory=list)

    def to_df(self) -> Any:
        """crystallize-ml's table of verdicts as a ``pandas.DataFrame``: one row per hypothesis and
        treatment, with ``condition``, ``hypothesis`` and the verdict's keys (needs pandas)."""
        from crystallize._summary import VerdictRow

        try:
            import pandas as pd
        except ImportError:
            raise ImportError("pandas is required for ExperimentMetrics.to_df(): pip install pandas") from None
        rows = []
        for hypothesis in self.hypotheses:
            for treatment, verdict in hypothesis.results.items():
                row = VerdictRow(hypothesis.name, treatment, verdict).to_dict()
                rows.append({"condition": row.pop("treatment"), **row})
        return pd.DataFrame(rows)

    def condition(self, name: str) -> ConditionMetrics:
        """Metrics of the condition ``name`` (``"baseline"`` or a treatment)."""
        from crystallize._context import BASELINE

        if name == BASELINE:
            return self.baseline
        return self.treatments[name]


class ReplicateErrors(dict):  # type: ignore[type-arg]
    """``{condition: {replicate: ReplicateError}}``, which also answers crystallize-ml's flat keys.

    ``errors["baseline"][3]`` is the :class:`~crystallize.plugin.ReplicateError`
    of replicate 3 of the baseline. crystallize-ml 0.27 keyed failures as
    ``"<condition>_rep_<replicate>"`` and stored the exception itself: those
    keys still work in ``errors["baseline_rep_3"]``, ``"baseline_rep_3" in
    errors`` and ``errors.get("baseline_rep_3")``, and give the original
    exception (the ``ReplicateError`` when the exception could not be carried
    back from a worker process). Iteration, ``len`` and ``keys()`` see
    conditions only.
    """

    __slots__ = ()

    def _flat(self, key: object) -> Any:
        if isinstance(key, str) and "_rep_" in key:
            condition, _, replicate = key.rpartition("_rep_")
            if replicate.isdigit() and condition in self:
                error = dict.__getitem__(self, condition).get(int(replicate))
                if error is not None:
                    exception = getattr(error, "exception", None)
                    return error if exception is None else exception
        return None

    def __missing__(self, key: object) -> Any:
        found = self._flat(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._flat(key) is not None

    def get(self, key: Any, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        found = self._flat(key)
        return default if found is None else found


@attrs.define
class Result:
    """The outcome of one run.

    :ivar metrics: see :class:`ExperimentMetrics`.
    :ivar errors: ``{condition: {replicate: ReplicateError}}`` for every
        replicate that failed; empty when all succeeded (a
        ``ReplicateErrors``, which also answers crystallize-ml's
        ``"<condition>_rep_<r>"`` keys).
    :ivar artifacts: records of the artifacts written by this run.
    :ivar run: the :class:`~crystallize.plugin.Run` (version, location, status).
    :ivar provenance: ``pipeline_signature`` (each step's canonical
        description, as JSON text), ``replicates``, ``seeds`` (``{condition: [seed per
        replicate]}``), ``experiment_id`` and ``version``; crystallize-ml's
        per-step ``ctx_changes`` are recorded only by
        :meth:`Pipeline.run <crystallize.Pipeline.run>` (empty here).
    """

    metrics: ExperimentMetrics
    errors: dict[str, Any] = attrs.field(factory=dict)
    artifacts: Any = attrs.field(factory=list)
    run: Run | None = None
    provenance: dict[str, Any] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """``True`` when no replicate failed."""
        return not self.errors

    def get_hypothesis(self, name: str) -> HypothesisResult | None:
        """The verified hypothesis called ``name``, if any."""
        return next((h for h in self.metrics.hypotheses if h.name == name), None)

    def error_list(self) -> list[ReplicateError]:
        """Every failure, ordered by condition then replicate."""
        return [err for reps in self.errors.values() for _, err in sorted(reps.items())]

    def get_artifact(self, name: str) -> Any:
        """Where this run wrote the artifact ``name``: ``{condition: {replicate: path}}``.

        Empty when it was not written. (On a result built from
        crystallize-ml's ``{name: value}`` artifacts, the value stored under ``name``.)
        """
        if isinstance(self.artifacts, Mapping):
            return self.artifacts.get(name)
        from pathlib import Path

        base = None if self.run is None or self.run.location is None else Path(self.run.location)
        found: dict[str, dict[int, Any]] = {}
        for record in self.artifacts:
            if record.name == name:
                where = record.path if base is None else base / record.path
                found.setdefault(record.condition, {})[record.replicate] = where
        return {c: dict(sorted(reps.items())) for c, reps in found.items()}

    def print_tree(self, fmt: str = "treatment > replicate > step", file: Any = None) -> None:
        """Print the per-step provenance as an indented tree (crystallize-ml's view).

        The tree shows ``provenance["ctx_changes"]`` — the keys each step read
        and wrote and the metrics it recorded — which :meth:`Pipeline.run
        <crystallize.Pipeline.run>` and crystallize-ml's results hold; a
        result of :meth:`Experiment.run <crystallize.Experiment.run>` has none,
        and prints its conditions' metrics instead.

        :param fmt: the grouping, from ``"treatment"``, ``"replicate"``,
            ``"step"`` and ``"action"`` joined by ``" > "`` (``"action"`` last).
        :param file: where to print (standard output by default).
        """
        from crystallize._provenance_tree import print_tree

        print_tree(self, fmt, file)

    def summary(self, *, confidence: float = 0.95, reduce: str | Callable[..., Any] = "mean") -> Summary:
        """The table ``print(result)`` shows, as a :class:`~crystallize.Summary`.

        One row per condition and metric: ``n`` (replicates with a value),
        mean, standard deviation and the Student t interval of the mean; then
        each hypothesis's verdict per treatment, then the failed replicates.
        ``str(summary)`` is the text; ``summary.rows``, ``summary.verdicts``
        and ``summary.to_dict()`` the same as data.

        :param confidence: coverage of the intervals (``0.95``).
        :param reduce: how a metric recorded several times in one replicate
            becomes one value per replicate (``"mean"``, ``"last"``,
            ``"median"``, ... as for hypotheses, or a function of the list).
        """
        from crystallize._summary import summarize

        return summarize(self, confidence=confidence, reduce=reduce)

    def print_table(self, file: IO[str] | None = None, **options: Any) -> None:
        """Print :meth:`summary` (to ``file``, standard output by default); ``options`` go to :meth:`summary`."""
        print(self.summary(**options), file=file)

    def __str__(self) -> str:
        return str(self.summary())

    def to_records(self) -> list[dict[str, Any]]:
        """One record per recorded value: ``experiment``, ``version``, ``condition``,
        ``replicate``, ``metric``, ``index`` (position within the replicate), ``value``, ``seed``.

        The tidy shape a DataFrame or a CSV file wants; records of several
        versions (:func:`crystallize_artifacts.load_results`) concatenate.
        """
        from crystallize._export import to_records

        return to_records(self)

    def to_dict(self) -> dict[str, Any]:
        """The whole result as JSON-friendly data: identity, metrics (crystallize-ml's shape
        and per condition), verdicts, failures with tracebacks, artifacts and the summary table."""
        from crystallize._export import to_dict

        return to_dict(self)

    def to_frame(self) -> Any:
        """:meth:`to_records` as a ``pandas.DataFrame``; ``ImportError`` when pandas is not installed."""
        from crystallize._export import to_frame

        return to_frame(self)

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text; with ``path``, also written there (atomically).

        Values JSON cannot hold (a NumPy number, an object a step recorded)
        are written as their ``str``.
        """
        import json

        text = json.dumps(self.to_dict(), indent=indent, default=str)
        if path is not None:
            import os
            import tempfile
            from pathlib import Path as _Path

            target = _Path(path)
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    file.write(text)
                os.replace(temp, target)
            except BaseException:
                if os.path.exists(temp):
                    os.unlink(temp)
                raise
        return text

    def to_parquet(self, path: str | Path) -> None:
        """Write :meth:`to_frame` to a Parquet file (needs pandas and pyarrow)."""
        try:
            frame = self.to_frame()
        except ImportError as exc:  # the message names what to install
            raise ImportError(
                f"pandas is required for Result.to_parquet(): pip install pandas pyarrow ({exc})"
            ) from exc
        frame.to_parquet(path)
