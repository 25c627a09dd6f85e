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
import weakref
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystallize._context import CONDITION_KEY, REPLICATE_KEY
from crystallize._datasource import DataSource
from crystallize._names import check_name
from crystallize._portable import PortableCallable, portable
from crystallize.errors import ArtifactStoreError, ConfigurationError, ContextMutationError

if TYPE_CHECKING:
    from crystallize._context import FrozenContext
    from crystallize._experiment import Experiment
    from crystallize._records import ArtifactRecord, Run, Upstream

__all__ = [
    "pin_inputs",
    "Artifact",
    "ArtifactInput",
    "ArtifactLog",
    "ArtifactStream",
    "ReplicateScope",
    "current_scope",
    "default_loader",
    "default_writer",
]

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


def default_loader(path: Path) -> bytes:
    """The bytes of the file at ``path``: how an artifact without a ``loader`` is read."""
    return Path(path).read_bytes()


class Artifact(DataSource):
    """A named file that steps write, once per (condition, replicate, step).

    ``loader`` and ``writer`` may be lambdas: they are wrapped so that they
    pickle by value for process-based and distributed execution.

    An artifact is also a :class:`~crystallize.DataSource`: another
    experiment may take it as its ``datasource`` (or inside an
    :class:`~crystallize.ExperimentInput`) to read, for each replicate and
    condition, what the producer — the experiment declaring it in
    ``outputs=[...]`` — wrote, loaded with ``loader``. The graph links the two
    experiments from it.

    :param name: the file name (a single path segment, e.g. ``"model.bin"``).
    :param loader: ``loader(path) -> object``, used by :meth:`load`; reads
        bytes when omitted.
    :param writer: ``writer(object) -> bytes``, applied by :meth:`write`;
        without it :meth:`write` accepts only bytes-like data.
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
        self._replicates: int | None = None
        self._producers: list[weakref.ref[Experiment]] = []  # in order of declaration
        self._resolved: tuple[str, DataSource] | None = None  # (reading run's id, the producer's run)

    def write(self, data: Any) -> ArtifactRecord:
        """Store ``data`` for the current replicate, condition and step.

        The run's store commits the bytes; then plugins implementing
        ``on_artifact_write`` are told.

        :returns: the record of where it went.
        :raises RuntimeError: when called outside a running step.
        :raises TypeError: when ``data`` is not bytes and no ``writer`` was given.
        :raises ArtifactStoreError: when no plugin provides storage.
        """
        scope = _running_scope(self.name)
        self._check_declared(scope)
        payload = self.writer(data) if self.writer is not None else data
        if not isinstance(payload, _BYTES_LIKE):
            source = "its writer returned" if self.writer is not None else "write() got"
            raise TypeError(
                f"Artifact {self.name!r}: {source} {type(payload).__name__}, not bytes; "
                "write bytes, or declare Artifact(name, writer=callable_returning_bytes), "
                "or stream it with artifact.open('wb')"
            )
        return _commit(scope, self, payload)

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

    def _store_for(self, scope: ReplicateScope, call: str, *, declared: bool = True) -> Any:
        """The run's store, once the write is known to be allowed here.

        :param declared: check that the experiment declares this artifact
            (``ctx.artifacts.add`` writes files nobody declared).
        """
        binding = scope.binding
        if declared:
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

    # -- an artifact read as another experiment's input --------------------------------------

    @property
    def replicates(self) -> int | None:
        """The producer's replicate count (from its latest run), or the count set on this object."""
        if self._replicates is not None:
            return self._replicates
        if not self._producers:
            return None
        return self._reader().replicates

    @replicates.setter
    def replicates(self, value: int | None) -> None:
        self._replicates = value

    @property
    def params(self) -> dict[str, Any]:
        return {"artifact": self.name}

    @property
    def upstream(self) -> tuple[Upstream, ...]:
        """The experiment that declares this artifact in its outputs, when one does."""
        producer = self._producer(required=False)
        if producer is None:
            return ()
        from crystallize._records import Upstream

        step = _steps_holding(producer, self.name)
        return (Upstream(producer.key, producer.id, step[0] if len(step) == 1 else "", self.name),)

    def resolve(self) -> DataSource:
        """The producer's latest run of this artifact, loaded with ``loader`` for each replicate."""
        if self._producer(required=False) is None:
            return self  # read by a subclass's own fetch (or fails there, naming the fix)
        producer = self._producer()
        steps = _steps_holding(producer, self.name)
        how = f"read it with {producer.name or 'producer'}.artifact_datasource(step=..., name={self.name!r})"
        if not steps:  # written by name (ctx.artifacts.add), as crystallize-ml allowed: the store knows the step
            return ArtifactInput(self, producer.artifact_datasource(step=None, name=self.name).resolve())
        if len(steps) > 1:
            raise ConfigurationError(
                f"Artifact {self.name!r} of experiment {producer.key_label} is read as an input, but steps "
                f"{', '.join(map(repr, steps))} hold it; {how}"
            )
        source = producer.artifact_datasource(step=steps[0], name=self.name).resolve()
        return ArtifactInput(self, source)

    def fetch(self, ctx: FrozenContext) -> Any:
        """This artifact, loaded with ``loader``, as the producer wrote it for ``ctx``'s replicate and condition."""
        return self._reader().fetch(ctx)

    def _reader(self) -> DataSource:
        """The producer's latest run, resolved once per run of the reading experiment (each call outside one)."""
        scope = _SCOPE.get()
        run_id = None if scope is None else scope.binding.run.run_id
        cached = self._resolved
        if cached is not None and run_id is not None and cached[0] == run_id:
            return cached[1]
        reader = self.resolve()
        if reader is self:
            raise ConfigurationError(
                f"Artifact {self.name!r} is read as an input but no experiment declares it in "
                "outputs=[...]; declare it in its producer's Experiment(outputs=[...])"
            )
        if run_id is not None:
            self._resolved = (run_id, reader)
        return reader

    def _producer(self, required: bool = True) -> Experiment | None:
        """The experiment declaring this artifact: the latest one declared, of one storage key.

        An experiment rebuilt under the same name (a notebook cell run again)
        replaces the earlier one; experiments stored under different names
        make the artifact ambiguous.
        """
        producers = [p for p in (ref() for ref in self._producers) if p is not None]
        if not producers:
            if required:
                raise ConfigurationError(
                    f"Artifact {self.name!r} is read as an input but no experiment declares it in outputs=[...]"
                )
            return None
        keys = {p.key for p in producers}
        if len(keys) > 1:
            names = ", ".join(sorted(p.key_label for p in producers))
            raise ConfigurationError(
                f"Artifact {self.name!r} is read as an input but several experiments declare it ({names}); "
                "read it with <producer>.artifact_datasource(step=..., name=...) instead"
            )
        return producers[-1]

    def _declared_by(self, experiment: Experiment) -> None:
        """Called by ``Experiment(outputs=[...])``: ``experiment`` produces this artifact."""
        self._producers = [r for r in self._producers if r() is not None and r() is not experiment]
        self._producers.append(weakref.ref(experiment))
        self._resolved = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_producers"] = None  # producers stay in the process that declared them (what they stored
        return state  # travels as the pinned reader, _resolved, see pin_inputs)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._producers = []

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


def pin_inputs(experiment: Experiment, run: Run) -> None:
    """Resolve, once and in the main process, the other experiments' artifacts the steps hold to read.

    A step may hold an artifact another experiment declares and read it with
    ``artifact.fetch(ctx)``. Resolving it here pins the producer's run for
    this run and lets worker processes, which do not have the producer,
    read it too.
    """
    from crystallize._validation import held_artifacts

    for step in experiment.pipeline.steps:
        for artifact in held_artifacts(step):
            if artifact.name not in experiment.outputs and artifact._producer(False) is not None:
                artifact._resolved = (run.run_id, artifact.resolve())


def _steps_holding(producer: Experiment, name: str) -> list[str]:
    from crystallize._validation import artifacts_held_by

    if producer.pipeline is None:
        return []
    return sorted({step.step_name for step in producer.pipeline.steps if name in artifacts_held_by(step)})


class ArtifactInput(DataSource):
    """An :class:`Artifact` read from its producer's run: each replicate gets the loaded file."""

    def __init__(self, artifact: Artifact, source: DataSource) -> None:
        self.artifact = artifact
        self.source = source

    @property
    def params(self) -> dict[str, Any]:
        return {"artifact": self.artifact.name, "source": self.source.params}

    @property
    def replicates(self) -> int | None:
        return self.source.replicates

    @property
    def upstream(self) -> tuple[Upstream, ...]:
        return self.source.upstream

    def prepare(self, run: Run) -> None:
        self.source.prepare(run)

    def fetch(self, ctx: FrozenContext) -> Any:
        return self.artifact.load(self.source.fetch(ctx))

    def __repr__(self) -> str:
        return f"ArtifactInput({self.artifact!r}, {self.source!r})"


def default_writer(data: Any) -> bytes:
    """Bytes as they are, text as UTF-8: ``Artifact(name, writer=default_writer)``.

    :raises TypeError: for anything else, naming its type.
    """
    if isinstance(data, _BYTES_LIKE):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    raise TypeError(f"default_writer writes bytes or str, got {type(data).__name__}; give the artifact a writer")


def _running_scope(name: str) -> ReplicateScope:
    scope = _SCOPE.get()
    if scope is None or scope.step_name is None:
        raise RuntimeError(
            f"Artifact {name!r}: write() was called outside a running pipeline step; "
            "artifacts can only be written by a step while Experiment.run() executes it"
        )
    return scope


def _commit(
    scope: ReplicateScope, artifact: Artifact, payload: bytes | bytearray | memoryview, *, declared: bool = True
) -> ArtifactRecord:
    """Write ``payload`` through the run's store for the scope's replicate and step, then tell plugins."""
    store = artifact._store_for(scope, "write()", declared=declared)
    values = scope.ctx._data
    record = store.write_artifact(
        values[CONDITION_KEY],
        values[REPLICATE_KEY],
        scope.step_name,  # type: ignore[arg-type]
        artifact.name,
        payload if isinstance(payload, bytes) else bytes(payload),
    )
    artifact._committed(scope, record)
    return record


class ArtifactLog:
    """Files a step adds with ``ctx.artifacts.add(name, data)`` (crystallize-ml's way of writing artifacts).

    Inside a running step, ``add`` writes the file at once, through the run's
    store, exactly as a declared :class:`Artifact`'s ``write`` would (under
    ``replicate_<r>/<condition>/<step>/<name>``). Outside an experiment it
    only keeps the data (``Pipeline.run`` in a test). Either way a name can be
    added once per step: a second ``add`` raises
    :class:`~crystallize.errors.ContextMutationError`. ``len()`` and iteration
    see the current step's files only.
    """

    __slots__ = ("_items", "_step")

    def __init__(self) -> None:
        self._items: dict[str, bytes] = {}
        self._step: tuple[int, int] | None = None

    def _sync(self) -> ReplicateScope | None:
        scope = _SCOPE.get()
        if scope is not None and scope.step_name is not None:
            step = (id(scope), scope.step_index)
            if step != self._step:  # a new step: its log starts empty
                self._items = {}
                self._step = step
            return scope
        return None

    def add(self, name: str, data: bytes | bytearray | memoryview | str) -> None:
        """Add (inside a running step: write) the file ``name`` holding ``data`` (bytes, or text as UTF-8)."""
        check_name(name, "artifact")
        scope = self._sync()
        if name in self._items:
            raise ContextMutationError(f"Artifact {name!r} was already added by this step; add each file once")
        payload = default_writer(data)
        if scope is not None:
            _commit(scope, Artifact(name), payload, declared=False)
        self._items[name] = payload

    def clear(self) -> None:
        """Forget the files added so far (files already written stay written)."""
        self._items = {}

    def get(self, name: str) -> bytes | None:
        """The data added under ``name`` by the current step, or ``None``."""
        self._sync()
        return self._items.get(name)

    def __contains__(self, name: object) -> bool:
        self._sync()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._sync()
        return iter(list(self._items))

    def __len__(self) -> int:
        self._sync()
        return len(self._items)

    def __repr__(self) -> str:
        return f"ArtifactLog({list(self._items)!r})"
