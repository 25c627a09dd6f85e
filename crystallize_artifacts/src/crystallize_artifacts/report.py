"""``crystallize report``: one self-contained HTML file describing a stored run.

The file needs nothing else to open — no network, no script, no font or
style sheet from elsewhere: styles are inline and every plot is an inline
SVG drawn by matplotlib (``pip install "crystallize-artifacts[report]"``).
matplotlib rather than plotly: an SVG plot is a few kilobytes and renders in
any browser, mail client or CI artifact viewer with scripts disabled, while a
self-contained plotly page carries some 3.5 MB of JavaScript per file. Text
in the SVGs stays text (searchable, selectable).

Sections: the run (status, times, replicates), the metrics table (n, mean,
sd, t interval per condition), one plot per numeric metric (every replicate's
value per condition, with the mean and its interval), the hypotheses'
verdicts, failed replicates with their tracebacks, the lineage of the
experiment graph (the runs this one read, and the runs that read it, under
the same root), artifacts and provenance.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystallize_artifacts.cli_support import number, when

if TYPE_CHECKING:
    from crystallize import Result

__all__ = ["render_report", "metric_figure", "lineage", "PALETTE"]

try:
    import matplotlib
except ImportError:  # pragma: no cover - exercised by the test of the missing extra
    raise ImportError(
        'crystallize report draws its plots with matplotlib: pip install "crystallize-artifacts[report]"'
    ) from None

#: one colour per condition, in order (baseline first): matplotlib's "tab10".
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

_RC = {
    "svg.fonttype": "none",  # text stays text
    "svg.hashsalt": "crystallize-report",  # identical runs give identical files
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1d2433; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 2px solid #d5dbe6; padding-bottom: 0.2em; margin-top: 2em; }
.status { display: inline-block; padding: 0.1em 0.6em; border-radius: 0.8em; font-weight: 600; color: #fff; }
.completed { background: #2e7d32; } .failed, .crashed { background: #c62828; }
.interrupted, .incomplete, .running { background: #ef6c00; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th { background: #dde6f3; text-align: left; }
th, td { border: 1px solid #c3cddb; padding: 0.25em 0.6em; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.sig { color: #2e7d32; font-weight: 600; } .nosig { color: #6b7280; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { font-size: 0.85em; color: #4b5563; }
pre { background: #f4f6fa; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.muted { color: #6b7280; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):  # the SVG writer reads svg.* when saving
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prologue and doctype: inline in HTML


def _values(metrics: Any, name: str) -> list[float]:
    from crystallize import Series

    entries = metrics.by_replicate.get(name)
    raw = metrics.metrics.get(name, []) if entries is None else entries
    values = []
    for entry in raw:
        if isinstance(entry, Series):
            numeric = [v for v in entry if isinstance(v, (int, float)) and not isinstance(v, bool)]
            entry = math.fsum(numeric) / len(numeric) if numeric and len(numeric) == len(entry) else None
        if isinstance(entry, (int, float)) and not isinstance(entry, bool) and math.isfinite(entry):
            values.append(float(entry))
    return values


def metric_figure(result: Result, metric: str, summary: Any) -> Any | None:
    """A matplotlib ``Figure``: every replicate's value of ``metric`` per condition, the mean and its interval."""
    from matplotlib.figure import Figure

    conditions = {"baseline": result.metrics.baseline, **result.metrics.treatments}
    columns = [(name, _values(m, metric)) for name, m in conditions.items()]
    if not any(values for _, values in columns):
        return None
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(max(3.2, 1.1 * len(columns) + 1.6), 3.0))
        ax = figure.add_subplot()
        for x, (name, values) in enumerate(columns):
            colour = PALETTE[x % len(PALETTE)]
            n = len(values)
            offsets = [((i + 0.5) / n - 0.5) * 0.36 for i in range(n)] if n > 1 else [0.0]
            ax.scatter(
                [x + o for o in offsets], values, s=26, color=colour, edgecolors="white", linewidths=0.5, zorder=2
            )
            try:
                row = summary.row(name, metric)
            except KeyError:
                continue
            if row.mean is not None:
                low, high = row.ci if row.ci is not None else (row.mean, row.mean)
                ax.errorbar(
                    [x + 0.3],
                    [row.mean],
                    yerr=[[row.mean - low], [high - row.mean]],
                    fmt="D",
                    color="#1d2433",
                    markersize=5,
                    capsize=4,
                    linewidth=1.4,
                    zorder=3,
                )
        ax.set_xticks(range(len(columns)), [name for name, _ in columns], rotation=20 if len(columns) > 4 else 0)
        ax.set_xlim(-0.6, len(columns) - 0.2)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: replicates, mean and {summary.confidence * 100:g}% CI", fontsize=10)
        ax.grid(axis="y", color="#e5e7eb", zorder=0)
        figure.tight_layout()
    return figure


# -- lineage -------------------------------------------------------------------------------------------


def lineage(result: Result, root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """``(nodes, edges)`` of the runs around this one: what it read (recursively) and what read it.

    Nodes are ``experiment@vN``; an edge ``(producer, consumer)``. Upstream
    runs are found through each run's recorded lineage, downstream runs by
    reading the metadata of every run under ``root`` (what ``ls`` reads).
    """
    from crystallize_artifacts.listing import list_runs

    run = result.run
    me = f"{run.key}@v{run.version}"
    edges: set[tuple[str, str]] = set()
    every = {f"{info.experiment}@v{info.version}": info for info in list_runs(root)}
    pending = [me]
    seen: set[str] = set()
    while pending:  # upstream, through recorded lineage
        node = pending.pop()
        if node in seen:
            continue
        seen.add(node)
        upstream = run.upstream if node == me else ()
        if node != me and node in every:
            upstream = tuple(every[node].upstream)
        for entry in upstream:
            producer = entry if isinstance(entry, str) else f"{entry.experiment}@v{entry.version}"
            edges.add((producer, node))
            pending.append(producer)
    frontier = [me]
    while frontier:  # downstream: runs whose lineage names a node we have
        node = frontier.pop()
        for name, info in every.items():
            if node in info.upstream and (node, name) not in edges:
                edges.add((node, name))
                frontier.append(name)
    nodes = sorted({n for edge in edges for n in edge} | {me})
    return nodes, sorted(edges)


def lineage_figure(nodes: list[str], edges: list[tuple[str, str]], me: str) -> Any:
    """The lineage drawn as layers, producers on the left."""
    from matplotlib.figure import Figure

    depth = {n: 0 for n in nodes}
    for _ in nodes:  # longest path from a source; the graph is acyclic
        for producer, consumer in edges:
            depth[consumer] = max(depth[consumer], depth[producer] + 1)
    layers: dict[int, list[str]] = {}
    for node in nodes:
        layers.setdefault(depth[node], []).append(node)
    tallest = max(len(layer) for layer in layers.values())
    position = {n: (d, -(i - (len(layer) - 1) / 2)) for d, layer in layers.items() for i, n in enumerate(layer)}
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(max(4.0, 2.8 * len(layers)), max(1.4, 0.9 * tallest + 0.6)))
        ax = figure.add_subplot()
        ax.set_axis_off()
        for producer, consumer in edges:
            ax.annotate(
                "",
                xy=position[consumer],
                xytext=position[producer],
                arrowprops={"arrowstyle": "-|>", "color": "#6b7280", "shrinkA": 38, "shrinkB": 38, "linewidth": 1.3},
            )
        for node, (x, y) in position.items():
            ax.text(
                x,
                y,
                node,
                ha="center",
                va="center",
                fontsize=9,
                bbox={
                    "boxstyle": "round,pad=0.4",
                    "facecolor": "#fde7c8" if node == me else "#e8eef7",
                    "edgecolor": "#ff7f0e" if node == me else "#1f77b4",
                },
            )
        ax.set_xlim(-0.7, max(layers) + 0.7)
        ax.set_ylim(-tallest / 2 - 0.2, tallest / 2 + 0.2)
    return figure


# -- the page ----------------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_cells(hypothesis: str, treatment: str, verdict: Any) -> list[str]:
    get = verdict.get if isinstance(verdict, Mapping) else (lambda key: None)
    ci = get("ci")
    interval = f"[{number(ci[0])}, {number(ci[1])}]" if isinstance(ci, (list, tuple)) and len(ci) == 2 else "-"
    significant = get("significant")
    mark = (
        '<span class="sig">significant</span>'
        if significant is True
        else '<span class="nosig">not significant</span>'
        if significant is False
        else "-"
    )
    extra = ""
    if get("p_value") is None and isinstance(verdict, Mapping):
        extra = _e(json.dumps(verdict, default=str)[:200])
    return [
        _e(hypothesis),
        _e(treatment),
        _e(get("metric") or "-"),
        _e(get("test") or extra or "-"),
        _e(number(get("mean_difference"))),
        _e(interval),
        _e(number(get("p_value"))),
        _e(number(get("adjusted_p_value"))),
        mark,
    ]


def render_report(result: Result, root: Path | None = None) -> str:
    """The HTML page of a stored run (``result`` from :func:`~crystallize_artifacts.load_result`)."""
    from crystallize_artifacts.commands import artifact_groups, provenance

    run = result.run
    summary = result.summary()
    prov = provenance(result) if run is not None and run.store is not None else {}
    title = f"{run.key} v{run.version}" if run is not None else "result"
    status = run.status if run is not None else "unknown"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} - Crystallize report</title><style>{_CSS}</style></head><body>",
        f'<h1>{_e(title)} <span class="status {_e(status)}">{_e(status)}</span></h1>',
        f'<p class="muted">{_e(summary.title)} &middot; started {_e(when(prov.get("created_at")))} &middot; '
        f"finished {_e(when(prov.get('finished_at')))}</p>",
    ]
    if prov.get("description"):
        parts.append(f"<p>{_e(prov['description'])}</p>")

    parts.append("<h2>Metrics</h2>")
    if summary.rows:
        rows = []
        for row in summary.rows:
            ci = "-" if row.ci is None else f"[{number(row.ci[0])}, {number(row.ci[1])}]"
            metric = row.metric + (f" ({summary.reduce} of {row.per_replicate})" if row.per_replicate > 1 else "")
            n = str(row.n) if row.n == row.replicates else f"{row.n}/{row.replicates}"
            rows.append([_e(row.condition), _e(metric), _e(n), _e(number(row.mean)), _e(number(row.sd)), _e(ci)])
        level = f"{summary.confidence * 100:g}% CI (t)"
        parts.append(_table(["condition", "metric", "n", "mean", "sd", level], rows, frozenset({2, 3, 4})))
        figures = []
        for metric in dict.fromkeys(row.metric for row in summary.rows):
            figure = metric_figure(result, metric, summary)
            if figure is not None:
                figures.append(f'<figure class="plot">{_svg(figure)}<figcaption>{_e(metric)}</figcaption></figure>')
        if figures:
            parts.append('<div class="plots">' + "".join(figures) + "</div>")
    else:
        parts.append('<p class="muted">No metrics recorded.</p>')

    parts.append("<h2>Hypotheses</h2>")
    if summary.verdicts:
        header = ["hypothesis", "treatment", "metric", "test", "difference", "CI", "p", "adjusted p", "verdict"]
        rows = [_verdict_cells(v.hypothesis, v.treatment, v.verdict) for v in summary.verdicts]
        parts.append(_table(header, rows, frozenset({4, 6, 7})))
    else:
        parts.append('<p class="muted">No hypothesis was verified in this run.</p>')

    parts.append(f"<h2>Failed replicates ({len(result.error_list())})</h2>")
    if result.errors:
        rows = [
            [
                _e(e.condition),
                _e(e.replicate),
                _e(e.step or "-"),
                f"<details><summary>{_e(e.type_name)}: {_e(e.message[:200])}</summary><pre>{_e(e.traceback)}</pre>"
                "</details>",
            ]
            for e in result.error_list()
        ]
        parts.append(_table(["condition", "replicate", "step", "error"], rows))
    else:
        parts.append('<p class="muted">None.</p>')

    parts.append("<h2>Lineage</h2>")
    if run is not None and root is not None:
        nodes, edges = lineage(result, root)
        if edges:
            figure = lineage_figure(nodes, edges, f"{run.key}@v{run.version}")
            parts.append(f'<figure class="lineage">{_svg(figure)}</figure>')
        else:
            parts.append(
                '<p class="muted">This run read no other experiment\'s artifacts, and no run read its own.</p>'
            )

    parts.append("<h2>Artifacts</h2>")
    groups = artifact_groups(result)
    if groups:
        rows = [
            [_e(g["step"]), _e(g["name"]), _e(g["files"]), _e(g["bytes"]), _e(", ".join(g["conditions"]))]
            for g in groups
        ]
        parts.append(_table(["step", "name", "files", "bytes", "conditions"], rows, frozenset({2, 3})))
    else:
        parts.append('<p class="muted">None recorded.</p>')

    parts.append("<h2>Provenance</h2>")
    rows = []
    for key, value in prov.items():
        if value is None or value in ([], {}):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(shown) > 100:
            shown = json.dumps(value, default=str, indent=1)
        rows.append([_e(key), f"<pre>{_e(shown)}</pre>" if "\n" in shown else _e(shown)])
    if run is not None:
        rows.append(["location", _e(run.location)])
    parts.append(_table(["key", "value"], rows))
    parts.append('<p class="muted">Written by crystallize report.</p></body></html>')
    return "\n".join(parts)
