"""Whether progress bars are shown: the environment variable, CI, notebooks, terminals.

The decision is taken for every run, in this order:

1. ``ProgressPlugin(enabled=True | False)`` — what the code asks for wins
   (then an execution engine's ``progress=True | False``, e.g.
   ``SerialExecution(progress=True)``, recorded for the run);
2. ``CRYSTALLIZE_PROGRESS=1`` forces the bars on, ``CRYSTALLIZE_PROGRESS=0``
   forces them off (also ``true``/``false``, ``yes``/``no``, ``on``/``off``);
3. otherwise they are off in CI (the ``CI`` variable is set, as every CI
   service does), in Jupyter notebooks, on ``TERM=dumb`` and when the output
   is not a terminal (a pipe or a file), and on everywhere else.

Nothing here imports ``rich``: deciding "off" costs no import.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["ENV_PROGRESS", "env_choice", "in_ci", "in_notebook", "is_terminal", "should_display"]

ENV_PROGRESS = "CRYSTALLIZE_PROGRESS"

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"0", "false", "no", "off"})

log = logging.getLogger("crystallize.progress")
_warned_values: set[str] = set()


def env_choice(environ: Mapping[str, str] | None = None) -> bool | None:
    """``True``/``False`` when ``CRYSTALLIZE_PROGRESS`` forces the bars on/off, ``None`` when unset.

    An unrecognised value is ignored (with one warning naming it and the
    accepted values), as if the variable were unset.
    """
    raw = (os.environ if environ is None else environ).get(ENV_PROGRESS)
    if raw is None or not raw.strip():
        return None
    value = raw.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    if raw not in _warned_values:
        _warned_values.add(raw)
        log.warning("ignoring %s=%r: use 1 to force progress bars on, 0 to force them off", ENV_PROGRESS, raw)
    return None


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the ``CI`` variable says this is a CI job (set, and not ``0``/``false``/``no``)."""
    raw = (os.environ if environ is None else environ).get("CI")
    return raw is not None and raw.strip().lower() not in ("", "0", "false", "no", "off")


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython ``ZMQInteractiveShell``)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a half-imported IPython is not a notebook
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (``isatty()``, and ``TERM`` is not ``dumb``)."""
    if stream is None or os.environ.get("TERM", "").lower() == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):  # a closed stream
        return False


def should_display(enabled: bool | None, console: Any = None) -> bool:
    """Whether a run shows bars, given the plugin's ``enabled`` setting (see the module docstring).

    :param enabled: ``True``/``False`` to decide, ``None`` to let the environment decide.
    :param console: the ``rich`` console the plugin was given, if any; in
        automatic mode its own ``is_terminal`` answers "is this a terminal?".
        Without one, the process's current ``sys.stderr`` is asked.
    """
    if enabled is not None:
        return enabled
    forced = env_choice()
    if forced is not None:
        return forced
    if in_ci() or in_notebook():
        return False
    if console is not None:
        return bool(console.is_terminal) and not console.is_dumb_terminal
    return is_terminal(sys.stderr)
