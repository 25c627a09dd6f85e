"""Steps that raise or record hostile things, shipped to Dask workers by value (see test_dask_hostile.py)."""

from __future__ import annotations

import os
from typing import Any

from crystallize import PipelineStep


class StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


class StrAndReprRaise(StrRaises):
    def __repr__(self) -> str:
        raise RuntimeError("and so does repr()")


class ExitsWhenPickled(Exception):
    def __reduce__(self) -> Any:
        raise SystemExit("pickling ran sys.exit")


class ExitsWhenLoadedInMain(Exception):
    def __init__(self, main_pid: int) -> None:
        super().__init__(f"raised in process {os.getpid()}")
        self.main_pid = main_pid

    def __reduce__(self) -> Any:
        return (_load_exception_elsewhere, (self.main_pid,))


def _load_exception_elsewhere(main_pid: int) -> ExitsWhenLoadedInMain:
    if os.getpid() == main_pid:
        raise SystemExit("loading the exception ran sys.exit in the main process")
    return ExitsWhenLoadedInMain(main_pid)


def make_exception(kind: str, main_pid: int) -> BaseException:
    return {
        "str raises": lambda: StrRaises(),
        "str and repr raise": lambda: StrAndReprRaise(),
        "SystemExit": lambda: SystemExit(3),
        "GeneratorExit": lambda: GeneratorExit("closed"),
        "pickling exits": lambda: ExitsWhenPickled("cannot travel"),
        "loading exits in main": lambda: ExitsWhenLoadedInMain(main_pid),
    }[kind]()


class RaiseInReplicateOne(PipelineStep):
    def __init__(self, kind: str, main_pid: int) -> None:
        self.kind = kind
        self.main_pid = main_pid

    def __call__(self, data: Any, ctx: Any) -> Any:
        if ctx["replicate"] == 1:
            raise make_exception(self.kind, self.main_pid)
        ctx.metrics.add("ok", ctx["replicate"])
        return data


class LoadsOnlyElsewhere:
    """Pickles anywhere; loading it in process ``main_pid`` raises (or runs sys.exit)."""

    def __init__(self, main_pid: int, exit: bool) -> None:
        self.main_pid = main_pid
        self.exit = exit

    def __reduce__(self) -> Any:
        return (_load_value_elsewhere, (self.main_pid, self.exit))


def _load_value_elsewhere(main_pid: int, exit: bool) -> LoadsOnlyElsewhere:
    if os.getpid() == main_pid:
        if exit:
            raise SystemExit("loading the metric ran sys.exit in the main process")
        raise ValueError("this metric cannot be loaded in the main process")
    return LoadsOnlyElsewhere(main_pid, exit)


class RecordUnloadable(PipelineStep):
    def __init__(self, main_pid: int, exit: bool) -> None:
        self.main_pid = main_pid
        self.exit = exit

    def __call__(self, data: Any, ctx: Any) -> Any:
        ctx.metrics.add("ok", ctx["replicate"])
        if ctx["replicate"] == 1:
            ctx.metrics.add("hostile", LoadsOnlyElsewhere(self.main_pid, self.exit))
        return data


def _refuse_to_load() -> None:
    raise RuntimeError("this step needs a GPU only the main process has")


class RefusesToLoad(PipelineStep):
    """Works where it was built; loading it on a worker fails."""

    def __call__(self, data: Any, ctx: Any) -> Any:
        return data

    def __reduce__(self) -> Any:
        return (_refuse_to_load, ())
