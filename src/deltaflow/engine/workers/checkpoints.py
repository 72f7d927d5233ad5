"""Persistence on several workers: one checkpoint of all of them, one manifest.

Each worker records what its own inputs commit, as one worker does
(:class:`deltaflow.persistence.run.PersistentRun`): the inputs split by path on every worker,
the others on worker 0. Worker 0 decides when to checkpoint, as one worker would (a time it
processed and every output flushed: its own, and those the others write too, see below). It
then asks the others (``("checkpoint", number, time, final)``, sent after the time messages up
to ``time``, so each has processed exactly those times when it reads it); each stores the rows
its inputs gave up to ``time`` as its own chunks of that checkpoint and answers with them, its
offset frontiers and its outputs' positions (``("checkpointed", number, shares,
positions)``). Worker 0 stores its own chunks meanwhile and writes the
manifest — naming every worker's chunks and frontiers — only once all answered: a worker that
dies before answering fails the run and leaves the previous checkpoint the newest one.

A restart, on any number of workers, loads the checkpoint worker 0 chose (``("restore",
number)``) and answers ``("restored", number)`` once it has read it: worker 0 waits for every
answer, since the checkpoint it writes next may delete that manifest. Every worker reads all
of it and keeps its share under the new count: for an input split by path, the rows of the paths it now owns and their offsets (a file read by worker 1 of
two may be worker 0's of one); everything else goes to worker 0. The operators' state is not
stored but rebuilt by replaying the rows (see ``docs/persistence.md``): each worker replays
its share at one time worker 0 announces (``("replay", time, exchanges)``), and the exchanges
of that time give every partitioned operator the keys it owns under the new count. Operators
with a saved state (``deduplicate``) run on worker 0 and keep it there.

Outputs written on every worker (``placement.Placement.EVERY_WORKER``: Kafka) keep a position
per worker. Each worker tells worker 0, with its reports, the last time its writers made
durable; worker 0 checkpoints only times durable everywhere, each worker's answer carries its
writers' positions at that time, and worker 0 merges them into the manifest
(``Writer.merge_positions``). After a crash every worker reads the crashed run's tail of such
an output before any writes again (a worker confirms the restore only then) and skips what it
produces again; at a time every worker has finished, worker 0 asks each for what it skipped
(``("settle", names)`` / ``("settled", skipped)``) and settles the tail for all
(``KafkaWriter.settle_shared``): see ``io/kafka/_replay.py``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import polars as pl

from deltaflow.engine.workers.inputs import SplitInputHandle, WorkerShare
from deltaflow.engine.workers.placement import Placement
from deltaflow.engine.workers.transport import WorkerError
from deltaflow.persistence.checkpoints import SOURCE, Checkpoint, ChunkRef, decode_key
from deltaflow.persistence.recording import RecordingHandle
from deltaflow.persistence.run import PersistentRun

logger = logging.getLogger("deltaflow.workers")

#: What a worker answers for one input: its new chunks and its frontier.
Share = tuple[list[ChunkRef], dict[Any, Any]]


class RecordingSplitHandle(SplitInputHandle):
    """Worker 0's handle of an input split by path, recording what its own source pushed (as
    :class:`RecordingHandle` does) once the engine takes it."""

    def __init__(
        self, name: str, notify: Callable[[], None], peers: list[int], *, static: bool, tags: Any
    ) -> None:
        super().__init__(name, notify, peers, static=static)
        self._recorder = RecordingHandle(name, lambda: None, tags)

    def push(
        self,
        batch: pl.DataFrame,
        *,
        time: int | None = None,
        offsets: Any = None,
        consolidated: bool = False,
        more: bool = False,
    ) -> None:
        if batch.height == 0 and offsets is None:
            return
        with self._lock:  # the push and its sources are one step
            self._recorder.note_push(batch.height)
            super().push(batch, time=time, offsets=offsets, consolidated=consolidated, more=more)

    def take(self) -> list[Any]:
        with self._lock:
            before = list(self._pending)
            taken = super().take()
            count = len(before) - len(self._pending)  # all pending, or none (static input)
            for pushed in before[:count]:
                self._recorder.note_taken(pushed)
        return taken

    def drain(self) -> list[tuple[pl.DataFrame, pl.Series | None, Any]]:
        return self._recorder.drain()


def split_handle(
    persistence: PersistentRun | None,
    handle: Any,
    notify: Callable[[], None],
    peers: list[int],
    *,
    static: bool,
) -> SplitInputHandle:
    """Worker 0's handle for an input split by path, replacing ``handle`` (a recording one
    when the input is persisted)."""
    if persistence is None or not isinstance(handle, RecordingHandle):
        return SplitInputHandle(handle.name, notify, peers, static=static)
    replaced = RecordingSplitHandle(handle.name, notify, peers, static=static, tags=handle._tags)
    persistence.replace_handle(handle, replaced)
    return replaced


class WorkerCheckpoints:
    """This worker's part of the checkpoints of a run on several workers."""

    def __init__(self, persistence: PersistentRun, runtime: Any) -> None:
        self.persistence = persistence
        self.runtime = runtime
        self.mesh = runtime.mesh
        self.index: int = runtime.config.index
        self.count: int = runtime.config.count
        self.coordinator: bool = runtime.config.is_coordinator
        #: While worker 0 announces the replay time (``PartitionedRuntime._process``).
        self.replaying = False
        self._deferred: Callable[[], None] | None = None
        self._replay: list[tuple[int, pl.DataFrame]] = []
        # Worker 0: each other worker's latest frontier, per input.
        self._frontiers: dict[int, dict[str, dict[Any, Any]]] = {p: {} for p in self.mesh.peers}
        # The others: per input, the batches taken from it, waiting for their time.
        self._waiting: dict[str, collections.deque[Any]] = {}
        self._processed: set[int] = set()
        # Outputs written on every worker: worker 0 keeps, per output name, each other
        # worker's last reported (durable time, tail messages skipped), and the positions
        # they answered for a checkpoint; the others, what they reported last.
        self._outputs: dict[int, dict[str, tuple[int | None, int]]] = {
            p: {} for p in self.mesh.peers
        }
        self._positions: dict[int, dict[str, list[Any]]] = {}
        self._reported: dict[str, tuple[int | None, int]] = {}
        self._confirm: tuple[Any, ...] | None = None
        self._shared = {
            id(op.sink)
            for op, where in zip(runtime.operators, runtime._placement, strict=True)
            if where is Placement.EVERY_WORKER
        }
        persistence.peers = self

    # --- the restart -------------------------------------------------------------------------
    def load(self, store: Any) -> Checkpoint | None:
        """The checkpoint to restore: worker 0 finds the newest usable one and tells the
        others, which load that one (so all restore the same, whatever is written later)."""
        if self.coordinator:
            checkpoint: Checkpoint | None = store.load_latest()
            number = None if checkpoint is None else checkpoint.number
            self.mesh.broadcast(("restore", number))
            # Wait until every worker has read it: the next checkpoint this worker writes
            # (the start checkpoint, at once) may delete the manifest they are to read.
            for peer in self.mesh.peers:
                answer = self.mesh.receive(peer)
                if answer[0] != "restored" or answer[1] != number:
                    raise WorkerError(
                        f"worker 0: expected worker {peer} to confirm checkpoint {number}, "
                        f"got {answer[:2]!r}"
                    )
            return checkpoint
        message = self.mesh.receive(0)
        if message[0] != "restore":
            raise WorkerError(
                f"worker {self.index}: expected the checkpoint to restore from worker 0, "
                f"got {message[0]!r}"
            )
        if message[1] is None:
            self._confirm = ("restored", None)
            return None
        loaded: Checkpoint | None = store.load_latest(message[1])
        if loaded is None or loaded.number != message[1]:
            raise WorkerError(
                f"worker {self.index}: checkpoint {message[1]}, which worker 0 restores, "
                f"cannot be read here (is the persistence store shared by all workers?)"
            )
        self._confirm = ("restored", loaded.number)
        return loaded

    def confirm(self) -> None:
        """On a worker other than 0, once its outputs read what they need of the checkpoint
        (a crashed tail, see :meth:`settle`): tell worker 0 it restored. Worker 0 reads its own
        outputs' tails only then, and no worker writes before worker 0 has: all read the
        same tail."""
        confirm, self._confirm = self._confirm, None
        if confirm is not None:
            self.mesh.send(0, confirm)

    def own_share(
        self,
        persistent_id: str,
        session: Any,
        alive: pl.DataFrame | None,
        frontier: dict[Any, Any],
    ) -> tuple[pl.DataFrame | None, dict[Any, Any]]:
        """This worker's share of an input's restored rows and frontier under the current
        worker count: for an input split by path, the rows and offsets of the paths it owns
        (rows without a source: worker 0's); for any other input, all of them on worker 0."""
        share = getattr(session, "share", None)
        if share is None:
            return (alive, frontier) if self.coordinator else (None, {})
        owns = share.owns_offset_key  # a path (files, S3) or a (topic, partition) key
        if self.coordinator:  # the others' frontiers until they report their own
            for peer in self.mesh.peers:
                theirs = WorkerShare(peer, self.count).owns_offset_key
                self._frontiers[peer][persistent_id] = {
                    key: value for key, value in frontier.items() if theirs(key)
                }
        mine = {key: value for key, value in frontier.items() if owns(key)}
        if alive is None or alive.height == 0:
            return alive, mine
        sources = alive[SOURCE].unique().to_list()
        kept = [text for text in sources if text is not None and owns(decode_key(text))]
        keep = pl.col(SOURCE).is_in(kept)
        if self.coordinator:
            keep = keep | pl.col(SOURCE).is_null()
        return alive.filter(keep), mine

    def defer_replay(
        self, replay_or_emit: Callable[[], None], batches: list[tuple[int, pl.DataFrame]]
    ) -> None:
        """Keep the replay until the workers agreed on the plan: worker 0 runs
        ``replay_or_emit`` then; the others keep their ``batches`` for the replay time."""
        if self.coordinator:
            self._deferred = replay_or_emit
        else:
            self._replay = batches

    def run_deferred(self) -> None:
        """On worker 0: replay the checkpoint now (every worker its share)."""
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return
        self.replaying = True
        try:
            deferred()
        finally:
            self.replaying = False

    def replay_batches(self) -> list[tuple[int, pl.DataFrame]]:
        """On another worker: its share of the checkpoint, for the replay time."""
        batches, self._replay = self._replay, []
        return batches

    # --- worker 0 ----------------------------------------------------------------------------
    def ask(self, number: int, time: int, *, final: bool) -> None:
        """Ask every other worker for its part of checkpoint ``number`` (times up to
        ``time``)."""
        self.mesh.broadcast(("checkpoint", number, time, final))

    def collect(self, number: int) -> dict[str, list[Share]]:
        """Every other worker's answer for checkpoint ``number``, per input."""
        shares: dict[str, list[Share]] = {}
        for peer in self.mesh.peers:
            message = self.mesh.receive(peer)
            if message[0] != "checkpointed" or message[1] != number:
                raise WorkerError(
                    f"worker 0: expected worker {peer}'s part of checkpoint {number}, "
                    f"got {message[:2]}"
                )
            for persistent_id, (chunks, frontier) in message[2].items():
                shares.setdefault(persistent_id, []).append((chunks, frontier))
                self._frontiers[peer][persistent_id] = frontier
            for name, position in message[3].items():
                self._positions.setdefault(number, {}).setdefault(name, []).append(position)
        return shares

    # --- outputs written on every worker ----------------------------------------------------
    def shared_outputs(self) -> set[int]:
        """The ids of the sinks of the outputs written on every worker."""
        return self._shared

    def _watches(self) -> list[tuple[Any, Any]]:
        """The (sink, persistence's watch of its writer) of the outputs on every worker."""
        return [(sink, w) for sink, w in self.persistence._watches if id(sink) in self._shared]

    def positions(self, number: int | None) -> dict[str, list[Any]]:
        """On worker 0: the other workers' positions of the outputs written on every worker
        in their answers for checkpoint ``number`` (None: a checkpoint they were not asked
        for, which only worker 0's position makes: the start of a fresh run)."""
        answered = self._positions.pop(number, {}) if number is not None else {}
        return {watch.name: answered.get(watch.name, []) for _, watch in self._watches()}

    def durable_times(self) -> list[int | None]:
        """On worker 0: the last durable time each other worker reported for each output
        written on every worker (None: not reported yet, or holding back)."""
        names = [watch.name for _, watch in self._watches()]
        return [
            self._outputs[peer].get(name, (None, 0))[0]
            for peer in self.mesh.peers
            for name in names
        ]

    def note_outputs(self, peer: int, outputs: dict[str, tuple[int | None, int]]) -> None:
        """On worker 0 (the mesh's receiving thread): ``peer`` reported its writers' durable
        times and how much of a crashed tail each skipped."""
        self._outputs[peer] = {**self._outputs[peer], **outputs}

    def report_outputs(self) -> dict[str, tuple[int | None, int]] | None:
        """On a worker other than 0: what changed since the last report of its writers'
        durable times and skipped tail messages (None: nothing)."""
        changed: dict[str, tuple[int | None, int]] = {}
        for _, watch in self._watches():
            tail = getattr(watch.inner, "shared_tail", lambda: None)()
            state = (watch.durable_time(), tail.matched if tail is not None else 0)
            if self._reported.get(watch.name) != state:
                self._reported[watch.name] = changed[watch.name] = state
        return changed or None

    def settle(self, time: int | None, *, force: bool = False) -> None:
        """On worker 0, at a time every worker has finished (``time``): settle the crashed
        tails of the outputs written on every worker once due (every copy skipped somewhere,
        or the replay window over; ``force``: now, at the end of the run)."""
        due: list[Any] = []
        for _, watch in self._watches():
            tail = getattr(watch.inner, "shared_tail", lambda: None)()
            if tail is None:
                continue
            others = sum(self._outputs[p].get(watch.name, (None, 0))[1] for p in self.mesh.peers)
            if force or tail.settle_due(others):
                due.append(watch)
        if not due:
            return
        names = [watch.name for watch in due]
        self.mesh.broadcast(("settle", names))
        skipped: dict[str, list[list[int]]] = {name: [] for name in names}
        for peer in self.mesh.peers:
            message = self.mesh.receive(peer)
            if message[0] != "settled":
                raise WorkerError(
                    f"worker 0: expected worker {peer}'s part of a crashed tail, got {message[0]!r}"
                )
            for name in names:
                skipped[name].append(message[1].get(name, []))
        for watch in due:
            watch.inner.settle_shared(skipped[watch.name], time if time is not None else 0)

    def settle_here(self, message: tuple[Any, ...]) -> None:
        """On a worker other than 0: worker 0 settles the crashed tails of outputs ``names``:
        stop matching them and answer with the tail messages skipped here."""
        names = set(message[1])
        skipped = {
            watch.name: watch.inner.end_shared_replay()
            for _, watch in self._watches()
            if watch.name in names
        }
        self.mesh.send(0, ("settled", skipped))

    def frontiers(self, persistent_id: str) -> list[dict[Any, Any]]:
        """The other workers' latest frontiers of an input, for the manifest."""
        return [
            self._frontiers[peer][persistent_id]
            for peer in self.mesh.peers
            if self._frontiers[peer].get(persistent_id)
        ]

    def cancel(self) -> None:
        """The run did not end normally: no final checkpoint (the others stop waiting)."""
        with contextlib.suppress(WorkerError):
            self.mesh.broadcast(("no-checkpoint",))

    # --- the other workers -------------------------------------------------------------------
    def processed(self, time: int, batches: list[tuple[int, pl.DataFrame]]) -> None:
        """On a worker other than 0: ``batches`` were processed at ``time``. The batches its
        inputs gave the engine are taken when reported, before their time; they count for
        a checkpoint once processed (and an input's offsets once all before them are)."""
        self._processed.update(id(batch) for _, batch in batches)
        released: dict[str, list[Any]] = {}
        for entry in self.persistence._inputs:
            waiting = self._waiting.setdefault(entry.persistent_id, collections.deque())
            waiting.extend(entry.handle.drain())
            done = released.setdefault(entry.persistent_id, [])
            while waiting and (waiting[0][0].height == 0 or id(waiting[0][0]) in self._processed):
                record = waiting.popleft()
                self._processed.discard(id(record[0]))
                done.append(record)
        self.persistence.collect(time, released)

    def write_share(self, message: tuple[Any, ...]) -> None:
        """Worker 0 asked for this worker's part of a checkpoint: store its rows of the
        times up to the checkpointed one as chunks, and answer with them and the frontiers."""
        _, number, time, _final = message
        segments = self.persistence.take_segments(time)
        states = self.persistence.new_chunks(segments, number, suffix=f"-w{self.index}")
        for entry in self.persistence._inputs:
            entry.state.frontier = states[entry.persistent_id].frontier
        shares = {pid: (state.chunks, state.frontier) for pid, state in states.items()}
        positions = {watch.name: watch.position_at(time) for _, watch in self._watches()}
        self.mesh.send(0, ("checkpointed", number, shares, positions))

    def finish(self, commit: bool) -> None:
        """The run ended here: when it ended normally, answer worker 0's last requests, up
        to its final checkpoint (or its word that there is none). A replay
        (``SnapshotAccess.REPLAY``) writes no checkpoint: nothing to wait for."""
        if not commit or self.persistence.replays_outputs:
            return
        while True:
            message = self.mesh.receive(0)
            if message[0] == "no-checkpoint":
                return
            if message[0] != "checkpoint":
                raise WorkerError(
                    f"worker {self.index}: expected the final checkpoint from worker 0, "
                    f"got {message[0]!r}"
                )
            self.write_share(message)
            if message[3]:
                return
