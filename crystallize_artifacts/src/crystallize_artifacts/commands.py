"""What installing crystallize-artifacts adds to the ``crystallize`` command.

``ls``, ``show``, ``diff``, ``report``, ``gc`` and ``verify``, each a
:class:`crystallize.plugin.Command` named in the ``crystallize.commands``
entry-point group. Installing the distribution activates no plugin: an
experiment stores nothing until ``ArtifactPlugin(...)`` is passed in its
``plugins=[...]``. Exit codes are in :mod:`crystallize_artifacts.cli_support`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crystallize.plugin import Command
from crystallize_artifacts.cli_support import (
    NOTHING,
    OK,
    USAGE,
    add_json,
    add_root,
    default_root,
    fail,
    guarded,
    number,
    print_json,
    resolve,
    table,
    when,
)

__all__ = ["ls", "show", "diff", "report", "gc", "verify", "verify_command"]


# -- verify ------------------------------------------------------------------------------------


def _configure_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", help="a run folder (v<N>), an experiment folder or a root; or an fsspec URL such as s3://bucket/prefix"
    )
    add_json(parser)


def verify_command(args: argparse.Namespace) -> int:
    """``crystallize verify``: exit 0 when every file checks out, 1 for problems or
    when the path holds no runs, 2 for a path that is missing or not a folder."""
    from crystallize_artifacts.backends import is_object_url
    from crystallize_artifacts.verify import NoRunsError, verify_path

    if is_object_url(args.path):
        try:
            report = verify_path(args.path)
        except (NoRunsError, OSError, ImportError) as exc:
            print(f"crystallize verify: {exc}")
            return 2
        return _print(args, report)
    args.path = Path(args.path)
    if not args.path.exists():
        print(f"crystallize verify: {args.path} does not exist")
        return 2
    try:
        report = verify_path(args.path)
    except (NoRunsError, OSError) as exc:
        print(f"crystallize verify: {exc}")
        return 2
    if not report:
        print(
            f"crystallize verify: no runs found in {args.path} (expected a run folder v<N>, an experiment "
            "folder holding v<N> folders, or a root holding experiment folders)"
        )
        return 1
    return _print(args, report)


def _print(args: argparse.Namespace, report: dict[str, list[str]]) -> int:
    if not report:
        print(f"crystallize verify: no runs found in {args.path}")
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for run, problems in report.items():
            print(f"{run}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
            for problem in problems:
                print(f"  - {problem}")
    return 1 if any(report.values()) else 0


verify = Command(
    name="verify",
    help="check stored artifacts against their manifest checksums",
    configure=_configure_verify,
    run=verify_command,
)


# -- ls ----------------------------------------------------------------------------------------------


def _configure_ls(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", type=Path, default=None, metavar="ROOT", help="a root or an experiment folder"
    )
    add_root(parser)
    parser.add_argument("-e", "--experiment", default=None, help="only this experiment's versions")
    add_json(parser)


def _ls(args: argparse.Namespace) -> int:
    """``crystallize ls [ROOT]``: one row per run, from each run's metadata.json."""
    from crystallize_artifacts.listing import list_runs

    root = args.path or args.root or default_root()
    if not root.exists():
        raise fail(
            f"{root} does not exist (give a root, set $CRYSTALLIZE_ROOT, or run from the folder above ./data)", USAGE
        )
    if not root.is_dir():
        raise fail(f"{root} is not a folder", USAGE)
    if args.experiment is not None and not (root / args.experiment).is_dir():
        raise fail(f"no experiment {args.experiment!r} under {root}", NOTHING)
    runs = list(list_runs(root, args.experiment))
    if args.json:
        print_json([run.to_dict() for run in runs])
        return OK if runs else NOTHING
    if not runs:
        print(f"no runs under {root}")
        return NOTHING
    rows = [
        ("EXPERIMENT", "VERSION", "STATUS", "STARTED", "FINISHED", "CONDITIONS", "REPS", "FAILED", "GIT", "UPSTREAM")
    ]
    for run in runs:
        done = len(run.completed)
        conditions = f"{done}/{len(run.conditions)}" if done != len(run.conditions) else str(len(run.conditions))
        rows.append(
            (
                run.experiment if len(run.experiment) <= 40 else run.experiment[:16] + "...",
                f"v{run.version}",
                run.status + (" (0.27)" if run.format != "crystallize" else ""),
                when(run.started),
                when(run.finished),
                conditions,
                "-" if run.replicates is None else str(run.replicates),
                "-" if run.failures is None else str(run.failures),
                "-" if run.git_commit is None else run.git_commit[:12],
                ", ".join(run.upstream) or "-",
            )
        )
    print("\n".join(table(rows, right=frozenset({1, 5, 6, 7}))))
    return OK


ls = Command(
    name="ls",
    help="list stored runs: experiments x versions, status, conditions, replicates, failures, lineage",
    configure=_configure_ls,
    run=guarded("ls", _ls),
    description="List every run under a root (default: $CRYSTALLIZE_ROOT, else ./data) or in an experiment folder. "
    "Reads one metadata.json per run. Exit status: 0 runs listed, 1 none found, 2 bad path, 3 unreadable document.",
)


# -- show ----------------------------------------------------------------------------------------------


def _target_args(parser: argparse.ArgumentParser, what: str = "EXP[@vN]") -> None:
    parser.add_argument("target", metavar=what, help="an experiment name (@vN selects a version) or its folder")


def _configure_show(parser: argparse.ArgumentParser) -> None:
    _target_args(parser)
    add_root(parser)
    parser.add_argument("--tracebacks", action="store_true", help="print each failed replicate's whole traceback")
    parser.add_argument("--confidence", type=float, default=0.95, help="coverage of the intervals (default 0.95)")
    add_json(parser)


def _load(spec: str, root: Path | None) -> Any:
    from crystallize_artifacts.results import read_run
    from crystallize_artifacts.store import LocalRunStore

    folder, version = resolve(spec, root)
    store = LocalRunStore.open_existing(folder, version)
    if store is None:
        from crystallize_artifacts import layout

        found = ", ".join(f"v{v}" for v in layout.versions(folder)) or "none"
        raise fail(f"{folder.name} has no run v{version} (versions: {found})", NOTHING)
    return read_run(store)


def provenance(result: Any) -> dict[str, Any]:
    """What ``show`` lists under provenance, from the run's metadata.json (readable parameters)."""
    from crystallize_artifacts.diffing import VOLATILE, readable
    from crystallize_artifacts.listing import git_commit, read_metadata

    meta = read_metadata(result.run.store)[0] or {}
    keep = {k: v for k, v in meta.items() if k not in VOLATILE or k in ("run_id", "created_at", "finished_at")}
    if "signature" in keep:
        keep["signature"] = readable(keep["signature"])
    if git_commit(meta):
        keep["git_commit"] = git_commit(meta)
    keep.pop("facts", None) if keep.get("facts", {}).get("seed") == keep.get("seeds") else None
    return keep


def artifact_groups(result: Any) -> list[dict[str, Any]]:
    """Artifacts grouped by step and name: files, bytes, conditions."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for record in result.artifacts:
        group = groups.setdefault(
            (record.step, record.name),
            {"step": record.step, "name": record.name, "files": 0, "bytes": 0, "conditions": []},
        )
        group["files"] += 1
        group["bytes"] += record.size
        if record.condition not in group["conditions"]:
            group["conditions"].append(record.condition)
    return list(groups.values())


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _show(args: argparse.Namespace) -> int:
    """``crystallize show EXP[@vN]``: the metrics table, verdicts, failures, artifacts, provenance."""
    if not 0 < args.confidence < 1:
        raise fail(f"--confidence must be between 0 and 1, got {args.confidence}", USAGE)
    result = _load(args.target, args.root)
    summary = result.summary(confidence=args.confidence)
    prov = provenance(result)
    groups = artifact_groups(result)
    if args.json:
        document = result.to_dict()
        document["summary"] = summary.to_dict()
        document["provenance"] = prov
        document["artifact_groups"] = groups
        print_json(document)
        return OK
    print(summary)
    if args.tracebacks and result.errors:
        print("\ntracebacks")
        for error in result.error_list():
            print(f"--- {error.condition} replicate {error.replicate}")
            print(error.traceback.rstrip() or f"{error.type_name}: {error.message}")
    print("\nartifacts")
    if groups:
        rows = [("STEP", "NAME", "FILES", "SIZE", "CONDITIONS")]
        rows += [(g["step"], g["name"], str(g["files"]), _size(g["bytes"]), ", ".join(g["conditions"])) for g in groups]
        print("\n".join("  " + line for line in table(rows, right=frozenset({2, 3}))))
    else:
        print("  none recorded")
    print("\nprovenance")
    for key in ("name", "id", "run_id", "strategy", "created_at", "finished_at", "git_commit", "python", "platform"):
        if prov.get(key) is not None:
            print(f"  {key}: {prov[key]}")
    if prov.get("upstream"):
        for entry in prov["upstream"]:
            source = f"{entry.get('step')}/{entry.get('artifact')}"
            print(f"  upstream: {entry.get('experiment')}@v{entry.get('version')} ({source})")
    if prov.get("seeds"):
        print(f"  seeds: {json.dumps(prov['seeds'])}")
    for step in (prov.get("signature") or {}).get("steps", []):
        if isinstance(step, dict):
            print(f"  step {step.get('step')}: {json.dumps(step.get('params'), default=str)}")
    if prov.get("packages"):
        print("  packages: " + ", ".join(f"{k} {v}" for k, v in prov["packages"].items()))
    print(f"  location: {result.run.location}")
    return OK


show = Command(
    name="show",
    help="show one stored run: metrics table, hypotheses, failures, artifacts, provenance",
    configure=_configure_show,
    run=guarded("show", _show),
    description="Show a stored run (EXP, EXP@vN, or an experiment or run folder) without its code. "
    "Exit status: 0 shown, 1 no such run, 2 bad arguments, 3 unreadable document.",
)


# -- diff ----------------------------------------------------------------------------------------------


def _configure_diff(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help="EXP@vN (or a run folder)")
    parser.add_argument("b", metavar="B", help="EXP@vM, or @vM for another version of A's experiment")
    add_root(parser)
    add_json(parser)


def _fmt(value: Any) -> str:
    if isinstance(value, (int, float)) or value is None:
        return number(value)
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _diff(args: argparse.Namespace) -> int:
    """``crystallize diff A B``: provenance keys that differ, then metrics side by side with a test."""
    from crystallize_artifacts.diffing import metric_diff, provenance_diff

    a = _load(args.a, args.root)
    if args.b.startswith("@"):  # another version of A's experiment
        b = _load(f"{a.run.key}{args.b}", a.run.store.experiment_dir.parent)
    else:
        b = _load(args.b, args.root)
    changes = provenance_diff(a, b)
    rows = metric_diff(a, b)
    label_a, label_b = f"{a.run.key}@v{a.run.version}", f"{b.run.key}@v{b.run.version}"
    if args.json:
        print_json(
            {
                "a": label_a,
                "b": label_b,
                "status": {"a": a.run.status, "b": b.run.status},
                "provenance": [{"key": k, "a": va, "b": vb} for k, va, vb in changes],
                "metrics": rows,
            }
        )
        return OK
    print(f"A = {label_a} ({a.run.status})   B = {label_b} ({b.run.status})")
    print("\nprovenance")
    if changes:
        lines = [("KEY", "A", "B")] + [(k, _fmt(va), _fmt(vb)) for k, va, vb in changes]
        print("\n".join("  " + line for line in table(lines)))
    else:
        print("  the same (parameters, fingerprints, seeds, packages, platform)")
    print("\nmetrics (B - A of the means; the test and its CI use the replicates with a value, in pairs when both")
    print("runs gave replicate r the same seed)")
    if rows:
        lines = [("CONDITION", "METRIC", "A", "B", "B - A", "95% CI", "p", "TEST")]
        for row in rows:
            ci = "-" if row["ci"] is None else f"[{_fmt(row['ci'][0])}, {_fmt(row['ci'][1])}]"
            lines.append(
                (
                    row["condition"],
                    row["metric"],
                    f"{_fmt(row['mean_a'])} (n={row['n_a']})",
                    f"{_fmt(row['mean_b'])} (n={row['n_b']})",
                    _fmt(row["difference"]),
                    ci,
                    _fmt(row["p_value"]),
                    "-"
                    if row["test"] is None
                    else f"{row['test']} ({row['tested_n']}{' pairs' if row['paired'] else ''})",
                )
            )
        print("\n".join("  " + line for line in table(lines, right=frozenset({4, 6}))))
    else:
        print("  no metrics in either run")
    return OK


diff = Command(
    name="diff",
    help="compare two stored runs: parameters, fingerprints, seeds, packages, metrics with a test",
    configure=_configure_diff,
    run=guarded("diff", _diff),
    description="Compare two stored runs (EXP@vN EXP@vM, or EXP@vN @vM). "
    "Exit status: 0 compared, 1 a run not found, 2 bad arguments, 3 unreadable document.",
)


# -- report ----------------------------------------------------------------------------------------------


def _configure_report(parser: argparse.ArgumentParser) -> None:
    _target_args(parser)
    add_root(parser)
    parser.add_argument("-o", "--output", type=Path, default=None, help="the HTML file (default: <exp>-v<N>.html)")


def _report(args: argparse.Namespace) -> int:
    """``crystallize report EXP[@vN] -o report.html``: one self-contained HTML file."""
    try:
        from crystallize_artifacts.report import render_report
    except ImportError as exc:  # matplotlib missing
        raise fail(f"{exc}", USAGE) from None
    result = _load(args.target, args.root)
    output = args.output or Path(f"{result.run.key}-v{result.run.version}.html")
    html = render_report(result, root=result.run.store.experiment_dir.parent)
    output.write_text(html, encoding="utf-8")
    print(f"wrote {output} ({_size(len(html.encode()))})")
    return OK


report = Command(
    name="report",
    help="write one self-contained HTML report of a stored run, with plots",
    configure=_configure_report,
    run=guarded("report", _report),
    description="Write an HTML report (metrics, plots, hypotheses, lineage, provenance) that opens without a network. "
    'Plots need matplotlib: pip install "crystallize-artifacts[report]". '
    "Exit status: 0 written, 1 no such run, 2 bad arguments or matplotlib missing, 3 unreadable document.",
)


# -- gc ----------------------------------------------------------------------------------------------


def _configure_gc(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", type=Path, default=None, metavar="ROOT", help="a root or an experiment folder"
    )
    add_root(parser)
    parser.add_argument("-e", "--experiment", default=None, help="only this experiment")
    parser.add_argument(
        "--keep", type=int, default=None, metavar="N", help="keep the artifacts of the N newest versions"
    )
    parser.add_argument(
        "--big-file-mb",
        type=float,
        default=None,
        metavar="MB",
        help="drop files larger than MB from older kept versions",
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    add_json(parser)


def _gc(args: argparse.Namespace) -> int:
    """``crystallize gc ROOT --keep N``: apply retention now (metrics, markers and metadata always stay)."""
    from crystallize_artifacts import layout
    from crystallize_artifacts.listing import experiment_dirs
    from crystallize_artifacts.retention import prune

    if args.keep is None and args.big_file_mb is None:
        raise fail("say what to keep: --keep N (artifacts of the N newest versions) and/or --big-file-mb MB", USAGE)
    if args.keep is not None and args.keep < 1:
        raise fail(f"--keep must be at least 1, got {args.keep}", USAGE)
    if args.big_file_mb is not None and not args.big_file_mb > 0:
        raise fail(f"--big-file-mb must be positive, got {args.big_file_mb}", USAGE)
    root = args.path or args.root or default_root()
    if not root.is_dir():
        raise fail(f"{root} is not a folder", USAGE)
    if args.experiment is not None:
        folders = [root / args.experiment]
    elif layout.versions(root):
        folders = [root]
    else:
        folders = experiment_dirs(root)
    if not any(layout.versions(folder) for folder in folders):
        raise fail(f"no runs under {root}", NOTHING)
    threshold = None if args.big_file_mb is None else int(args.big_file_mb * 1024 * 1024)
    report: dict[str, list[str]] = {}
    for folder in folders:
        latest = layout.latest_version(folder)
        if latest is None:
            continue
        report[folder.name] = prune(folder, args.keep, threshold, latest, dry_run=args.dry_run)
    if args.json:
        print_json({"dry_run": args.dry_run, "experiments": report})
        return OK
    for name, actions in report.items():
        for action in actions or ["nothing to do"]:
            print(f"{name}: {action}")
    return OK


gc = Command(
    name="gc",
    help="apply artifact retention now (--keep N, --big-file-mb MB), with --dry-run",
    configure=_configure_gc,
    run=guarded("gc", _gc),
    description="Delete the artifacts of old versions (their metrics, markers and metadata stay). Never touches a run "
    "that is running or a version a downstream run read. Exit status: 0 done, 1 no runs, 2 bad arguments.",
)
