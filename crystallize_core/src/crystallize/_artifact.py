"""The :class:`Artifact` handle and the execution scope that binds it.

An :class:`Artifact` is declared once (``Artifact("model.bin")``), listed in
``Experiment(outputs=[...])`` and held by the steps that write it. When a step
calls ``artifact.write(data)``, the artifact finds *where* it is being
written — which experiment, run, condition, replicate and step — from a
:mod:`contextvars` scope that the core sets around every replicate and updates
before every step. Nothing is copied into the context or the step, so a class
step holding ``self.out`` works exactly like a function step receiving the
artifact as a parameter, in threads and in worker processes alike.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystallize._context import CONDITION_KEY, REPLICATE_KEY
from crystallize._names import check_name
from crystallize._portable import PortableCallable, portable
from crystallize.errors import ArtifactStoreError

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._records import ArtifactRecord

__all__ = ["Artifact", "ReplicateScope", "current_scope"]

_BYTES_LIKE = (bytes, bytearray, memoryview)


class ReplicateScope:
    """Where artifact writes go right now: one replicate, one step at a time.

    The core creates one per (condition, replicate) and sets ``step_name``
    before each step, so the per-step cost is two attribute stores. What is
    the same for every replicate of a run (experiment, run, its store, the
    ``on_artifact_write`` hook, declared outputs) lives on ``binding``, the
    run's replicate runner.
    """

    __slots__ = ("binding", "ctx", "failure", "owners", "records", "step_index", "step_name")

    def __init__(self, binding: Any, ctx: FrozenContext) -> None:
        self.binding = binding
        self.ctx = ctx
        self.step_name: str | None = None
        self.step_index = -1
        self.records: list[Any] | None = None  # created by the first write
        self.owners: dict[tuple[str, str], int] | None = None
        self.failure: BaseException | None = None  # what the replicate raised, if it did


_SCOPE: ContextVar[ReplicateScope | None] = ContextVar("crystallize_replicate_scope", default=None)


def current_scope() -> ReplicateScope | None:
    """The scope of the replicate running in this thread, if any."""
    return _SCOPE.get()


def _default_loader(path: Path) -> bytes:
    return Path(path).read_bytes()


class Artifact:
    """A named file that steps write, once per (condition, replicate, step).

    :param name: the file name (a single path segment, e.g. ``"model.bin"``).
    :param loader: ``loader(path) -> object``, used by :meth:`load`; reads
        bytes when omitted.
    :param writer: ``writer(object) -> bytes``, applied by :meth:`write`;
        without it :meth:`write` accepts only bytes-like data.

    ``loader`` and ``writer`` may be lambdas: they are wrapped so that they
    pickle by value for process-based and distributed execution.
    """

    def __init__(
        self,
        name: str,
        loader: Callable[[Path], Any] | None = None,
        writer: Callable[[Any], bytes] | None = None,
    ) -> None:
        self.name = check_name(name, "artifact")
        self.loader: PortableCallable | None = None if loader is None else portable(loader)
        self.writer: PortableCallable | None = None if writer is None else portable(writer)

    def write(self, data: Any) -> ArtifactRecord:
        """Store ``data`` for the current replicate, condition and step.

        The run's store commits the bytes; then plugins implementing
        ``on_artifact_write`` are told.

        :returns: the record of where it went.
        :raises RuntimeError: when called outside a running step.
        :raises TypeError: when ``data`` is not bytes and no ``writer`` was given.
        :raises ArtifactStoreError: when no plugin provides storage.
        """
        scope = _SCOPE.get()
        if scope is None or scope.step_name is None:
            raise RuntimeError(
                f"Artifact {self.name!r}: write() was called outside a running pipeline step; "
                "artifacts can only be written by a step while Experiment.run() executes it"
            )
        binding = scope.binding
        if self.name not in binding.outputs:
            raise ValueError(
                f"Artifact {self.name!r} is not declared in this experiment's outputs; "
                f"pass it in Experiment(outputs=[...]) so storage, resume and downstream "
                f"experiments know about it"
            )
        payload = self.writer(data) if self.writer is not None else data
        if not isinstance(payload, _BYTES_LIKE):
            source = "its writer returned" if self.writer is not None else "write() got"
            raise TypeError(
                f"Artifact {self.name!r}: {source} {type(payload).__name__}, not bytes; "
                "write bytes, or declare Artifact(name, writer=callable_returning_bytes)"
            )
        if scope.owners is None:
            scope.owners = {}
            scope.records = []
        owner = scope.owners.setdefault((scope.step_name, self.name), scope.step_index)
        if owner != scope.step_index:
            raise ValueError(
                f"Artifact {self.name!r} was already written by another step named "
                f"{scope.step_name!r} in this replicate; two steps with the same name "
                "cannot write the same artifact (rename one step class or function)"
            )
        store = binding.store
        if store is None:
            raise ArtifactStoreError(
                f"Artifact {self.name!r} was written but no active plugin provides storage; pass a "
                "storage plugin such as crystallize_artifacts.ArtifactPlugin(root_dir='artifacts') in "
                "Experiment(..., plugins=[...])"
            )
        values = scope.ctx._data
        record = store.write_artifact(
            values[CONDITION_KEY],
            values[REPLICATE_KEY],
            scope.step_name,
            self.name,
            payload if isinstance(payload, bytes) else bytes(payload),
        )
        if binding.on_write is not None:
            binding.on_write(
                experiment=binding.experiment, run=binding.run, artifact=self, record=record, ctx=scope.ctx
            )
        scope.records.append(record)  # type: ignore[union-attr]
        return record

    def load(self, path: str | Path) -> Any:
        """Read an artifact file with this artifact's ``loader`` (bytes by default)."""
        return (self.loader or _default_loader)(Path(path))

    def __repr__(self) -> str:
        return f"Artifact({self.name!r})"
