"""The table a :class:`~crystallize.Result` prints: :class:`Summary`.

One row per condition and metric — ``n`` (replicates with a value), mean,
standard deviation and the Student t confidence interval of the mean — and
one line per hypothesis verdict. Plain text, no dependency: ``print(result)``
works in a terminal, a log file and a notebook alike.

The unit is the replicate, as for hypotheses: a metric recorded several times
in one replicate is first reduced to one value per replicate (``reduce``,
``"mean"`` by default; the row says so), failed replicates are gaps and count
in neither ``n`` nor the mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from crystallize._result import ConditionMetrics, Result

__all__ = ["Summary", "MetricRow", "VerdictRow", "summarize"]


@attrs.frozen
class MetricRow:
    """One condition's summary of one metric.

    :ivar n: replicates with a value (numeric or not).
    :ivar replicates: the condition's replicate count.
    :ivar mean: mean over replicates (``None`` when a value is not a number).
    :ivar sd: sample standard deviation (``None`` below two values).
    :ivar ci: Student t interval of the mean at :attr:`Summary.confidence`
        (``None`` below two values).
    :ivar per_replicate: the most values one replicate recorded (``1``
        unless the metric is a series reduced with :attr:`Summary.reduce`).
    """

    condition: str
    metric: str
    n: int
    replicates: int
    mean: float | None
    sd: float | None
    ci: tuple[float, float] | None
    per_replicate: int = 1

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-friendly mapping (``ci`` as ``[low, high]``)."""
        row = attrs.asdict(self)
        row["ci"] = None if self.ci is None else list(self.ci)
        return row


@attrs.frozen
class VerdictRow:
    """One hypothesis's verdict for one treatment, with the keys a table shows.

    :ivar verdict: the whole verdict mapping, as the hypothesis returned it.
    """

    hypothesis: str
    treatment: str
    verdict: Mapping[str, Any]

    def get(self, key: str) -> Any:
        """A key of the verdict, or ``None``."""
        return self.verdict.get(key) if isinstance(self.verdict, Mapping) else None

    @property
    def significant(self) -> bool | None:
        """The verdict's ``significant`` (after correction), when it has one."""
        value = self.get("significant")
        return value if isinstance(value, bool) else None

    def to_dict(self) -> dict[str, Any]:
        """The row as a mapping: hypothesis, treatment and the verdict's keys."""
        verdict = dict(self.verdict) if isinstance(self.verdict, Mapping) else {"value": self.verdict}
        return {"hypothesis": self.hypothesis, "treatment": self.treatment, **verdict}


@attrs.frozen
class Summary:
    """What ``print(result)`` shows: a metrics table, verdicts and failures.

    ``str(summary)`` is the table; :meth:`to_dict` the same as data.

    :ivar title: the first line (experiment, version, status).
    :ivar rows: one :class:`MetricRow` per condition and metric.
    :ivar verdicts: one :class:`VerdictRow` per hypothesis and treatment.
    :ivar failures: one line per failed replicate.
    :ivar confidence: coverage of every row's interval.
    :ivar reduce: how series were reduced to one value per replicate.
    """

    title: str
    rows: tuple[MetricRow, ...]
    verdicts: tuple[VerdictRow, ...] = ()
    failures: tuple[str, ...] = ()
    confidence: float = 0.95
    reduce: str = "mean"

    def row(self, condition: str, metric: str) -> MetricRow:
        """The row of ``condition`` and ``metric``; ``KeyError`` naming what exists otherwise."""
        for row in self.rows:
            if row.condition == condition and row.metric == metric:
                return row
        raise KeyError(f"no row for condition {condition!r} and metric {metric!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping of the whole summary."""
        return {
            "title": self.title,
            "confidence": self.confidence,
            "reduce": self.reduce,
            "metrics": [row.to_dict() for row in self.rows],
            "hypotheses": [verdict.to_dict() for verdict in self.verdicts],
            "failures": list(self.failures),
        }

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        """The text of the summary, line by line."""
        out = [self.title]
        if self.rows:
            level = f"{self.confidence * 100:g}% CI"
            table = [("condition", "metric", "n", "mean", "sd", level)]
            for row in self.rows:
                metric = (
                    row.metric if row.per_replicate == 1 else f"{row.metric} ({self.reduce} of {row.per_replicate})"
                )
                n = str(row.n) if row.n == row.replicates else f"{row.n}/{row.replicates}"
                ci = "-" if row.ci is None else f"[{fmt(row.ci[0])}, {fmt(row.ci[1])}]"
                table.append((row.condition, metric, n, fmt(row.mean), fmt(row.sd), ci))
            out.extend(_aligned(table, right={2, 3, 4}))
        else:
            out.append("no metrics recorded")
        if self.verdicts:
            out.append("")
            out.append("hypotheses")
            for verdict in self.verdicts:
                out.append("  " + _verdict_line(verdict))
        if self.failures:
            out.append("")
            out.append(f"failed replicates ({len(self.failures)})")
            shown = self.failures[:20]
            out.extend(f"  {line}" for line in shown)
            if len(self.failures) > len(shown):
                out.append(f"  ... and {len(self.failures) - len(shown)} more (result.errors has them all)")
        return out


def fmt(value: Any) -> str:
    """A number in four significant digits (``-`` for none), anything else as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        if isinstance(value, float) and math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == 0:
            return "0"
        if isinstance(value, int) and abs(value) < 10**6:
            return str(value)
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _aligned(table: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def _verdict_line(row: VerdictRow) -> str:
    get = row.get
    head = f"{row.hypothesis}: {row.treatment} vs baseline"
    if get("p_value") is None and get("mean_difference") is None:
        shown = ", ".join(f"{k}={fmt(v)}" for k, v in (row.verdict.items() if isinstance(row.verdict, Mapping) else ()))
        return f"{head}  {shown or fmt(row.verdict)}"
    parts = [head]
    if get("mean_difference") is not None:
        diff = get("mean_difference")
        sign = "+" if isinstance(diff, (int, float)) and diff >= 0 else ""
        parts.append(f"diff {sign}{fmt(diff)}")
    ci = get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        level = get("ci_level")
        label = f"{level * 100:g}% CI" if isinstance(level, (int, float)) else "CI"
        parts.append(f"{label} [{fmt(ci[0])}, {fmt(ci[1])}]")
    if get("p_value") is not None:
        p = f"p={fmt(get('p_value'))}"
        adjusted = get("adjusted_p_value")
        if get("correction") and adjusted is not None:
            p += f" ({get('correction')}: {fmt(adjusted)})"
        parts.append(p)
    if get("test"):
        parts.append(str(get("test")) + (" paired" if get("paired") else ""))
    significant = row.significant
    if significant is not None:
        parts.append("SIGNIFICANT" if significant else "not significant")
    return "  ".join(parts)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _metric_row(
    condition: str, name: str, metrics: ConditionMetrics, reduce: Callable[[Sequence[Any]], Any], confidence: float
) -> MetricRow:
    from crystallize._result import Series
    from crystallize.stats import mean_interval

    entries = metrics.by_replicate.get(name)
    per_replicate = 1
    if entries is None:  # no split by replicate (an old results.json whose counts do not divide)
        values = list(metrics.metrics.get(name, ()))
        replicates = metrics.replicates or len(values)
        succeeded = _successful_replicates(metrics.metrics)
        if succeeded and len(values) % succeeded == 0 and len(values) > succeeded:
            per_replicate = len(values) // succeeded
            values = [reduce(Series(values[i * per_replicate : (i + 1) * per_replicate])) for i in range(succeeded)]
    else:
        values = []
        for entry in entries:
            if entry is None:
                continue
            if isinstance(entry, Series):
                per_replicate = max(per_replicate, len(entry))
                entry = reduce(entry)
            values.append(entry)
        replicates = len(entries)
    numbers = [_number(v) for v in values]
    n = len(values)
    if not values or any(v is None or math.isnan(v) for v in numbers):
        return MetricRow(condition, name, n, replicates, None, None, None, per_replicate)
    clean: list[float] = [v for v in numbers if v is not None]
    centre = math.fsum(clean) / n
    if n < 2:
        return MetricRow(condition, name, n, replicates, centre, None, None, per_replicate)
    sd = math.sqrt(math.fsum((v - centre) ** 2 for v in clean) / (n - 1))
    return MetricRow(condition, name, n, replicates, centre, sd, mean_interval(clean, confidence), per_replicate)


def _successful_replicates(flat: Mapping[str, Sequence[Any]]) -> int | None:
    """How many replicates recorded a condition's flat lists, when they say so unambiguously.

    crystallize-ml 0.27 kept no split by replicate and still stored the
    values of a condition with failed replicates: with 3 of 4 replicates
    recording ``accuracy`` once and ``loss`` three times, the lists hold 3
    and 9 values. The shortest list's length, when it divides every other
    list's, is the count of replicates that recorded them (which replicates
    they were is unknown).
    """
    counts = [len(values) for values in flat.values() if values]
    if not counts:
        return None
    fewest = min(counts)
    return fewest if all(count % fewest == 0 for count in counts) else None


def summarize(result: Result, *, confidence: float = 0.95, reduce: str | Callable[..., Any] = "mean") -> Summary:
    """Build the :class:`Summary` of ``result`` (see :meth:`Result.summary`)."""
    from crystallize._hypothesis import REDUCERS

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    if callable(reduce):
        reducer, reduce_name = reduce, getattr(reduce, "__name__", "reduce")
    elif reduce in REDUCERS:
        reducer, reduce_name = REDUCERS[reduce], reduce
    else:
        raise ValueError(f"reduce must be one of {', '.join(map(repr, REDUCERS))} or a function, got {reduce!r}")
    conditions = {"baseline": result.metrics.baseline, **result.metrics.treatments}
    rows = []
    for condition, metrics in conditions.items():
        names = list(dict.fromkeys([*metrics.metrics, *metrics.by_replicate]))
        rows.extend(_metric_row(condition, name, metrics, reducer, confidence) for name in names)
    verdicts = tuple(
        VerdictRow(hypothesis.name, treatment, verdict)
        for hypothesis in result.metrics.hypotheses
        for treatment, verdict in hypothesis.results.items()
    )
    failures = tuple(
        f"{err.condition} replicate {err.replicate}: {err.type_name}: {_first_line(err.message)}"
        + (f" (in {err.step})" if err.step else "")
        for err in result.error_list()
    )
    return Summary(_title(result, conditions), tuple(rows), verdicts, failures, confidence, reduce_name)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 160 else line[:157] + "..."


def _title(result: Result, conditions: Mapping[str, ConditionMetrics]) -> str:
    run = result.run
    replicates = max((m.replicates for m in conditions.values()), default=0)
    what = "result"
    if run is not None:
        what = f"{run.key} v{run.version}" if run.version is not None else run.key
        what += f" ({run.status})"
    return f"{what}: {len(conditions)} condition(s), {replicates} replicate(s)"
