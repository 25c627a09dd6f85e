"""Collecting measurements per workload, framework and round, and summarising them.

Every number is summarised as its median with min-max over rounds. A
"theirs / ours" ratio is computed per round from the two measurements taken
back to back in that round (paired), then summarised the same way.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from driver.measure import Measurement
from driver.plan import Ratio


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Summary | None:
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return None
        return cls(statistics.median(finite), min(finite), max(finite), len(finite))

    def as_json(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}


@dataclass
class FrameworkRecords:
    """One framework's measurements of one workload: ``rounds[r]`` merges that round's cases."""

    rounds: dict[int, dict[str, float]] = field(default_factory=dict)
    loads: dict[int, list[float]] = field(default_factory=dict)  # load average before each process
    info: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    version: str | None = None
    python: str | None = None

    def add(self, m: Measurement) -> None:
        if m.load_1m is not None:
            self.loads.setdefault(m.round, []).append(m.load_1m)
        if m.error is not None:
            self.errors.append(f"round {m.round}: {m.error}")
            return
        self.rounds.setdefault(m.round, {}).update(m.values)
        self.info.update(m.info)
        self.version = m.version or self.version
        self.python = m.python or self.python

    def derive(self, ratios: tuple[Ratio, ...]) -> None:
        for values in self.rounds.values():
            for ratio in ratios:
                num, den = values.get(ratio.numerator), values.get(ratio.denominator)
                if num is not None and den:
                    values[ratio.name] = num / den

    def metrics(self) -> list[str]:
        names: list[str] = []
        for values in self.rounds.values():
            names.extend(k for k in values if k not in names)
        return names

    def summary(self, metric: str) -> Summary | None:
        return Summary.of([v[metric] for v in self.rounds.values() if metric in v])


@dataclass
class WorkloadRecords:
    name: str
    summary_text: str
    frameworks: dict[str, FrameworkRecords] = field(default_factory=dict)

    def of(self, framework: str) -> FrameworkRecords:
        return self.frameworks.setdefault(framework, FrameworkRecords())

    def paired_ratio(self, metric: str, theirs: str = "cml", ours: str = "ours") -> Summary | None:
        """``theirs / ours`` for ``metric``, per round where both were measured."""
        a, b = self.frameworks.get(theirs), self.frameworks.get(ours)
        if a is None or b is None:
            return None
        ratios = [
            a.rounds[r][metric] / b.rounds[r][metric]
            for r in sorted(set(a.rounds) & set(b.rounds))
            if metric in a.rounds[r] and b.rounds[r].get(metric)
        ]
        return Summary.of(ratios)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": self.summary_text, "frameworks": {}, "theirs_over_ours": {}}
        for name, records in self.frameworks.items():
            out["frameworks"][name] = {
                "version": records.version,
                "python": records.python,
                "summary": {m: s.as_json() for m in records.metrics() if (s := records.summary(m)) is not None},
                "rounds": [
                    {"round": r, "load_1m": records.loads.get(r), **records.rounds[r]} for r in sorted(records.rounds)
                ],
                "info": records.info,
                "errors": records.errors,
            }
        ours = self.frameworks.get("ours")
        for metric in ours.metrics() if ours else []:
            ratio = self.paired_ratio(metric)
            if ratio is not None:
                out["theirs_over_ours"][metric] = ratio.as_json()
        return out
