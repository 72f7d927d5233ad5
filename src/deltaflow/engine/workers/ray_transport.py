"""Workers that reach each other through Ray (``deltaflow spawn --ray``).

Each worker runs in a Ray actor (``ray_spawn.WorkerActor``); a message to worker ``j`` is a
call of ``j``'s actor method ``deliver`` with the message's header and its Arrow IPC streams
as arguments, so Ray carries them: small ones inline in the call, big ones through its object
store (from node to node when the workers are on different nodes). The receiving actor runs
``deliver`` on a thread of its own (a concurrency group of one thread), beside the program's
engine loop, and hands each message to :class:`RayMesh`, which queues it for the loop exactly
as the socket transport's reader threads do (``transport.Inboxes``).

Ray does not promise that the calls of a threaded actor run in the order they were made, and
the progress protocol needs every pair of workers to be FIFO: each message therefore carries
a sequence number per (sender, receiver) pair and the receiver delivers them in that order,
holding any that arrive early.

A peer whose actor dies is noticed in two ways: the driver (``ray_spawn``), which waits on
every actor's run, tells the others (:meth:`RayMesh.gone`); and a send whose call failed
because the receiving actor is gone raises :class:`~deltaflow.engine.workers.transport.WorkerError`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from deltaflow.engine.workers.config import WorkerConfig
from deltaflow.engine.workers.transport import Inboxes, WorkerError, join_buffers, split_buffers

logger = logging.getLogger("deltaflow.workers")

#: The actors' concurrency group of one thread that runs ``deliver`` (beside the program).
DELIVER_GROUP = "deliver"
#: Sends are checked for failed calls (a peer's actor gone) once this many are in flight.
CHECK_EVERY = 64


class RayMesh(Inboxes):
    """This worker's link to the other workers' actors (see the module's docstring)."""

    def __init__(self, config: WorkerConfig) -> None:
        super().__init__(config)
        self._handles: list[Any] = []
        self._next_sent = dict.fromkeys(self.peers, 0)
        self._next_delivered = dict.fromkeys(self.peers, 0)
        self._early: dict[int, dict[int, tuple[tuple[Any, ...], list[Any]]]] = {
            peer: {} for peer in self.peers
        }
        self._send_lock = threading.Lock()
        self._arrive_lock = threading.Lock()
        self._in_flight: list[tuple[int, Any]] = []  # (peer, the ObjectRef of the call)

    def connect(self, handles: list[Any]) -> None:
        """The actor handles of every worker of the run, by index (given before the run)."""
        if len(handles) != self.config.count:
            raise WorkerError(
                f"worker {self.index}: {len(handles)} Ray actors for {self.config.count} workers"
            )
        self._handles = [
            handle.deliver.options(concurrency_group=DELIVER_GROUP) for handle in handles
        ]

    # --- receiving (on the actor's delivering thread) ----------------------------------------
    def accept(
        self, sender: int, sequence: int, header: tuple[Any, ...], buffers: list[Any]
    ) -> None:
        """Message number ``sequence`` of ``sender``; delivered once all before it were."""
        with self._arrive_lock:
            early = self._early[sender]
            early[sequence] = (header, buffers)
            while self._next_delivered[sender] in early:
                header, buffers = early.pop(self._next_delivered[sender])
                self._next_delivered[sender] += 1
                try:
                    message = join_buffers(header, buffers)
                except Exception as exc:  # noqa: BLE001 - surfaced by the receiving engine loop
                    self.undecodable(sender, exc)
                    continue
                self.arrived(sender, message)

    # --- sending -----------------------------------------------------------------------------
    def send(self, peer: int, message: tuple[Any, ...]) -> None:
        """Call ``deliver`` on ``peer``'s actor with ``message`` (its IPC streams as separate
        arguments: Ray passes big ones through its object store without pickling them)."""
        if not self._handles:
            raise WorkerError(f"worker {self.index}: not connected to the other Ray actors")
        header, buffers = split_buffers(message)
        with self._send_lock:
            sequence = self._next_sent[peer]
            self._next_sent[peer] += 1
            call = self._handles[peer].remote(self.index, sequence, header, *buffers)
            self._in_flight.append((peer, call))
            check = len(self._in_flight) >= CHECK_EVERY
        self.bytes_sent += sum(b.nbytes for b in buffers)
        if check:
            self.check_sent(timeout=0)

    def check_sent(self, timeout: float | None) -> None:
        """Forget the calls that completed (waiting up to ``timeout`` seconds for the rest;
        None: for all); a call that failed means its receiver is gone: WorkerError."""
        import ray
        from ray.exceptions import RayError

        with self._send_lock:
            calls, self._in_flight = self._in_flight, []
        if not calls:
            return
        refs = [call for _, call in calls]
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        finished = set(done)
        waiting: list[tuple[int, Any]] = []
        failed: tuple[int, BaseException] | None = None
        for peer, call in calls:
            if call not in finished:
                waiting.append((peer, call))
                continue
            try:
                ray.get(call)
            except RayError as error:
                failed = failed or (peer, error)
        with self._send_lock:
            self._in_flight = waiting + self._in_flight
        if failed is not None:
            peer, exc = failed
            text = (
                f"worker {self.index}: worker {peer} is gone (its Ray actor: {type(exc).__name__})"
            )
            self.gone(peer, text)
            raise WorkerError(text)

    def flush(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) until the peers took every message sent; failures
        are not raised (the run is over)."""
        try:
            self.check_sent(timeout)
        except WorkerError as exc:
            logger.debug("after the run: %s", exc)


_ACTOR_MESH: RayMesh | None = None


def install(mesh: RayMesh) -> None:
    """Make ``mesh`` this process's transport (called by the worker's actor when created)."""
    global _ACTOR_MESH
    _ACTOR_MESH = mesh


def actor_mesh(config: WorkerConfig) -> RayMesh:
    """The transport of the Ray actor this process is (see ``transport.mesh_for``)."""
    mesh = _ACTOR_MESH
    if mesh is None:
        raise WorkerError(
            "DELTAFLOW_WORKERS_TRANSPORT=ray: this process is not a worker started by "
            "'deltaflow spawn --ray' (it sets that variable in the Ray actors it starts)"
        )
    if (mesh.config.count, mesh.index) != (config.count, config.index):
        raise WorkerError(
            f"this Ray actor is worker {mesh.index} of {mesh.config.count}, but the environment "
            f"says worker {config.index} of {config.count}"
        )
    return mesh
