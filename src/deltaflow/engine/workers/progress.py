"""Times in flight: the state of each time a worker has been told of and not yet finished,
and the mailbox that matches the rows other workers send to the time and operator they
belong to.

With several times in flight (see ``runtime``), a worker may receive a peer's rows of time
``t + 1`` before those of ``t``, or rows between the coordinator's time messages: the
connections stay FIFO, but the order in which two workers interleave their times' exchanges
differs. :class:`Mailbox` therefore keeps every ``("data", time, position, frames)`` message
under its ``(peer, time, position)`` until the operator asks for it; a worker other than 0
gets the coordinator's other messages (times, checkpoints, the end) from it, in order.
"""

from __future__ import annotations

import collections
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow.engine.batch import concat_batches, consolidate
from deltaflow.engine.workers.config import _whole
from deltaflow.engine.workers.transport import Transport, WorkerError

#: The environment variable bounding how many times may be in flight at once (1: lock step).
WINDOW_VARIABLE = "DELTAFLOW_WORKERS_TIMES_IN_FLIGHT"
DEFAULT_WINDOW = 3


def window_size() -> int:
    """How many times the coordinator may have announced and not yet finished at once:
    ``DELTAFLOW_WORKERS_TIMES_IN_FLIGHT``, default 3 (1 gives the lock step: a time starts
    only once the previous one is finished everywhere)."""
    raw = os.environ.get(WINDOW_VARIABLE, "").strip()
    return _whole(WINDOW_VARIABLE, raw, least=1) if raw else DEFAULT_WINDOW


@dataclass(eq=False)
class TimeInFlight:
    """One time a worker is processing: the operators run in topological order, one after
    the other; ``cursor`` is the position of the next operator to run."""

    time: int
    #: The rows each input operator (by position) gets at this time.
    rows: dict[int, list[pl.DataFrame]]
    #: The exchanging operators of this time (the coordinator decided).
    exchanges: frozenset[int]
    #: The delta each operator gave at this time (None: none).
    results: list[pl.DataFrame | None]
    #: Called with the time once it is finished on this worker.
    done: Callable[[int], None] | None = None
    cursor: int = 0
    #: At an exchanging operator whose parts this worker sent already: its own parts and the
    #: workers whose parts it still waits for.
    sent: tuple[list[pl.DataFrame | None], list[int]] | None = None
    #: At a gate sharing the frontier: this worker's summary, sent, while it waits for the
    #: others' (see ``exchange.Exchange.send_summary``).
    summary: Any = None


class Mailbox:
    """The rows sent to this worker, by ``(peer, time, position)``, whatever the order of
    their arrival; on a worker other than 0, the coordinator's other messages in order."""

    def __init__(self, mesh: Transport, index: int) -> None:
        self.mesh = mesh
        self.index = index
        self._data: dict[tuple[int, int, int], tuple[Any, ...]] = {}
        #: The gates' summaries (``("frontier", time, position, summary)``), by the same key.
        self._summaries: dict[tuple[int, int, int], tuple[Any, ...]] = {}
        #: Messages of worker 0 other than rows, not yet handled (on workers other than 0).
        self._control: collections.deque[tuple[Any, ...]] = collections.deque()

    def _pull(self, peer: int) -> bool:
        """Move ``peer``'s waiting messages into the mailbox; False if there were none.
        From worker 0, stops at a message other than rows or a time until it is taken: the
        ones after it (a checkpoint's, the end's) are for whoever handles it."""
        pulled = False
        while True:
            if peer == 0 and self._control and self._control[-1][0] != "time":
                return pulled
            message = self.mesh.poll(peer)
            if message is None:
                return pulled
            pulled = True
            if message[0] == "data":
                self._data[(peer, message[1], message[2])] = message
            elif message[0] == "frontier":
                self._summaries[(peer, message[1], message[2])] = message[3]
            elif peer == 0 and self.index != 0:
                self._control.append(message)
            else:
                raise WorkerError(
                    f"worker {self.index}: unexpected message {message[0]!r} from worker {peer} "
                    f"while waiting for rows"
                )

    def rows(
        self, time: int, position: int, senders: list[int], inputs: int
    ) -> list[list[pl.DataFrame]] | None:
        """The rows ``senders`` sent for operator ``position`` at ``time``, per input of the
        operator, taken out of the mailbox, if all have come; else None (nothing taken)."""
        keys = [(peer, time, position) for peer in senders]
        missing = [key for key in keys if key not in self._data]
        for peer, _, _ in missing:
            self._pull(peer)
        if any(key not in self._data for key in missing):
            return None
        got: list[list[pl.DataFrame]] = [[] for _ in range(inputs)]
        for key in keys:
            for k, frame in enumerate(self._data.pop(key)[3]):
                if frame is not None:
                    got[k].append(frame)
        return got

    def summaries(self, time: int, position: int, senders: list[int]) -> list[Any] | None:
        """The summaries ``senders`` sent for the gate at ``position`` at ``time``, taken out
        of the mailbox, if all have come; else None (nothing taken)."""
        from deltaflow.engine.stateful.temporal_behavior import GateSummary

        keys = [(peer, time, position) for peer in senders]
        for peer, _, _ in [key for key in keys if key not in self._summaries]:
            self._pull(peer)
        if any(key not in self._summaries for key in keys):
            return None
        return [GateSummary(*self._summaries.pop(key)) for key in keys]

    def control(self) -> tuple[Any, ...] | None:
        """Worker 0's next message other than rows, if one has come (workers other than 0)."""
        if not self._control:
            self._pull(0)
        return self._control.popleft() if self._control else None

    def holds_rows(self) -> bool:
        """Whether rows wait here that no operator took yet (a check at the end of a run)."""
        return bool(self._data) or bool(self._summaries)


def merge_parts(
    own: list[pl.DataFrame | None], received: list[list[pl.DataFrame]]
) -> list[pl.DataFrame | None]:
    """Per input, this worker's rows and those received, as one consolidated delta."""
    out: list[pl.DataFrame | None] = []
    for mine, theirs in zip(own, received, strict=True):
        frames = [f for f in ([mine] if mine is not None else []) + theirs if f.height]
        if not frames:
            out.append(None)
        elif len(frames) == 1:
            out.append(frames[0])
        else:
            merged = consolidate(concat_batches(frames))
            out.append(merged if merged.height else None)
    return out


def check_same_plan(mesh: Transport, index: int, described: list[Any]) -> None:
    """Check that every worker compiled the same plan: ``described`` is each operator's kind,
    its columns and the positions of its inputs (a program that builds its graph differently
    on some worker, e.g. by iterating over a set, would otherwise exchange the wrong
    batches). Worker 0 sends its digest; the others compare it with theirs."""
    digest = hashlib.sha256(repr(described).encode()).hexdigest()
    if index == 0:
        mesh.broadcast(("plan", digest))
        return
    message = mesh.receive(0)
    if message[0] != "plan" or message[1] != digest:
        raise WorkerError(
            f"worker {index} built a different pipeline than worker 0 "
            f"(the program must build the same tables, in the same order, on every worker)"
        )
