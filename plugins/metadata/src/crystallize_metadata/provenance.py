"""What ``metadata.json`` records about the code that ran: fingerprints, git, library versions.

Everything here is read cheaply on every run — a few small files and
``stat`` calls — except whether the git working tree has uncommitted
changes, which needs ``git status``: that runs once per process and
repository, and again only when ``HEAD``, the index or one of the
experiment's own source files changed since.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from crystallize.plugin import code_fingerprint, describe, digest, installed_version

if TYPE_CHECKING:
    from crystallize import Experiment

__all__ = ["GitState", "git_state", "code_files", "identity_summary", "library_versions"]

#: ``git status`` may take this long before the dirty flag is recorded as unknown.
GIT_TIMEOUT_SECONDS = 5.0


# -- the experiment's source files ------------------------------------------------------------


def _file_of(obj: Any) -> str | None:
    code = getattr(obj, "__code__", None)
    if code is not None:
        return code.co_filename  # type: ignore[no-any-return]
    cls = obj if isinstance(obj, type) else type(obj)
    module = sys.modules.get(getattr(cls, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    return path if isinstance(path, str) else None


def _components(experiment: Experiment) -> Iterable[Any]:
    source = experiment.datasource
    yield getattr(source, "fn", None) or source
    for step in [] if experiment.pipeline is None else experiment.pipeline.steps:
        yield getattr(step, "fn", None) or step
    for treatment in experiment.treatments:
        if treatment.fn is not None:
            yield treatment.fn


def code_files(experiment: Experiment) -> list[Path]:
    """The existing source files of the experiment's datasource, steps and treatments (the user's)."""
    files: dict[str, Path] = {}
    for component in _components(experiment):
        name = _file_of(component)
        if name and name not in files and not name.startswith("<") and code_fingerprint(component) is not None:
            path = Path(name)
            if path.is_file():
                files[name] = path
    return list(files.values())


# -- git --------------------------------------------------------------------------------------


class GitState(NamedTuple):
    """The git working tree the experiment's code lives in.

    :ivar root: the working tree's top folder.
    :ivar commit: the checked-out commit (``None`` in a repository without commits).
    :ivar branch: the branch name, ``None`` when ``HEAD`` is detached.
    :ivar dirty: whether tracked files differ from the commit (``None`` if ``git`` could not tell).
    """

    root: str
    commit: str | None
    branch: str | None
    dirty: bool | None

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


class _Dirs(NamedTuple):
    root: Path
    git_dir: Path  # this worktree's (HEAD, index)
    common_dir: Path  # shared refs (the main repository's .git for a linked worktree)


_dirs_cache: dict[Path, _Dirs | None] = {}
_dirty_cache: dict[Path, tuple[tuple[Any, ...], float, bool | None]] = {}
_lock = threading.Lock()


def _find(start: Path) -> _Dirs | None:
    """The repository holding ``start``, found by reading ``.git`` entries upwards (cached)."""
    if start in _dirs_cache:
        return _dirs_cache[start]
    found = None
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        try:
            if dot_git.is_dir():
                found = _Dirs(folder, dot_git, dot_git)
            elif dot_git.is_file():
                text = dot_git.read_text(encoding="utf-8").strip()
                if text.startswith("gitdir:"):
                    git_dir = (folder / text[len("gitdir:") :].strip()).resolve()
                    common = git_dir
                    common_file = git_dir / "commondir"
                    if common_file.is_file():
                        common = (git_dir / common_file.read_text(encoding="utf-8").strip()).resolve()
                    found = _Dirs(folder, git_dir, common)
        except OSError:
            found = None
        if found is not None or dot_git.exists():
            break
    _dirs_cache[start] = found
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _resolve_ref(dirs: _Dirs, ref: str) -> str | None:
    for base in (dirs.git_dir, dirs.common_dir):
        value = _read(base / ref)
        if value:
            return value
    packed = _read(dirs.common_dir / "packed-refs")
    for line in (packed or "").splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and not line.startswith(("#", "^")):
            return sha
    return None


def _head(dirs: _Dirs) -> tuple[str | None, str | None]:
    head = _read(dirs.git_dir / "HEAD")
    if head is None:
        return None, None
    if head.startswith("ref:"):
        ref = head[4:].strip()
        return _resolve_ref(dirs, ref), ref.removeprefix("refs/heads/")
    return head, None


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _start_status(root: Path) -> subprocess.Popen[bytes] | None:
    """Start ``git status`` on ``root`` (not waited for); ``None`` when git cannot be run."""
    try:
        return subprocess.Popen(
            ["git", "--no-optional-locks", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def _answer(process: subprocess.Popen[bytes] | None) -> bool | None:
    """Whether ``git status`` listed changes; ``None`` when it failed or took too long."""
    if process is None:
        return None
    try:
        out, _ = process.communicate(timeout=GIT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None
    except (OSError, ValueError):
        return None
    return bool(out.strip()) if process.returncode == 0 else None


class PendingGit:
    """A :class:`GitState` whose ``dirty`` flag ``git status`` may still be computing.

    The commit and branch are known at once (read from the ``.git`` files);
    :meth:`result` waits for the dirty flag. Starting the probe when a run
    starts and asking for the result when it ends hides the cost of
    ``git status`` behind the run.
    """

    def __init__(self, state: GitState, process: subprocess.Popen[bytes] | None, key: tuple[Any, ...], asked_at: int):
        self._state = state
        self._process = process
        self._key = key
        self._asked_at = asked_at
        self._done = process is None

    @property
    def known(self) -> GitState:
        """What is known now: ``dirty`` is ``None`` while ``git status`` runs."""
        return self._state

    def result(self) -> GitState:
        """The full state, once ``git status`` answered (at most ``GIT_TIMEOUT_SECONDS``)."""
        if not self._done:
            dirty = _answer(self._process)
            self._state = self._state._replace(dirty=dirty)
            self._done = True
            with _lock:
                _dirty_cache[Path(self._state.root)] = (self._key, self._asked_at, dirty)
        return self._state


def start_git_state(files: Iterable[Path]) -> PendingGit | None:
    """The working tree of the first of ``files`` (else of the current folder), or ``None`` outside git.

    The commit is read from the ``.git`` files. Whether the tree is dirty is
    asked of ``git status`` once, and again only when ``HEAD`` or the index
    changed or one of ``files`` was modified after the last answer; the
    question runs in the background until :meth:`PendingGit.result`.
    """
    files = list(files)
    start = files[0].resolve().parent if files else Path.cwd()
    dirs = _find(start)
    if dirs is None:
        return None
    commit, branch = _head(dirs)
    key = (commit, branch, _mtime(dirs.git_dir / "index"))
    newest = max((_mtime(f) for f in files), default=0)
    with _lock:
        cached = _dirty_cache.get(dirs.root)
    if cached is not None and cached[0] == key and newest < cached[1]:
        return PendingGit(GitState(str(dirs.root), commit, branch, cached[2]), None, key, cached[1])
    asked_at = time.time_ns()
    return PendingGit(GitState(str(dirs.root), commit, branch, None), _start_status(dirs.root), key, asked_at)


def git_state(files: Iterable[Path]) -> GitState | None:
    """:func:`start_git_state`, waited for."""
    pending = start_git_state(files)
    return None if pending is None else pending.result()


# -- fingerprints and parameters, readable ------------------------------------------------------


def _plain(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if depth > 8:
        return False
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _readable(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as JSON: plain values as they are, others as the id describes them."""
    return {str(k): (list(v) if isinstance(v, tuple) else v) if _plain(v) else describe(v) for k, v in params.items()}


def _entry(name: str, code: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "code": code, "params": _readable(params)}


def identity_summary(experiment: Experiment, treatments: Mapping[str, str]) -> dict[str, Any]:
    """Per-component fingerprints for people: datasource, steps, treatments, hypotheses.

    ``signature`` (what the id hashes) is recorded beside it, exactly; this is
    the same information in a form to read and compare by eye.

    :param treatments: ``{condition: treatment fingerprint}`` of the run (the
        experiment's own treatments, or those the run was given).
    """
    signature = experiment.signature()
    source = experiment.datasource
    steps = [] if experiment.pipeline is None else experiment.pipeline.steps
    described_steps = signature.get("steps", [])
    return {
        "id": experiment.id,
        "datasource": _entry(
            signature["datasource"].get("datasource", type(source).__name__),
            signature["datasource"].get("code"),
            source.params,
        ),
        "steps": [_entry(step.step_name, d.get("code"), step.params) for step, d in zip(steps, described_steps)],
        "treatments": {name: fingerprint for name, fingerprint in treatments.items() if fingerprint},
        "hypotheses": {h.name: digest(describe(h)) for h in experiment.hypotheses},
    }


# -- library versions ---------------------------------------------------------------------------


def library_versions(experiment: Experiment) -> dict[str, str]:
    """Versions of the installed libraries the experiment's modules import (``numpy``, ``torch``...).

    Read from each module's globals; a library is named by its top-level
    package, looked up as a distribution of that name.
    """
    found: dict[str, str] = {}
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    modules = set()
    for component in _components(experiment):
        cls = component if isinstance(component, type) else type(component)
        name = getattr(component, "__module__", None) or getattr(cls, "__module__", None)
        if name:
            modules.add(name)
    for name in modules:
        module = sys.modules.get(name)
        for value in list(vars(module).values()) if module is not None else ():
            top = (getattr(value, "__module__", None) if not isinstance(value, type(sys)) else value.__name__) or ""
            top = top.partition(".")[0]
            if not top or top in stdlib or top.startswith(("crystallize", "_")) or top in found or top == name:
                continue
            version = installed_version(top)
            if version is not None:
                found[top] = version
    return dict(sorted(found.items()))
