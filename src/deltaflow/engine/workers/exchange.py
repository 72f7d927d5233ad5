"""Sending a time's rows, and the gates' summaries, to the workers that need them.

Before an exchanging operator runs (see ``placement``), each worker sends the others their
parts of the operator's input deltas: a partitioned operator's rows split by the owner of
their key (a reduce's combined first, see ``combine``), an operator on worker 0 every
worker's rows. At a behavior's gate shared by the workers, each worker then sends the others
the summary of its share (``temporal_behavior.GateSummary``). The receiving side is
``progress.Mailbox``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from deltaflow.engine.operators import Operator
from deltaflow.engine.workers.combine import combine_threshold, combiner_for
from deltaflow.engine.workers.config import WorkerConfig
from deltaflow.engine.workers.placement import KeyHasher, Placement, split_by_key
from deltaflow.engine.workers.transport import Transport, encode_frame


class Exchange:
    """One worker's sending side of the exchanges, with what it counts."""

    def __init__(
        self,
        config: WorkerConfig,
        mesh: Transport,
        operators: Sequence[Operator],
        placement: list[Placement],
        hashers: list[list[KeyHasher] | None],
        spread: list[bool],
        inputs_of: list[list[int]],
    ) -> None:
        self.index, self.count = config.index, config.count
        self.mesh = mesh
        self.hashers = hashers
        self.spread = spread
        self.inputs_of = inputs_of
        # Partitioned reduces whose rows are combined before the exchange (see ``combine``).
        self.combiners = {
            position: combiner
            for position, op in enumerate(operators)
            if placement[position] is Placement.PARTITIONED
            and (combiner := combiner_for(op)) is not None
        }
        self.combine_rows = combine_threshold()
        self.rows_combined = [0, 0]  # rows combined, and the rows they became
        self.rows_exchanged = 0  # rows this worker sent to others

    def send_parts(
        self, time: int, position: int, deltas: list[pl.DataFrame | None]
    ) -> tuple[list[pl.DataFrame | None], list[int]]:
        """Send the other workers their parts of operator ``position``'s input deltas; this
        worker's own parts, and the workers whose parts it must receive."""
        me, mesh = self.index, self.mesh
        spread = [self.spread[i] for i in self.inputs_of[position]]
        hashers = self.hashers[position]
        if hashers is None:  # gathered on worker 0
            if me != 0:
                sent = [d if s else None for d, s in zip(deltas, spread, strict=True)]
                self.rows_exchanged += sum(d.height for d in sent if d is not None)
                mesh.send(0, ("data", time, position, [encode_frame(d) for d in sent]))
                return [None] * len(deltas), []
            return deltas, list(mesh.peers)
        combiner = self.combiners.get(position)
        first = deltas[0]
        if combiner is not None and first is not None and first.height >= self.combine_rows:
            combined = combiner(first)
            self.rows_combined[0] += first.height
            self.rows_combined[1] += combined.height
            deltas = [combined]
        shares = [
            None if d is None or d.height == 0 else split_by_key(d, hasher(d), self.count)
            for d, hasher in zip(deltas, hashers, strict=True)
        ]
        senders = mesh.peers if any(spread) else [p for p in mesh.peers if p == 0]
        if me == 0 or any(spread):
            for peer in mesh.peers:
                sent = [None if s is None else s[peer] for s in shares]
                self.rows_exchanged += sum(d.height for d in sent if d is not None)
                mesh.send(peer, ("data", time, position, [encode_frame(d) for d in sent]))
        own: list[pl.DataFrame | None] = [None if s is None else s[me] for s in shares]
        return own, list(senders)

    def send_summary(self, time: int, position: int, op: Any, delta: pl.DataFrame | None) -> Any:
        """At a gate sharing the frontier of every worker: the first half of its step over
        this worker's rows (``TimeGateOperator.prepare``), whose summary goes to every other
        worker."""
        summary = op.prepare(time, delta)
        self.mesh.broadcast(("frontier", time, position, tuple(summary)))
        return summary
