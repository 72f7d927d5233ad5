"""The engine loop of one worker among several.

Every worker compiles the same plan into the same operators (the program builds the same
graph in each process). Worker 0, the *coordinator*, runs the sources and the sinks and the
usual loop (``Runtime._loop``): it decides every time, exactly as one worker would, and
before processing a time tells the others (``("time", time, exchanges, commits)``). The
others only follow: they process the times they are told, in the same order, so all workers
agree on which times exist (the progress protocol: one coordinator, FIFO connections, no time
is ever processed by some workers and not others). A minibatch is never split across times:
the coordinator gives it a time before any of it moves.

Within a time, each worker runs the operators in topological order; at an operator that
needs rows from other workers (see ``placement``), the deltas are exchanged first:
partitioned operators get the rows of their share of the keys from everyone, operators run on
worker 0 get every worker's rows (``exchange``). At a behavior's gate shared by the workers,
a round of summaries follows, so that each worker finishes the gate's step with the frontier
of the whole input, and all ask for the same times (``TimeGateOperator.prepare`` /
``conclude``). Parts coming from several workers are consolidated, so an
operator sees one consolidated delta per time, as with one worker, and a sink (on worker 0)
gets each time's changes consolidated once.

Times in flight. The coordinator does not wait for a time to be done everywhere before it
announces the next: up to ``DELTAFLOW_WORKERS_TIMES_IN_FLIGHT`` times (default 3, see
``progress``) are in flight at once, each a cursor over the operators (``TimeInFlight``).
On every worker a time runs an operator only once the time before it ran it, so each
operator sees its times in order, as with one worker; the one thing a time may do ahead is
send its parts at an exchanging operator the time before still waits at (that does not touch
the operator), which is what lets worker 0 split and send time ``t + 1`` while the others
still reduce ``t``. Outputs run only for the oldest time in flight, which ends (the sinks'
``on_time_end``) before the next one's rows reach them: outputs get each time's changes once,
whole, in time order, and a time's output on worker 0 waits for the rows of every worker.
Rows arriving from a peer are kept by ``(peer, time, operator)`` until asked for
(``progress.Mailbox``). Lock step (one time in flight) is kept where a time depends on the
ones before it being done: persisted runs (a checkpoint is a cut after whole times),
operators asking for times of their own, and errors kept as values.
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

from deltaflow import plan
from deltaflow.engine.boundary import sink_errors
from deltaflow.engine.operators import InputOperator, OutputOperator
from deltaflow.engine.runtime import Runtime
from deltaflow.engine.workers.checkpoints import WorkerCheckpoints, split_handle
from deltaflow.engine.workers.config import WorkerConfig
from deltaflow.engine.workers.exchange import Exchange
from deltaflow.engine.workers.inputs import (
    HeldCommits,
    RemoteCommit,
    SplitInputHandle,
    WorkerShare,
    splits,
)
from deltaflow.engine.workers.placement import (
    KeyHasher,
    Placement,
    is_summarized_gate,
    partition_hashers,
    place_operators,
)
from deltaflow.engine.workers.progress import (
    Mailbox,
    TimeInFlight,
    check_same_plan,
    merge_parts,
    window_size,
)
from deltaflow.engine.workers.transport import WorkerError, mesh_for
from deltaflow.errors import keeps_errors, without_unhandled_errors
from deltaflow.persistence.run import muted_outputs

logger = logging.getLogger("deltaflow.workers")


class PartitionedRuntime(Runtime):
    """One worker's part of a run on ``config.count`` workers."""

    def __init__(
        self,
        outputs: Sequence[plan.OutputNode],
        *,
        config: WorkerConfig,
        monitoring: Any = None,
        persistence: Any = None,
    ) -> None:
        self.config = config
        coordinator = config.is_coordinator
        super().__init__(
            outputs, monitoring=monitoring if coordinator else None, persistence=persistence
        )
        keeping_errors = keeps_errors()
        self._hashers: list[list[KeyHasher] | None] = [
            partition_hashers(op, keeping_errors, persisted=persistence is not None)
            for op in self.operators
        ]
        # Inputs read on every worker, each its share (see ``inputs``).
        split = {
            self._index[op.node.uid]
            for op, _ in self.inputs
            if splits(op.node.source) and op.node.uid not in self._log_inputs()
        }
        # Where each operator runs, and whether its output may have rows on any worker
        # (else only on worker 0).
        self._placement, self._spread = place_operators(
            self.operators, self._hashers, self._inputs_of, split, persisted=persistence is not None
        )
        # Only partitioned operators split rows by key (a gate may be placed otherwise).
        self._hashers = [
            keyed if where is Placement.PARTITIONED else None
            for keyed, where in zip(self._hashers, self._placement, strict=True)
        ]
        # The behaviors' gates whose workers exchange summaries at each time (see
        # ``placement.is_summarized_gate``).
        self._summarized_gates = frozenset(
            position
            for position, op in enumerate(self.operators)
            if is_summarized_gate(op) and self._placement[position] is not Placement.SINGLE
        )
        # Operators whose inputs move between workers before they run (and those gates).
        self._exchanging = set(self._summarized_gates) | {
            position
            for position, where in enumerate(self._placement)
            if where is Placement.PARTITIONED
            or (
                where is Placement.SINGLE
                and any(self._spread[i] for i in self._inputs_of[position])
            )
        }
        self._consumers: dict[int, list[int]] = {}
        for position, inputs in enumerate(self._inputs_of):
            for i in inputs:
                self._consumers.setdefault(i, []).append(position)
        # Parts of a time stream straight to sinks on worker 0; with workers, times are whole.
        for _, handle in self.inputs:
            handle.accepts_parts = False
        self._part_paths = {}
        self.mesh = mesh_for(config)
        self.mesh.runs += 1
        self._run_number = self.mesh.runs
        self._checkpoints = None if persistence is None else WorkerCheckpoints(persistence, self)
        self._split_handles: dict[int, SplitInputHandle] = {}
        self._set_up_split_inputs(split)
        self._exchange = Exchange(
            config,
            self.mesh,
            self.operators,
            self._placement,
            self._hashers,
            self._spread,
            self._inputs_of,
        )
        # Times in flight (see the module's docstring), oldest first. In lock step (a window
        # of 1) with persistence (a checkpoint's cut), operators asking for times of their
        # own (their request depends on the times before) and errors kept as values (a
        # time's errors are flushed into the log tables when it ends).
        self._window = (
            1 if persistence is not None or self._self_timed or keeping_errors else window_size()
        )
        self._flight: collections.deque[TimeInFlight] = collections.deque()
        self._mailbox = Mailbox(self.mesh, config.index)
        # Streaming inputs read on every worker, whose live commits the other workers join
        # to the live times worker 0 announces (see ``inputs.HeldCommits``); not in lock
        # step (so not with persistence, where every commit keeps the time worker 0 gave it).
        self._joins = frozenset(
            () if self._window == 1 else (p for p in split if not self._static_at(p))
        )
        self._live_time: int | None = None
        self.most_in_flight = 0
        self.commits_joined = 0  # commits of this worker joined to a time (see HeldCommits)
        self.times_processed = 0
        self.split_rows = 0  # rows this worker's share of the split inputs gave
        self.partitioned_rows = 0  # rows this worker's partitioned operators ran on
        self.written_rows = 0  # rows this worker gave outputs written on every worker
        logger.debug(
            "worker %d/%d: %s",
            config.index,
            config.count,
            [(op.describe(), where.value) for op, where in zip(self.operators, self._placement)],
        )

    def _set_up_split_inputs(self, split: set[int]) -> None:
        """Give each input read on every worker (operator positions ``split``) this worker's
        share; on worker 0, a handle that also takes the other workers' commits.
        The other workers keep only those inputs, and the sinks of outputs written on every
        worker."""
        coordinator, config = self.config.is_coordinator, self.config
        for index, (op, handle) in enumerate(self.inputs):
            position = self._index[op.node.uid]
            if position not in split:
                continue
            source: Any = op.node.source
            source.share = WorkerShare(config.index, config.count)
            if coordinator:
                static = bool(getattr(source, "static", False))
                replaced = split_handle(
                    self.persistence, handle, self._wake.set, self.mesh.peers, static=static
                )
                self.inputs[index] = (op, replaced)
                self._split_handles[position] = replaced
        if coordinator:
            logs = self._log_inputs()
            self._data_handles = [h for op, h in self.inputs if op.node.uid not in logs]
        else:
            self.inputs = [(op, h) for op, h in self.inputs if self._index[op.node.uid] in split]
            self.sinks = [
                op.sink  # type: ignore[attr-defined]
                for op, where in zip(self.operators, self._placement, strict=True)
                if where is Placement.EVERY_WORKER
            ]
            self._data_handles = [handle for _, handle in self.inputs]
            self._log_handles = []

    def _check_failures(self) -> None:
        """Also fail when another worker failed or exited, even while this one only waits
        for its sources (worker 0 waiting for a static input to finish everywhere)."""
        super()._check_failures()
        if self.mesh.failure is not None:
            raise WorkerError(self.mesh.failure)

    def _log_inputs(self) -> set[int]:
        """The uids of the inputs of error log tables (they stay on worker 0)."""
        from deltaflow.errors import ErrorLogSource

        return {op.node.uid for op, _ in self.inputs if isinstance(op.node.source, ErrorLogSource)}

    def _static_at(self, position: int) -> bool:
        return bool(getattr(self.operators[position].node.source, "static", False))

    def _static_input(self, index: int) -> bool:
        return bool(getattr(self.inputs[index][0].node.source, "static", False))

    def partitioned_operators(self) -> list[str]:
        """The operators whose state is split between the workers by key (for tests, logs)."""
        return [
            op.describe()
            for op, where in zip(self.operators, self._placement, strict=True)
            if where is Placement.PARTITIONED
        ]

    # --- the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            self._check_same_plan()
            self.mesh.notify = self._wake.set  # a message or a peer's failure wakes the loop
            try:
                if self.config.is_coordinator:
                    self.mesh.on_reports(self._run_number, self._on_report)
                    try:
                        if self._checkpoints is not None:  # every worker replays its share
                            self._checkpoints.run_deferred()
                        super()._loop()
                        self._drain(0)
                        if self._checkpoints is not None:  # before the end: crashed tails
                            self._checkpoints.settle(self.last_time, force=True)
                    finally:
                        self.mesh.on_reports(self._run_number + 1, None)
                    self.mesh.broadcast(("end",))
                else:
                    self._follow()
            finally:
                self.mesh.notify = None
        except BaseException as exc:
            self.mesh.tell_failure(f"{type(exc).__name__}: {exc}")
            raise
        logger.info(
            "worker %d of %d: %d times (at most %d in flight), "
            "%d rows read here from split inputs (%d commits joined to a time), "
            "%d rows into partitioned operators (%s), %d rows combined into %d, "
            "%d rows (%d bytes in all) sent to other workers, "
            "%d rows written here by outputs on every worker",
            self.config.index,
            self.config.count,
            self.times_processed,
            self.most_in_flight,
            self.split_rows,
            self.commits_joined,
            self.partitioned_rows,
            ", ".join(self.partitioned_operators()) or "none",
            *self._exchange.rows_combined,
            self._exchange.rows_exchanged,
            self.mesh.bytes_sent,
            self.written_rows,
        )

    def _check_same_plan(self) -> None:
        """Every worker must have compiled alike (see ``progress.check_same_plan``)."""
        described = [
            (type(op).__name__, list(op.node.columns), self._inputs_of[position])
            for position, op in enumerate(self.operators)
        ]
        check_same_plan(self.mesh, self.config.index, described)

    def _on_report(self, peer: int, message: tuple[Any, ...]) -> None:
        """On worker 0 (on the mesh's receiving thread): worker ``peer`` reported commits of
        its split inputs, or that some of them finished there, or (persisted runs) how far its
        outputs on every worker are durable."""
        _, _, commits, finished, joined, *outputs = message
        if outputs and self._checkpoints is not None:  # its writers' durable times
            self._checkpoints.note_outputs(peer, outputs[0])
        if joined:
            for handle in self._split_handles.values():
                handle.forget(peer, joined)
        by_input: dict[int, list[tuple[int, int | None]]] = {}
        for position, sequence, pinned in commits:
            by_input.setdefault(position, []).append((sequence, pinned))
        for position in set(by_input) | set(finished):
            self._split_handles[position].add_remote(
                peer, by_input.get(position, []), position in finished
            )

    def _follow(self) -> None:
        """A worker other than 0: report what its sources commit, and process the times
        worker 0 announces, with the commits it names, until the run ends."""
        held = HeldCommits()
        while True:
            self._wake.clear()  # before looking: a push or a message after it wakes the wait
            self._check_failures()
            self._report(held)
            if self._checkpoints is not None:  # its outputs' durable times, for checkpoints
                outputs = self._checkpoints.report_outputs()
                if outputs is not None:
                    self.mesh.send(0, ("report", self._run_number, [], [], [], outputs))
            progressed = self._advance()
            message = self._mailbox.control()
            if message is None:
                if not progressed:
                    self._wake.wait(0.05)
                continue
            if message[0] == "time":
                _, time, exchanges, chosen, join = message
                batches = held.take(chosen)
                if join:
                    joined, sequences = held.join()
                    batches += joined
                    self.commits_joined += len(sequences)
                    if sequences:  # worker 0 needs no time of their own for them
                        self.mesh.send(0, ("report", self._run_number, [], [], sequences))
                self._start_time(
                    time, batches, frozenset(exchanges), functools.partial(self._followed, batches)
                )
                continue
            # A checkpoint, a replay and the end come after the times before them are done.
            self._drain(0)
            if message[0] == "end":
                return
            if self._checkpoints is not None and message[0] == "checkpoint":
                self._checkpoints.write_share(message)
                continue
            if self._checkpoints is not None and message[0] == "replay":
                _, time, exchanges = message
                with muted_outputs(self):  # an earlier run wrote the replay's outputs
                    self._start_time(time, self._checkpoints.replay_batches(), frozenset(exchanges))
                    self._drain(0)
                continue
            if self._checkpoints is not None and message[0] == "settle":
                self._checkpoints.settle_here(message)
                continue
            raise WorkerError(
                f"worker {self.config.index}: expected a time from worker 0, got {message[0]!r}"
            )

    def _followed(self, batches: list[tuple[int, pl.DataFrame]], time: int) -> None:
        """On a worker other than 0: the time ``time``, made of ``batches``, is done here."""
        for index, batch in batches:
            if not self._static_input(index):  # static rows were let go when reported
                self.inputs[index][1].mark_processed(batch.height)
        if self._checkpoints is not None:
            self._checkpoints.processed(time, batches)

    def _report(self, held: HeldCommits) -> None:
        """Tell worker 0 about the commits this worker's sources pushed since the last
        report (kept in ``held`` until a time takes them) and the inputs that finished."""
        commits: list[tuple[int, int, int | None]] = []
        finished: list[int] = []
        for index, (op, handle) in enumerate(self.inputs):
            position = self._index[op.node.uid]
            done = handle.finished  # before taking: then nothing can follow what is taken
            static = self._static_input(index)
            for pushed in handle.take():
                if static:
                    handle.mark_processed(pushed.batch.height)
                if pushed.batch.height == 0:
                    continue
                joinable = position in self._joins and pushed.time is None
                sequence = held.add(index, pushed.batch, joinable=joinable)
                commits.append((position, sequence, pushed.time))
            if done and position not in held.reported_finished:
                held.reported_finished.add(position)
                finished.append(position)
        if commits or finished:
            self.mesh.send(0, ("report", self._run_number, commits, finished, []))

    def _process(self, time: int, batches: list[tuple[int, pl.DataFrame]]) -> None:
        """On worker 0: announce ``time`` (with, to each worker, its commits that make it),
        then process it."""
        local: list[tuple[int, pl.DataFrame]] = []
        chosen: dict[int, list[int]] = {peer: [] for peer in self.mesh.peers}
        unmarked: list[tuple[int, int]] = []  # rows of worker 0 in placeholders (see inputs)
        for index, batch in batches:
            if isinstance(batch, RemoteCommit):
                local.extend((index, frame) for frame in batch.local)
                unmarked.append((index, batch.unmarked))
                for worker, sequence in batch.remote:
                    chosen[worker].append(sequence)
            else:
                local.append((index, batch))
        replaying = self._checkpoints is not None and self._checkpoints.replaying
        # A live time: the other workers join their live commits to it (see HeldCommits).
        join = bool(self._joins) and time == self._live_time
        # A replayed checkpoint has rows on every worker (each its share): all exchange.
        exchanges = (
            frozenset(self._exchanging)
            if replaying
            else self._exchanges_at(time, batches, self._joins if join else ())
        )
        ordered = tuple(sorted(exchanges))
        for peer in self.mesh.peers:
            if replaying:
                self.mesh.send(peer, ("replay", time, ordered))
            else:
                self.mesh.send(peer, ("time", time, ordered, tuple(chosen[peer]), join))
        self._start_time(time, local, exchanges, functools.partial(self._mark_unmarked, unmarked))
        # At most the window's times in flight (with this one): older ones finish first.
        self._drain(self._window - 1)
        if self._self_timed:
            self._process_requested_times()

    def _next_time(self) -> int:
        self._live_time = super()._next_time()  # only live commits get such a time
        return self._live_time

    def _mark_unmarked(self, unmarked: list[tuple[int, int]], time: int) -> None:
        """On worker 0: rows of its own in placeholders (see ``inputs``) processed at ``time``."""
        for index, rows in unmarked:
            if rows:
                self.inputs[index][1].mark_processed(rows)

    def _exchanges_at(
        self, time: int, batches: list[tuple[int, pl.DataFrame]], joining: Iterable[int] = ()
    ) -> frozenset[int]:
        """The exchanging operators this time can reach (worker 0 decides for everyone): those
        below an input with rows (or, ``joining``, rows other workers may join), or below an
        operator stepping on its own."""
        seeds = {self._index[self.inputs[index][0].node.uid] for index, _ in batches}
        seeds.update(joining)
        for position, op in enumerate(self.operators):
            if getattr(op, "always_step", False) or getattr(op, "requested_time", None) == time:
                seeds.add(position)
        reached, todo = set(seeds), list(seeds)
        while todo:
            for consumer in self._consumers.get(todo.pop(), []):
                if consumer not in reached:
                    reached.add(consumer)
                    todo.append(consumer)
        return frozenset(reached & self._exchanging)

    # --- times in flight -----------------------------------------------------------------------
    def _progress(self) -> None:
        self._advance()

    def _start_time(
        self,
        time: int,
        batches: list[tuple[int, pl.DataFrame]],
        exchanges: frozenset[int],
        done: Callable[[int], None] | None = None,
    ) -> None:
        """Take ``time`` (its inputs' ``batches``) in flight after the times already in
        flight, and run it as far as it can go now."""
        rows: dict[int, list[pl.DataFrame]] = {}
        for index, batch in batches:
            position = self._index[self.inputs[index][0].node.uid]
            rows.setdefault(position, []).append(batch)
            if self._placement[position] is Placement.SPLIT_INPUT:
                self.split_rows += batch.height
        self.last_time = time
        self.times_processed += 1
        self._flight.append(TimeInFlight(time, rows, exchanges, [None] * len(self.operators), done))
        self.most_in_flight = max(self.most_in_flight, len(self._flight))
        self._advance()

    def _advance(self) -> bool:
        """Run the times in flight as far as they can go without waiting for another worker;
        finish those done, in time order. Whether anything moved."""
        progressed = False
        end = len(self.operators)
        while self._flight:
            moved = False
            limit = end  # a time runs an operator only once the time before it ran it
            for number, flight in enumerate(self._flight):
                moved = self._step(flight, limit, oldest=number == 0) or moved
                limit = flight.cursor
            while self._flight and self._flight[0].cursor == end:
                self._finish(self._flight.popleft())
                moved = True
            if not moved:
                break
            progressed = True
        return progressed

    def _drain(self, keep: int) -> None:
        """Wait until at most ``keep`` times are in flight (running them meanwhile)."""
        while len(self._flight) > keep:
            self._wake.clear()  # before looking: a message arriving after it wakes the wait
            if self._advance():
                continue
            self._check_failures()
            self._wake.wait(0.05)

    def _step(self, flight: TimeInFlight, limit: int, *, oldest: bool) -> bool:
        """Run ``flight``'s next operators, below ``limit`` (the cursor of the time before
        it): an exchanging operator at ``limit`` may already send its parts, since that does
        not touch the operator. Outputs run only for the oldest time in flight, so that a
        sink sees each time's rows, and its end, in time order. Whether anything moved."""
        moved = False
        coordinator = self.config.is_coordinator
        time = flight.time
        while flight.cursor < len(self.operators) and flight.cursor <= limit:
            position = flight.cursor
            op = self.operators[position]
            deltas = [flight.results[i] for i in self._inputs_of[position]]
            runs = position < limit and (oldest or not isinstance(op, OutputOperator))
            where = self._placement[position]
            gate = position in self._summarized_gates
            summaries = None
            if position in flight.exchanges and (flight.summary is None or not gate):
                if where is not Placement.LOCAL:  # a LOCAL gate's rows stay where they are
                    if flight.sent is None:
                        flight.sent = self._exchange.send_parts(time, position, deltas)
                        moved = True
                    if not runs:
                        break
                    own, senders = flight.sent
                    received = self._mailbox.rows(time, position, senders, len(deltas))
                    if received is None:
                        break
                    flight.sent = None
                    deltas = merge_parts(own, received)
                elif not runs:
                    break
                if gate:
                    self.errors.current = op.node
                    if where is Placement.PARTITIONED and deltas[0] is not None:
                        self.partitioned_rows += deltas[0].height
                    summary = self._exchange.send_summary(time, position, op, deltas[0])
                    flight.summary, self.errors.current, moved = summary, None, True
            elif not runs:
                break
            if gate and position in flight.exchanges:
                summaries = self._mailbox.summaries(time, position, self.mesh.peers)
                if summaries is None:
                    break
                summaries.append(flight.summary)
                flight.summary = None
            flight.cursor += 1
            moved = True
            if not coordinator and where in (Placement.SINGLE, Placement.INPUT):
                continue
            if summaries is not None:  # every worker concludes the gate's step
                self.errors.current = op.node
                flight.results[position] = op.conclude(time, summaries)  # type: ignore[attr-defined]
                self.errors.current = None
                continue
            if isinstance(op, InputOperator):
                op.pending.extend(flight.rows.get(position, ()))
            elif (
                all(d is None for d in deltas)
                and not getattr(op, "always_step", False)
                and getattr(op, "requested_time", None) != time
            ):
                continue
            self.errors.current = op.node
            if self.errors.seen:
                deltas = without_unhandled_errors(op, deltas)
            if where is Placement.PARTITIONED:
                self.partitioned_rows += sum(d.height for d in deltas if d is not None)
            elif where is Placement.EVERY_WORKER:
                self.written_rows += sum(d.height for d in deltas if d is not None)
            flight.results[position] = op.step(time, deltas)
            self.errors.current = None
        return moved

    def _finish(self, flight: TimeInFlight) -> None:
        """``flight`` ran every operator on this worker: end the time at the sinks."""
        flight.results = []
        self.errors.flush()
        for sink in self.sinks:
            with sink_errors(sink):
                sink.on_time_end(flight.time)
        self._check_failures()
        if flight.done is not None:
            flight.done(flight.time)
