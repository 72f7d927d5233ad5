"""Persistence during one run: replay the last checkpoint, record inputs, write checkpoints.

The engine calls four hooks (see :class:`deltaflow.engine.runtime.Runtime`):

* :meth:`PersistentRun.handle` gives every input a :class:`RecordingHandle`, which remembers
  each committed batch — and, per row, the source part (file, object) it came from — until the
  engine has taken and processed it;
* :meth:`PersistentRun.start`, before any source starts, loads the newest complete checkpoint,
  pushes each input's snapshot through the operators as the first time with every sink muted
  (the outputs of that data were written by an earlier run), gives each input session the
  state it needs to retract rows of parts that changed since, and arranges for its reader to
  be positioned after the checkpointed frontier (``Reader.seek``);
* :meth:`PersistentRun.tick`, at every turn of the time loop, collects what the engine has
  processed and writes a checkpoint of every processed time that every output has flushed
  (no more often than ``snapshot_interval_ms``);
* :meth:`PersistentRun.finish` writes the final checkpoint when the run ends normally.

Only inputs fed by an :class:`~deltaflow.io._core.input_session.InputSession` are persisted;
other sources (``pw.debug`` tables) are static and simply run again. With
``SELECTIVE_PERSISTING`` only the inputs given a ``name=`` are.

Operators whose state cannot be rebuilt by the replay (``deduplicate``) save it in the same
checkpoints (:mod:`deltaflow.persistence.operators`); a restored operator emits its rows at
the replay time, or at time 0 when there is nothing to replay.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time as _time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import Sink, Source, SourceHandle
from deltaflow.io._core.input_session import InputSession
from deltaflow.io._core.output_session import OutputSession
from deltaflow.persistence.checkpoints import (
    SOURCE,
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    InputState,
    OperatorState,
    current_rows,
    decode_key,
    fallback_for,
)
from deltaflow.persistence.config import Config, SnapshotAccess
from deltaflow.persistence.operators import OperatorStates, persisted_operators
from deltaflow.persistence.recording import FlushWatch, RecordingHandle, check_reader
from deltaflow.persistence.storage import open_storage

logger = logging.getLogger("deltaflow.persistence")

COMPACT_AFTER_CHUNKS = 32
"""An input's snapshot is rewritten as one chunk of its current rows past this many chunks."""


def make_persistence(persistence_config: Any, caller: str = "pw.run") -> PersistentRun | None:
    """The persistence side of a run for ``persistence_config``, or None (no config, or
    ``UDF_CACHING``, which keeps only UDF disk caches: see ``deltaflow.udfs.context``)."""
    if persistence_config is None:
        return None
    if not isinstance(persistence_config, Config):
        raise TypeError(
            f"{caller}: persistence_config must be a pw.persistence.Config, got "
            f"{type(persistence_config).__name__}"
        )
    if persistence_config.persistence_mode.name == "UDF_CACHING":
        return None
    return PersistentRun(persistence_config)


# --- inputs -----------------------------------------------------------------------------------
@dataclass
class _Input:
    persistent_id: str
    session: InputSession
    handle: RecordingHandle
    columns: list[str]
    state: InputState


@dataclass
class _Segment:
    """What the engine processed up to ``time`` and no checkpoint holds yet."""

    time: int
    frames: dict[str, list[pl.DataFrame]] = field(default_factory=dict)
    frontiers: dict[str, dict[Any, Any]] = field(default_factory=dict)


class _Muted(Sink):
    name = "muted"

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        """Drop the outputs of replayed data."""


# --- the run ----------------------------------------------------------------------------------
class PersistentRun:
    """The persistence side of one ``pw.run``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = CheckpointStore(open_storage(config.backend))
        self.interval_s = config.snapshot_interval_ms / 1000.0
        self._inputs: list[_Input] = []
        self._ids: set[str] = set()
        self._segments: list[_Segment] = []
        self._watches: list[tuple[OutputSession, FlushWatch]] = []
        self._last: Checkpoint | None = None
        self._previous: Checkpoint | None = None
        self._next_number = 1
        self._last_write = 0.0
        self._operators: OperatorStates | None = None
        self._checkpoint: Checkpoint | None = None
        self._prepared = False
        self._collected_time: int | None = None
        #: On several workers, this worker's part of the checkpoint protocol (set by
        #: :class:`deltaflow.engine.workers.checkpoints.WorkerCheckpoints`); None on one.
        self.peers: Any = None

    # --- hooks -----------------------------------------------------------------------------
    def handle(self, source: Source, name: str, notify: Callable[[], None]) -> SourceHandle:
        """The handle the engine gives ``source`` (a recording one for persisted input
        sessions)."""
        if not isinstance(source, InputSession) or (
            self.config.persists_only_named and not source.named
        ):
            return SourceHandle(name, notify)
        tags: collections.deque[tuple[Hashable | None, int]] = collections.deque()
        handle = RecordingHandle(name, notify, tags)
        persistent_id = source.name
        count = 2
        while persistent_id in self._ids:  # two unnamed inputs with one default name: numbered
            persistent_id = f"{source.name}#{count}"
            count += 1
        self._ids.add(persistent_id)
        columns = [ID, *source.columns, DIFF]
        self._inputs.append(
            _Input(persistent_id, source, handle, columns, InputState(columns=columns))
        )
        source.source_tags = tags
        return handle

    def replace_handle(self, old: SourceHandle, new: SourceHandle) -> None:
        """The engine replaced an input's handle (``old``) by ``new``, which records alike."""
        for entry in self._inputs:
            if entry.handle is old:
                entry.handle = new  # type: ignore[assignment]

    def prepare(self, runtime: Any) -> None:
        """Before any output starts: load the newest usable checkpoint and tell each output
        where it stood then (:meth:`Writer.resume`), so it can drop what it wrote after."""
        from deltaflow.engine.operators import OutputOperator

        self._prepared = True
        if self.peers is not None:  # every worker restores the checkpoint worker 0 chose
            self._checkpoint = self.peers.load(self.store)
        else:
            self._checkpoint = self.store.load_latest()
        # Names from every output (a worker other than 0 runs only some: they must be named
        # as on worker 0).
        names: dict[int, str] = {}
        for op in runtime.operators:
            sink = op.sink if isinstance(op, OutputOperator) else None
            if not isinstance(sink, OutputSession):
                continue
            name, count = sink.name, 2
            while name in names.values():  # two outputs with one name: number them in order
                name = f"{sink.name}#{count}"
                count += 1
            names[id(sink)] = name
        shared = self.peers.shared_outputs() if self.peers is not None else set()
        for sink in runtime.sinks:
            if not isinstance(sink, OutputSession):
                continue
            name = names[id(sink)]
            watch = FlushWatch(sink.writer, name)
            # Written on every worker: each worker's writer matches a crashed tail, which
            # worker 0 settles for all (see ``WorkerCheckpoints.settle``).
            watch.inner.shared_replay = id(sink) in shared
            sink.writer = watch
            self._watches.append((sink, watch))
            # After a crash the outputs continue from where the checkpoint left them; after a
            # run that ended normally they start afresh (a new file per run, as in Pathway).
            if (
                self._checkpoint is not None
                and not self._checkpoint.final
                and not self.replays_outputs
                and name in self._checkpoint.sinks
            ):
                position = self._checkpoint.sinks[name]
                watch.checkpointed = position
                watch.resumed = True
                watch.inner.resume(position)
        if self.peers is not None:  # read before any worker writes again (see ``load``)
            self.peers.confirm()

    def start(self, runtime: Any) -> None:
        """Replay the loaded checkpoint with sinks muted, prepare the readers."""
        if not self._prepared:
            self.prepare(runtime)
        checkpoint = self._checkpoint
        replay: list[tuple[int, pl.DataFrame]] = []
        handles = [handle for _, handle in runtime.inputs]
        # A worker other than 0 runs only the inputs split by path: it keeps only those.
        self._inputs = [entry for entry in self._inputs if entry.handle in handles]
        anywhere = False  # whether the checkpoint holds rows (on any worker's share)
        for entry in self._inputs:
            session = entry.session
            session.reader_check = lambda reader, n=session.name: check_reader(n, reader)
            stored = checkpoint.inputs.get(entry.persistent_id) if checkpoint else None
            if stored is None:
                continue
            if stored.columns != entry.columns:
                raise CheckpointError(
                    f"persistence: input {entry.persistent_id!r} was checkpointed with "
                    f"columns {stored.columns[1:-1]} but now has {entry.columns[1:-1]}; "
                    f"use a new persistence directory (or the old schema)"
                )
            frontier = dict(stored.frontier)
            rows = self.store.read_rows(stored)
            alive = current_rows(rows) if rows is not None else None
            anywhere = anywhere or (alive is not None and alive.height > 0)
            if self.peers is not None:  # this worker's share of the rows and of the offsets
                alive, frontier = self.peers.own_share(
                    entry.persistent_id, session, alive, frontier
                )
            entry.state = InputState(stored.columns, list(stored.chunks), frontier)
            if alive is not None and alive.height:
                replay.append((handles.index(entry.handle), alive.drop(SOURCE)))
                session.restored = _by_source(alive)
            session.seek_to = frontier or None
        if checkpoint is not None:
            self._last = checkpoint
            self._previous = self.store.fallback
            self._next_number = checkpoint.number + 1
            logger.info(
                "persistence: resuming from checkpoint %d (%d input rows replayed)",
                checkpoint.number,
                sum(b.height for _, b in replay),
            )
        from deltaflow.engine.times import even_now_ms

        operators = persisted_operators(
            runtime.operators, only_named=self.config.persists_only_named
        )
        replay_time = even_now_ms() if anywhere else 0
        restored = False
        if self.peers is None or self.peers.coordinator:  # operators with state: on worker 0
            self._operators = OperatorStates(self.store, operators)
            restored = self._operators.restore(checkpoint, replay_time)
        self.store.release_loaded()

        def replay_or_emit() -> None:
            if anywhere:  # REPLAY access (deltaflow replay) sends the results to the outputs
                _replay(runtime, replay, replay_time, muted=not self.replays_outputs)
            elif restored:
                _emit_restored(runtime)

        if self.peers is not None:  # once the workers agreed on the plan; each its own rows
            self.peers.defer_replay(replay_or_emit, replay)
        else:
            replay_or_emit()
        if self.peers is not None and not self.peers.coordinator:
            return
        if not self.replays_outputs and (checkpoint is None or checkpoint.final):
            self._write_start_checkpoint()
        if not self.config.continue_after_replay:
            runtime.stop()

    def _write_start_checkpoint(self) -> None:
        """A fresh start (no checkpoint, or the last run ended): before anything is output,
        record where every output starts. A crash before the first periodic checkpoint
        then resumes from here and removes what the crashed run wrote (without it, those
        rows would be written twice: nothing would say they belong to the crashed run)."""
        for _, watch in self._watches:
            if not watch.resumed:
                watch.checkpointed = watch.inner.position()
        self._write([], ask=False)  # other workers have nothing new yet

    def tick(self, last_time: int | None) -> None:
        """Collect what the engine processed; checkpoint what every output flushed."""
        if last_time is None:
            return
        self.collect(
            last_time, {entry.persistent_id: entry.handle.drain() for entry in self._inputs}
        )
        if self.peers is not None and self.peers.coordinator:  # a crashed tail, once due
            self.peers.settle(last_time)
        if self._segments and _time.monotonic() - self._last_write >= self.interval_s:
            flushed = self._flushed_time()
            ready = [s for s in self._segments if flushed is None or s.time <= flushed]
            if ready:
                self._write(ready)

    def collect(
        self, last_time: int, taken: dict[str, list[tuple[pl.DataFrame, pl.Series | None, Any]]]
    ) -> None:
        """Keep, as processed up to ``last_time``, the batches (rows, their sources, the
        offsets after them) each input gave the engine since the last call."""
        segment = _Segment(last_time)
        for entry in self._inputs:
            for batch, sources, offsets in taken.get(entry.persistent_id, []):
                if batch.height:
                    frame = batch.select(entry.columns)
                    frame = frame.with_columns(
                        sources
                        if sources is not None
                        else pl.lit(None, dtype=pl.Utf8).alias(SOURCE)
                    )
                    segment.frames.setdefault(entry.persistent_id, []).append(frame)
                if offsets is not None:
                    segment.frontiers[entry.persistent_id] = dict(offsets)
        new_time = last_time != self._collected_time
        self._collected_time = last_time
        if segment.frames or segment.frontiers:
            self._segments.append(segment)
        elif (
            self._operators is not None
            and self._operators.has_unsaved_changes()
            and (not self._segments or self._segments[-1].time != last_time)
        ):
            self._segments.append(segment)  # only operator states changed up to last_time
        elif new_time and self.peers is not None and self.peers.coordinator:
            self._segments.append(segment)  # other workers may have rows of this time

    def finish(self, last_time: int | None, *, commit: bool) -> None:
        """The run is over: write the final checkpoint if it ended normally; undo the
        changes made to sessions and sinks for this run."""
        try:
            if self.peers is not None and not self.peers.coordinator:
                self.peers.finish(commit)
            elif commit:
                self.tick(last_time)
                # Every output was closed, so everything is flushed. The final checkpoint is
                # written even with nothing new: it marks the run as ended, so the next run
                # starts its outputs afresh instead of continuing them (as after a crash).
                self._write(self._segments, final=True)
            elif self.peers is not None:
                self.peers.cancel()  # the other workers wait for a final checkpoint
        finally:
            for entry in self._inputs:
                entry.session.source_tags = None
                entry.session.restored = None
                entry.session.seek_to = None
                entry.session.reader_check = None
            for sink, watch in self._watches:
                sink.writer = watch.inner
                watch.inner.persisted = False

    # --- writing ---------------------------------------------------------------------------
    def _flushed_time(self) -> int | None:
        """The last time every output session flushed (None: there are none to wait for)."""
        if not self._watches:
            return None
        times = [watch.durable_time() for _, watch in self._watches]
        if self.peers is not None:  # the outputs the other workers write too
            times.extend(self.peers.durable_times())
        if any(t is None for t in times):
            return -1
        return min(t for t in times if t is not None)

    @property
    def replays_outputs(self) -> bool:
        """A REPLAY run (``deltaflow replay``) sends the replayed data's results to the
        outputs and leaves the recording as it was: it writes no checkpoint."""
        return self.config.snapshot_access is SnapshotAccess.REPLAY

    def new_chunks(
        self, segments: list[_Segment], number: int, suffix: str = ""
    ) -> dict[str, InputState]:
        """Phase one for this process: each input's rows of ``segments`` stored as one chunk
        of checkpoint ``number`` (the chunk only), and its frontier after them."""
        states: dict[str, InputState] = {}
        for entry in self._inputs:
            pid = entry.persistent_id
            state = InputState(entry.columns, [], dict(entry.state.frontier))
            frames = [f for s in segments for f in s.frames.get(pid, [])]
            if frames:
                frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
                state.chunks.append(self.store.write_chunk(pid, number, frame, suffix))
            for segment in segments:
                if pid in segment.frontiers:
                    state.frontier = segment.frontiers[pid]
            states[pid] = state
        return states

    def take_segments(self, up_to: int) -> list[_Segment]:
        """The collected segments of times up to ``up_to``, now no longer kept."""
        ready = [s for s in self._segments if s.time <= up_to]
        self._segments = [s for s in self._segments if s.time > up_to]
        return ready

    def _write(self, segments: list[_Segment], *, final: bool = False, ask: bool = True) -> None:
        if self.replays_outputs:
            self._segments = []
            return
        if segments:
            time = segments[-1].time
        elif self._last is not None and self._last.time is not None:
            time = self._last.time
        else:
            time = 0
        number = self._next_number
        if self.peers is not None and ask:  # the other workers write theirs meanwhile
            self.peers.ask(number, time, final=final)
        states = self.new_chunks(segments, number)
        shares = self.peers.collect(number) if self.peers is not None and ask else {}
        for entry in self._inputs:
            pid = entry.persistent_id
            state = states[pid]
            state.chunks = [*entry.state.chunks, *state.chunks]
            if self.peers is not None:  # the other workers' new chunks and frontiers
                for chunks, _ in shares.get(pid, []):
                    state.chunks.extend(chunks)
                state.others = self.peers.frontiers(pid)
            if len(state.chunks) > COMPACT_AFTER_CHUNKS:
                rows = self.store.read_rows(state)
                assert rows is not None
                state.chunks = [
                    self.store.write_chunk(pid, number, current_rows(rows), suffix="-compact")
                ]
            states[pid] = state
        operators = self._operators.write(number, time) if self._operators is not None else None
        listed: list[InputState | OperatorState] = [*states.values(), *(operators or {}).values()]
        keys = {c.key for state in listed for c in state.chunks}
        previous = self._previous = fallback_for(keys, self._last, self._previous)
        sinks = {watch.name: watch.position_at(time) for _, watch in self._watches}
        if self.peers is not None:  # outputs written on every worker: one merged position
            for name, positions in self.peers.positions(number if ask else None).items():
                watch = next(w for _, w in self._watches if w.name == name)
                sinks[name] = watch.inner.merge_positions([sinks[name], *positions], time)
        self._last = self.store.commit(
            number, time, states, previous, operators, sinks, final=final
        )
        for entry in self._inputs:
            entry.state = states[entry.persistent_id]
            if entry.state.frontier:  # e.g. a replication slot may now forget what it holds
                entry.session.checkpointed(entry.state.frontier)
        self._next_number = number + 1
        self._last_write = _time.monotonic()
        done = {id(s) for s in segments}
        self._segments = [s for s in self._segments if id(s) not in done]
        logger.debug("persistence: checkpoint %d written at time %d", number, time)


def _by_source(alive: pl.DataFrame) -> list[tuple[Hashable | None, pl.DataFrame]]:
    """The alive rows of an input grouped by the source part they came from."""
    if alive[SOURCE].null_count() == alive.height:
        return [(None, alive.drop(SOURCE))]
    groups = []
    for (key,), rows in alive.group_by(SOURCE, maintain_order=True):
        groups.append((decode_key(key), rows.drop(SOURCE)))
    return groups


def _emit_restored(runtime: Any) -> None:
    """Nothing to replay, but restored operators: their rows go out at time 0 (as in Pathway,
    where restored state belongs to the first time). The run's own times stay as they are:
    a static table's rows at time 0 are processed at time 0 too (and ignored by the restored
    operators, as a replay)."""
    runtime._process(0, [])
    runtime.last_time = None


def _replay(
    runtime: Any, batches: list[tuple[int, pl.DataFrame]], time: int, *, muted: bool = True
) -> None:
    """Process the snapshot as the run's first time, with no output reaching a sink unless
    ``muted`` is false."""
    if not muted:
        runtime._process(time, batches)
        return
    with muted_outputs(runtime):
        runtime._process(time, batches)


@contextlib.contextmanager
def muted_outputs(runtime: Any) -> Iterator[None]:
    """No output of ``runtime`` reaches its sink meanwhile (the replay of a checkpoint, whose
    outputs an earlier run wrote)."""
    from deltaflow.engine.operators import OutputOperator

    outputs = [op for op in runtime.operators if isinstance(op, OutputOperator)]
    sinks, real = runtime.sinks, [op.sink for op in outputs]
    silent = _Muted()
    for op in outputs:
        op.sink = silent
    runtime.sinks = []
    try:
        yield
    finally:
        runtime.sinks = sinks
        for op, sink in zip(outputs, real, strict=True):
            op.sink = sink
