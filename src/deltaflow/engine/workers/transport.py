"""Connections between workers and the messages they exchange.

:class:`Transport` is what the workers' runtime needs of a connection to the other workers;
:func:`mesh_for` gives this process's, by ``WorkerConfig.transport``: :class:`Mesh` (sockets,
below) or, for workers run as Ray actors by ``deltaflow spawn --ray``, ``ray_transport.RayMesh``.
Both keep messages from one worker to another in the order they were sent (the progress
protocol of ``runtime`` relies on it) and share :class:`Inboxes`, the receiving side.

Every pair of workers shares one authenticated socket (``multiprocessing.connection``, which
frames messages and checks the run's key); worker ``i`` listens on its own address and
connects to every worker below it. A reader thread per peer decodes incoming messages into
that peer's queue, so a send never waits for the peer's engine loop (two workers sending each
other a big batch at the same moment cannot block each other) and decoding overlaps with
computing.

Delta batches travel as Arrow IPC streams (the IPC file format for very big ones) written and
read by Polars: no per-row pickling.
Python-object columns (``pl.Object``: Json, tuples, ...) have no Arrow form; they travel as
pickled lists of values beside the IPC stream of the other columns.

Messages are tuples whose first item is their kind:

* ``("time", time, exchanges, commits, join)``: worker 0 tells the others to process
  ``time``; ``exchanges`` are the operator positions whose inputs are exchanged in it,
  ``commits`` the receiver's reported commits that make it, ``join`` whether it may add its
  other live commits (see ``runtime`` and ``inputs.HeldCommits``);
* ``("data", time, position, frames)``: one worker's share of an operator's input deltas
  (several times may be in flight: the receiver matches them by time and position, see
  ``progress``);
* ``("frontier", time, position, summary)``: one worker's summary of its share of a
  behavior's gate's input at ``time`` (a tuple of a few numbers, see
  ``temporal_behavior.GateSummary``), sent to every other worker: they finish the gate's
  step with the summaries of all;
* ``("report", run, commits, finished, joined[, outputs])``: a worker other than 0 tells
  worker 0 about the commits its share of the split inputs made (see ``inputs``) and those it
  joined to a time (in a persisted run, with ``outputs``: the durable time of each output it
  writes too, and how much of a crashed tail it skipped); routed at once, on the receiving
  thread, to the handler of the run it belongs to (:meth:`Inboxes.on_reports`);
* persistence (see ``checkpoints``): ``("restore", number)`` / ``("restored", number)`` (the
  checkpoint a restart loads, and each worker's confirmation that it read it),
  ``("replay", time, exchanges)`` (the time the restored rows are replayed at),
  ``("checkpoint", number, time, final)`` / ``("checkpointed", number, shares, positions)``
  (a checkpoint asked of every worker, and each worker's chunks, frontiers and positions of
  the outputs it writes), ``("settle", outputs)`` / ``("settled", skipped)`` (worker 0
  settles the crashed tails of outputs written on every worker: ``io/kafka/_replay.py``);
* ``("end",)``: the run is over; ``("failed", worker, text)``: a worker failed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import queue
import socket
import threading
import time as _time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, Protocol

import polars as pl

from deltaflow.engine.workers.config import WorkerConfig
from deltaflow.errors import DeltaflowError

logger = logging.getLogger("deltaflow.workers")

#: How long workers wait for each other to start and connect.
CONNECT_TIMEOUT_SECONDS = 60.0

#: A batch ready to send: its Arrow IPC stream, its column order, its Python-object columns.
Encoded = tuple[memoryview, list[str], dict[str, list[Any]]]


class WorkerError(DeltaflowError):
    """Another worker of the run failed, exited or could not be reached."""


#: Batches of at least this many rows travel in the Arrow IPC file format, smaller ones as an
#: IPC stream. The stream has a fixed cost about 15 times lower (150 rows: 0.03 ms to write and
#: read, against 0.5 ms for the file format, Polars 2.1), which a streaming run pays per
#: exchange; the file format is faster from about a million rows (1M: 42 ms against 72 ms).
IPC_FILE_ROWS = 500_000
_IPC_FILE_MAGIC = b"ARROW1"


def encode_frame(frame: pl.DataFrame | None) -> Encoded | None:
    """A delta batch as bytes for another worker (None for no rows)."""
    if frame is None or frame.height == 0:
        return None
    objects = [name for name, dtype in frame.schema.items() if dtype == pl.Object]
    buffer = io.BytesIO()
    if frame.height < IPC_FILE_ROWS:
        frame.drop(objects).write_ipc_stream(buffer)
    else:
        frame.drop(objects).write_ipc(buffer)
    return buffer.getbuffer(), frame.columns, {name: frame[name].to_list() for name in objects}


def decode_frame(data: bytes, order: list[str], objects: dict[str, list[Any]]) -> pl.DataFrame:
    """The batch :func:`encode_frame` encoded."""
    if bytes(data[:6]) == _IPC_FILE_MAGIC:
        frame = pl.read_ipc(io.BytesIO(data))
    else:
        frame = pl.read_ipc_stream(io.BytesIO(data))
    if objects:
        frame = frame.with_columns(
            [pl.Series(name, values, dtype=pl.Object) for name, values in objects.items()]
        ).select(order)
    return frame


class Transport(Protocol):
    """This worker's connection to the other workers of the run, as the runtime uses it.

    Messages from one worker to another arrive in the order they were sent; a peer's failure
    or exit makes the next :meth:`receive` from it raise :class:`WorkerError`."""

    config: WorkerConfig
    index: int
    peers: list[int]
    bytes_sent: int
    notify: Callable[[], None] | None
    failure: str | None
    runs: int

    def send(self, peer: int, message: tuple[Any, ...]) -> None: ...

    def broadcast(self, message: tuple[Any, ...]) -> None: ...

    def receive(self, peer: int) -> tuple[Any, ...]: ...

    def poll(self, peer: int) -> tuple[Any, ...] | None: ...

    def tell_failure(self, text: str) -> None: ...

    def on_reports(
        self, run: int, handler: Callable[[int, tuple[Any, ...]], None] | None
    ) -> None: ...


class Inboxes:
    """The receiving side of a transport: one queue of decoded messages per peer, failures
    and exits of peers, and the routing of reports. A transport calls :meth:`arrived` with
    each peer's messages in the order that peer sent them, and :meth:`gone` when a peer
    exits; it implements :meth:`send`."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.index = config.index
        self.peers = [i for i in range(config.count) if i != config.index]
        self._queues: dict[int, queue.Queue[tuple[Any, ...]]] = {
            peer: queue.Queue() for peer in self.peers
        }
        self.bytes_sent = 0
        #: Called after every message queued for the engine loop (a follower waits for its
        #: sources and for worker 0 at once).
        self.notify: Callable[[], None] | None = None
        #: The first failure or exit of a peer, as the error's text (None: none so far).
        self.failure: str | None = None
        #: Runs started in this process (the workers count them alike; reports carry it).
        self.runs = 0
        self._report_lock = threading.Lock()
        self._report_run = -1
        self._report_handler: Callable[[int, tuple[Any, ...]], None] | None = None
        self._early_reports: list[tuple[int, tuple[Any, ...]]] = []

    def send(self, peer: int, message: tuple[Any, ...]) -> None:
        raise NotImplementedError

    # --- what arrives ------------------------------------------------------------------------
    def arrived(self, peer: int, message: tuple[Any, ...]) -> None:
        """``peer``'s next message, decoded (called in the order ``peer`` sent them)."""
        if message[0] == "report":
            self._deliver_report(peer, message)
            return
        self._queues[peer].put(message)
        if message[0] == "failed":
            self._note_failure(f"worker {message[1]} failed: {message[2]}")
        self._notify()

    def gone(self, peer: int, text: str | None = None) -> None:
        """``peer`` exited or cannot be reached: every later receive from it fails."""
        text = text or f"worker {self.index}: worker {peer} exited during the run"
        self._queues[peer].put(("gone", text))
        self._note_failure(text)

    def undecodable(self, peer: int, exc: BaseException) -> None:
        self._queues[peer].put(("failed", peer, f"undecodable message: {exc!r}"))
        self._note_failure(f"worker {peer} failed: undecodable message: {exc!r}")

    def _note_failure(self, text: str) -> None:
        """Remember the first failure of a peer (an engine loop waiting for its sources, not
        for a peer, learns of it through :attr:`failure`) and wake the loop."""
        if self.failure is None:
            self.failure = text
        self._notify()

    def _notify(self) -> None:
        notify = self.notify
        if notify is not None:
            notify()

    # --- reports of split inputs -------------------------------------------------------------
    def on_reports(self, run: int, handler: Callable[[int, tuple[Any, ...]], None] | None) -> None:
        """Route the reports of run ``run`` to ``handler(peer, message)`` (None: keep them
        until a handler comes); reports of earlier runs are dropped, later ones kept."""
        with self._report_lock:
            self._report_run, self._report_handler = run, handler
            waiting, self._early_reports = self._early_reports, []
            for peer, message in waiting:
                self._deliver_locked(peer, message)

    def _deliver_report(self, peer: int, message: tuple[Any, ...]) -> None:
        with self._report_lock:  # one peer's reports reach the handler in order
            self._deliver_locked(peer, message)

    def _deliver_locked(self, peer: int, message: tuple[Any, ...]) -> None:
        run = message[1]
        if run < self._report_run:
            return
        if run > self._report_run or self._report_handler is None:
            self._early_reports.append((peer, message))
            return
        self._report_handler(peer, message)

    # --- messages ----------------------------------------------------------------------------
    def broadcast(self, message: tuple[Any, ...]) -> None:
        for peer in self.peers:
            self.send(peer, message)

    def receive(self, peer: int) -> tuple[Any, ...]:
        """The next message from ``peer``; a failure or exit of ``peer`` is a WorkerError."""
        message = self._queues[peer].get()
        if message[0] == "gone":
            self._queues[peer].put(message)  # every later receive fails the same way
            raise WorkerError(message[1])
        if message[0] == "failed":
            raise WorkerError(f"worker {message[1]} failed: {message[2]}")
        return message

    def poll(self, peer: int) -> tuple[Any, ...] | None:
        """The next message from ``peer`` if one is waiting, else None (failures as in
        :meth:`receive`)."""
        inbox = self._queues[peer]
        if inbox.empty():
            return None
        return self.receive(peer)

    def tell_failure(self, text: str) -> None:
        """Best effort: let every peer know this worker failed, so none waits for it."""
        for peer in self.peers:
            with contextlib.suppress(WorkerError):
                self.send(peer, ("failed", self.index, text))


Metas = list[tuple[list[str], dict[str, list[Any]]] | None]


def split_buffers(message: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[memoryview]]:
    """A message as a header without the IPC streams, and the streams: a ``("data", time,
    position, frames)`` message's frames (as :func:`encode_frame` made them) become their
    column metadata, the streams travel after the header as they are, without another copy."""
    if message[0] != "data":
        return message, []
    kind, time, position, frames = message
    buffers: list[memoryview] = []
    metas: Metas = []
    for encoded in frames:
        if encoded is None:
            metas.append(None)
        else:
            buffers.append(encoded[0])
            metas.append((encoded[1], encoded[2]))
    return (kind, time, position, metas), buffers


def join_buffers(header: tuple[Any, ...], buffers: list[Any]) -> tuple[Any, ...]:
    """The message :func:`split_buffers` split, with its frames decoded."""
    if header[0] != "data":
        return header
    kind, time, position, metas = header
    streams = iter(buffers)
    frames = [None if meta is None else decode_frame(next(streams), *meta) for meta in metas]
    return kind, time, position, frames


class Mesh(Inboxes):
    """This worker's socket connections to every other worker of the run."""

    def __init__(self, config: WorkerConfig, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        super().__init__(config)
        self._connections: dict[int, Connection] = {}
        self._connect(timeout)
        for peer, connection in self._connections.items():
            threading.Thread(
                target=self._read,
                args=(peer, connection),
                name=f"deltaflow-worker-{self.index}-from-{peer}",
                daemon=True,
            ).start()

    # --- set-up ------------------------------------------------------------------------------
    def _connect(self, timeout: float) -> None:
        deadline = _time.monotonic() + timeout
        own = self.config.addresses[self.index]
        try:
            listener = Listener(own, authkey=self.config.authkey)
        except OSError as exc:
            raise WorkerError(
                f"worker {self.index}: cannot listen on {own[0]}:{own[1]} ({exc}); "
                f"choose other ports with 'deltaflow spawn --first-port PORT'"
            ) from exc
        accepted: list[BaseException] = []

        def accept_higher() -> None:
            try:
                for _ in range(self.index + 1, self.config.count):
                    connection = listener.accept()
                    peer = connection.recv()
                    self._connections[int(peer)] = connection
            except BaseException as exc:  # noqa: BLE001 - reported by the waiting thread
                accepted.append(exc)

        acceptor = threading.Thread(target=accept_higher, daemon=True)
        acceptor.start()
        try:
            for peer in range(self.index):
                self._connections[peer] = self._dial(peer, deadline)
            acceptor.join(max(0.0, deadline - _time.monotonic()))
        finally:
            listener.close()
        if accepted:
            raise WorkerError(f"worker {self.index}: a worker failed to connect: {accepted[0]}")
        missing = [p for p in self.peers if p not in self._connections]
        if missing:
            raise WorkerError(
                f"worker {self.index}: workers {missing} did not connect within {timeout:.0f} s "
                f"(are all {self.config.count} processes started, with the same run id?)"
            )
        for connection in self._connections.values():
            _no_delay(connection)
        logger.debug("worker %d connected to %s", self.index, self.peers)

    def _dial(self, peer: int, deadline: float) -> Connection:
        address = self.config.addresses[peer]
        while True:
            try:
                connection = Client(address, authkey=self.config.authkey)
            except (ConnectionRefusedError, FileNotFoundError):
                if _time.monotonic() > deadline:
                    raise WorkerError(
                        f"worker {self.index}: worker {peer} at {address[0]}:{address[1]} "
                        f"is not reachable"
                    ) from None
                _time.sleep(0.05)
                continue
            connection.send(self.index)
            return connection

    def _read(self, peer: int, connection: Connection) -> None:
        while True:
            try:
                header = pickle.loads(connection.recv_bytes())
                # The batches of a data message follow its header, one message each.
                count = sum(meta is not None for meta in header[3]) if header[0] == "data" else 0
                message = join_buffers(header, [connection.recv_bytes() for _ in range(count)])
            except (EOFError, OSError):
                self.gone(peer)
                return
            except Exception as exc:  # noqa: BLE001 - surfaced by the receiving engine loop
                self.undecodable(peer, exc)
                return
            self.arrived(peer, message)

    def send(self, peer: int, message: tuple[Any, ...]) -> None:
        """Send ``message`` to ``peer`` (a data message's frames as :func:`encode_frame`
        made them): the header pickled, each IPC stream after it as it is."""
        header_message, buffers = split_buffers(message)
        connection = self._connections[peer]
        try:
            header = pickle.dumps(header_message, protocol=pickle.HIGHEST_PROTOCOL)
            connection.send_bytes(header)
            for buffer in buffers:
                connection.send_bytes(buffer)
        except OSError as exc:
            raise WorkerError(f"worker {self.index}: worker {peer} is gone ({exc})") from exc
        self.bytes_sent += len(header) + sum(b.nbytes for b in buffers)


def _no_delay(connection: Connection) -> None:
    """Send small messages at once: with Nagle's algorithm, a batch's header and stream
    written back to back wait for the peer's delayed acknowledgement (about 40 ms a time)."""
    try:
        with socket.socket(fileno=os.dup(connection.fileno())) as duplicate:
            duplicate.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not a TCP socket (a Unix socket has no such delay)
        pass


_MESH: Mesh | None = None
_MESH_LOCK = threading.Lock()


def mesh_for(config: WorkerConfig) -> Transport:
    """This process's connections (made by the first run, kept for the later ones): sockets,
    or Ray when the worker runs in a Ray actor (``deltaflow spawn --ray``)."""
    global _MESH
    if config.transport == "ray":
        import importlib

        # Imported by name: Ray is an optional extra, only a Ray actor's run gets here.
        return importlib.import_module("deltaflow.engine.workers.ray_transport").actor_mesh(config)
    with _MESH_LOCK:
        if _MESH is None or _MESH.config != config:
            _MESH = Mesh(config)
        return _MESH
