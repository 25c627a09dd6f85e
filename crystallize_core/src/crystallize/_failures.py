"""The one capture path for replicate failures: :func:`capture`.

Every engine records a failed (condition, replicate) the same way, wherever
it ran — in this process (serial, threads), in a pool worker, in a Dask task,
or in the main process while it reads back what a worker sent: it calls
:func:`capture` with the live exception and gets a
:class:`~crystallize._records.ReplicateError` whose ``type_name``,
``message`` and ``traceback`` are plain strings.

User code can raise anything, so nothing here trusts the exception:

- ``str()`` that raises (or returns something other than a string) falls
  back to ``repr()``, then to a placeholder naming the type (:func:`text`);
- a type whose ``__module__`` or ``__qualname__`` misbehave still gets a name
  (:func:`type_name`);
- a traceback that cannot be formatted is replaced by the frames that can
  (:func:`traceback_text`);
- an exception that does not survive pickling is dropped from the record,
  its text kept (:func:`portable_exception`).

Only :data:`NEVER_CAPTURED` exceptions pass through every ``except`` here
and in the engines: Ctrl-C stops the run, under every engine. ``SystemExit``,
``GeneratorExit`` and any other ``BaseException`` raised by a replicate fail
that replicate alone.

None of this runs unless something failed: the per-step path is untouched.
"""

from __future__ import annotations

from typing import Any

from crystallize._records import ReplicateError, ReplicateOutcome

__all__ = [
    "NEVER_CAPTURED",
    "capture",
    "failed_outcome",
    "text",
    "type_name",
    "traceback_text",
    "portable_exception",
    "plain",
]

#: What a replicate may raise that is not its own failure: the user pressed Ctrl-C.
NEVER_CAPTURED = (KeyboardInterrupt,)


def _exact(value: str) -> str:
    """``value`` as an exact ``str`` (a subclass could misbehave when pickled or formatted)."""
    return value if type(value) is str else str.__str__(value)


def _class_name(cls: type) -> str:
    try:
        name = type.__getattribute__(cls, "__name__")
        return _exact(name) if isinstance(name, str) else "?"
    except Exception:  # noqa: BLE001 - a name is all we want
        return "?"


def text(obj: object) -> str:
    """``str(obj)``, or the best stand-in when that fails: ``repr(obj)``, then a placeholder.

    Never raises, except :data:`NEVER_CAPTURED`.
    """
    try:
        return _exact(str(obj))  # str() itself refuses a __str__ returning a non-string
    except NEVER_CAPTURED:
        raise
    except BaseException as exc:  # noqa: BLE001 - str() may raise anything
        failure = type(exc)
    try:
        shown = repr(obj)
        if isinstance(shown, str):
            return f"{_exact(shown)} (str() raised {_class_name(failure)})"
    except NEVER_CAPTURED:
        raise
    except BaseException:  # noqa: BLE001
        pass
    return f"<{_class_name(type(obj))} object: str() raised {_class_name(failure)}, and so did repr()>"


def type_name(exc: BaseException) -> str:
    """``module.QualName`` of ``exc``'s type (``builtins.`` left out)."""
    cls = type(exc)
    try:
        module, qualname = cls.__module__, cls.__qualname__
        if isinstance(module, str) and isinstance(qualname, str):
            return _exact(qualname) if module == "builtins" else f"{_exact(module)}.{_exact(qualname)}"
    except NEVER_CAPTURED:
        raise
    except BaseException:  # noqa: BLE001 - a metaclass may make these properties that raise
        pass
    return _class_name(cls)


def traceback_text(exc: BaseException) -> str:
    """The formatted traceback of ``exc`` (with its causes), or as much of it as can be formatted."""
    import traceback as _traceback  # not at import: only failures need it

    try:
        return "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
    except NEVER_CAPTURED:
        raise
    except BaseException as failure:  # noqa: BLE001 - hostile notes, causes or attributes
        try:
            frames = "".join(_traceback.format_tb(exc.__traceback__))
        except NEVER_CAPTURED:
            raise
        except BaseException:  # noqa: BLE001
            frames = ""
        return (
            f"Traceback (most recent call last):\n{frames}{type_name(exc)}: {text(exc)}\n"
            f"(the rest of this traceback could not be formatted: {type_name(failure)})\n"
        )


def portable_exception(exc: BaseException) -> BaseException | None:
    """``exc`` if it survives a pickle round trip (so it can travel between processes), else ``None``."""
    import pickle

    try:
        import cloudpickle

        pickle.loads(cloudpickle.dumps(exc))
    except NEVER_CAPTURED:
        raise
    except BaseException:  # noqa: BLE001 - any failure, even SystemExit from a __reduce__, means "not portable"
        return None
    return exc


def capture(
    exc: BaseException,
    condition: str,
    replicate: int,
    step: str | None = None,
    *,
    portable: bool = False,
    plugin: str | None = None,
    hook: str | None = None,
    context: str | None = None,
) -> ReplicateError:
    """The record of ``exc``, a failure of ``(condition, replicate)``; never raises.

    :param step: the step that was running, if one was.
    :param portable: keep ``exc`` in the record only if it pickles and
        unpickles (for records built where they cannot be sent on otherwise).
    :param plugin: the plugin whose hook raised, and ``hook`` which one.
    :param context: a sentence put before the exception's own message,
        saying what failed (``"the worker could not ..."``).
    """
    message = text(exc)
    if context is not None:
        message = f"{context}: {type_name(exc)}: {message}"
    return ReplicateError(
        condition=condition,
        replicate=replicate,
        step=step,
        type_name=type_name(exc),
        message=message,
        traceback=traceback_text(exc),
        exception=portable_exception(exc) if portable else exc,
        plugin=plugin,
        hook=hook,
    )


def failed_outcome(exc: BaseException, condition: str, replicate: int, **kwargs: Any) -> ReplicateOutcome:
    """An outcome with no metrics whose error is :func:`capture` of ``exc`` (same keyword arguments)."""
    return ReplicateOutcome(condition, replicate, {}, capture(exc, condition, replicate, **kwargs))


def plain(value: Any) -> str | None:
    """``value`` as an exact ``str`` or ``None``, for fields that must travel as plain data."""
    if value is None or type(value) is str:
        return value
    return text(value)
