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

import os
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

__all__ = ["Artifact", "ArtifactStream", "ReplicateScope", "current_scope"]

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
        self._check_declared(scope)
        payload = self.writer(data) if self.writer is not None else data
        if not isinstance(payload, _BYTES_LIKE):
            source = "its writer returned" if self.writer is not None else "write() got"
            raise TypeError(
                f"Artifact {self.name!r}: {source} {type(payload).__name__}, not bytes; "
                "write bytes, or declare Artifact(name, writer=callable_returning_bytes), "
                "or stream it with artifact.open('wb')"
            )
        store = self._store_for(scope, "write()")
        values = scope.ctx._data
        record = store.write_artifact(
            values[CONDITION_KEY],
            values[REPLICATE_KEY],
            scope.step_name,  # type: ignore[arg-type]
            self.name,
            payload if isinstance(payload, bytes) else bytes(payload),
        )
        self._committed(scope, record)
        return record

    def open(self, mode: str = "wb") -> ArtifactStream:
        """Stream the artifact of the current replicate, condition and step::

            with self.model.open("wb") as f:
                torch.save(model, f)  # any writer taking a binary file object

        Nothing is stored until the stream is closed; then it appears whole
        (as with :meth:`write`) and ``on_artifact_write`` plugins are told. If
        the ``with`` block raises, what was written is dropped. Memory stays
        bounded by the store's buffer, not by the artifact's size.

        :param mode: ``"wb"`` (artifacts are written whole, never appended to or read here;
            readers get them from ``artifact_datasource``).
        """
        if mode != "wb":
            raise ValueError(f"Artifact {self.name!r}: open() takes mode 'wb' only (artifacts are written whole)")
        scope = _SCOPE.get()
        if scope is None or scope.step_name is None:
            raise RuntimeError(
                f"Artifact {self.name!r}: open() was called outside a running pipeline step; "
                "artifacts can only be written by a step while Experiment.run() executes it"
            )
        store = self._store_for(scope, "open()")
        values = scope.ctx._data
        sink = store.open_artifact(values[CONDITION_KEY], values[REPLICATE_KEY], scope.step_name, self.name)  # type: ignore[arg-type]
        return ArtifactStream(sink, self, scope)

    def write_file(self, path: str | os.PathLike[str], *, move: bool = False) -> ArtifactRecord:
        """Store an existing file as the artifact of the current replicate, condition and step.

        The file is copied, or with ``move=True`` moved (renamed into place when
        the store is on the same file system, so a large checkpoint costs no
        copy). Either way the artifact appears whole, as with :meth:`write`.
        """
        scope = _SCOPE.get()
        if scope is None or scope.step_name is None:
            raise RuntimeError(
                f"Artifact {self.name!r}: write_file() was called outside a running pipeline step; "
                "artifacts can only be written by a step while Experiment.run() executes it"
            )
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Artifact {self.name!r}: write_file() got {os.fspath(path)!r}, which is not a file"
            )
        store = self._store_for(scope, "write_file()")
        values = scope.ctx._data
        record = store.write_artifact_file(
            values[CONDITION_KEY],
            values[REPLICATE_KEY],
            scope.step_name,
            self.name,
            path,
            move=move,  # type: ignore[arg-type]
        )
        self._committed(scope, record)
        return record

    def _check_declared(self, scope: ReplicateScope) -> None:
        if self.name not in scope.binding.outputs:
            raise ValueError(
                f"Artifact {self.name!r} is not declared in this experiment's outputs; "
                f"pass it in Experiment(outputs=[...]) so storage, resume and downstream "
                f"experiments know about it"
            )

    def _store_for(self, scope: ReplicateScope, call: str) -> Any:
        """The run's store, once the write is known to be allowed here."""
        binding = scope.binding
        self._check_declared(scope)
        if scope.owners is None:
            scope.owners = {}
            scope.records = []
        owner = scope.owners.setdefault((scope.step_name, self.name), scope.step_index)  # type: ignore[arg-type]
        if owner != scope.step_index:
            raise ValueError(
                f"Artifact {self.name!r} was already written by another step named "
                f"{scope.step_name!r} in this replicate; two steps with the same name "
                "cannot write the same artifact (rename one step class or function)"
            )
        store = binding.store
        if store is None:
            raise ArtifactStoreError(
                f"Artifact {self.name!r} was written ({call}) but no active plugin provides storage; pass a "
                "storage plugin such as crystallize_artifacts.ArtifactPlugin(root_dir='artifacts') in "
                "Experiment(..., plugins=[...])"
            )
        return store

    def _committed(self, scope: ReplicateScope, record: ArtifactRecord) -> None:
        binding = scope.binding
        if binding.on_write is not None:
            binding.on_write(
                experiment=binding.experiment, run=binding.run, artifact=self, record=record, ctx=scope.ctx
            )
        scope.records.append(record)  # type: ignore[union-attr]

    def load(self, path: str | os.PathLike[str]) -> Any:
        """Read an artifact with this artifact's ``loader`` (bytes by default).

        ``path`` is what ``artifact_datasource`` yields: a :class:`~pathlib.Path`,
        or a stored artifact of an object store (which becomes a local file when
        the loader asks for a path).
        """
        if self.loader is None:
            reader = getattr(path, "read_bytes", None)
            return reader() if reader is not None else Path(path).read_bytes()
        return self.loader(path if hasattr(path, "open") else Path(path))

    def __repr__(self) -> str:
        return f"Artifact({self.name!r})"


class ArtifactStream:
    """What :meth:`Artifact.open` returns: a binary file object that commits the artifact when closed.

    :ivar record: the :class:`~crystallize.plugin.ArtifactRecord` once committed.
    """

    def __init__(self, sink: Any, artifact: Artifact, scope: ReplicateScope) -> None:
        self._sink = sink
        self._artifact = artifact
        self._scope = scope
        self.record: ArtifactRecord | None = None
        self.write = sink.write  # the store's own write: no extra frame per call

    @property
    def name(self) -> str:
        return self._artifact.name

    @property
    def mode(self) -> str:
        return "wb"

    @property
    def closed(self) -> bool:
        return self.record is not None or getattr(self._sink, "closed", False)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._sink.tell()  # type: ignore[no-any-return]

    def flush(self) -> None:
        flush = getattr(self._sink, "flush", None)
        if flush is not None:
            flush()

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def close(self) -> None:
        """Commit the artifact, then tell ``on_artifact_write`` plugins."""
        if self.record is not None:
            return
        self._sink.close()
        record = self._sink.record
        if record is None:  # discarded before
            return
        self.record = record
        self._artifact._committed(self._scope, record)

    def discard(self) -> None:
        """Drop what was written; nothing is stored."""
        self._sink.discard()

    def __enter__(self) -> ArtifactStream:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()

    def __repr__(self) -> str:
        state = "committed" if self.record is not None else "open"
        return f"<ArtifactStream {self._artifact.name!r} ({state})>"
