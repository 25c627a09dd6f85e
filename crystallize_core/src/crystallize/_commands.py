"""Sub-commands of the ``crystallize`` command: :class:`Command` and the ``crystallize.commands`` group.

A distribution adds a sub-command by naming a :class:`Command` object in the
``crystallize.commands`` entry-point group. That group is separate from
``crystallize.plugins`` on purpose: installing a distribution for its command
(``crystallize verify``, ``crystallize dask-check``) activates nothing in
anybody's experiments. Commands are loaded only when the ``crystallize``
command starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from crystallize.errors import PluginError

if TYPE_CHECKING:
    import argparse

__all__ = ["Command", "COMMANDS_GROUP", "load_commands"]

COMMANDS_GROUP = "crystallize.commands"
"""Entry-point group naming the :class:`Command` objects of installed distributions."""
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def _check_name(instance: Command, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"Command name {value!r} must be lower-case letters, digits and '-', starting with a letter")


@attrs.frozen
class Command:
    """One sub-command of ``crystallize``.

    Name it in your distribution's ``pyproject.toml``::

        [project.entry-points."crystallize.commands"]
        verify = "crystallize_artifacts.commands:verify"

    :ivar name: what users type after ``crystallize`` (``verify``).
    :ivar help: one line shown by ``crystallize --help``.
    :ivar configure: ``configure(parser)`` adds the command's arguments to
        its ``argparse.ArgumentParser``.
    :ivar run: ``run(args) -> exit status``, given the parsed ``argparse.Namespace``.
    :ivar description: the longer text of ``crystallize <name> --help``
        (``help`` when omitted).
    """

    name: str = attrs.field(validator=_check_name)
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


def load_commands(reserved: set[str]) -> tuple[list[tuple[Command, str]], list[str]]:
    """Commands named by installed ``crystallize.commands`` entry points, and messages of those skipped.

    Returns ``([(command, origin), ...], [problem, ...])``. A command whose
    entry point fails to load, is not a :class:`Command`, or takes a name
    already taken (``reserved`` or an earlier one) is skipped, so one broken
    distribution never takes the whole command down — unless
    ``CRYSTALLIZE_STRICT_PLUGINS=1``, which raises :class:`PluginError`.
    """
    from crystallize._entry_points import entry_points, name_and_version
    from crystallize._registry import ENV_STRICT, _flag

    commands: list[tuple[Command, str]] = []
    problems: list[str] = []
    taken = {name: "crystallize-core" for name in reserved}
    seen: set[str] = set()
    for ep, dist in entry_points(COMMANDS_GROUP):
        if f"{ep.name}={ep.value}" in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(f"{ep.name}={ep.value}")
        dist_name, version = name_and_version(dist)
        origin = f"{dist_name or 'an unknown distribution'} {version or ''}".rstrip()
        label = f"command {ep.name!r} ({ep.value}) from {origin}"
        try:
            command = ep.load()
        except Exception as exc:  # noqa: BLE001 - reported, the other commands still work
            problems.append(f"{label} failed to load: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(command, Command):
            problems.append(f"{label} is {command!r}, not a crystallize.plugin.Command")
        elif command.name in taken:
            problems.append(f"{label} is named {command.name!r} like the command from {taken[command.name]}")
        else:
            taken[command.name] = origin
            commands.append((command, origin))
    if problems and _flag(ENV_STRICT):
        raise PluginError("; ".join(problems))
    return commands, problems
