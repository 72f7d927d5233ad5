"""Operator states that outlive a run (today: ``deduplicate``).

Most operators rebuild their state by replaying the persisted inputs. A ``deduplicate`` cannot:
its result depends on the order in which values came and on the acceptor of the run that saw
them, so its state is saved in the checkpoints instead, and a restarted run takes it over
(even when the acceptor changed, or when the input is a static table that is not persisted).

Which operators are persisted: with ``PersistenceMode.PERSISTING`` every one, identified by its
``name=`` or else by its rank among the unnamed operators of its kind (in plan order); with
``SELECTIVE_PERSISTING`` only those given a ``name=``. An operator takes part through a small
protocol (see :class:`deltaflow.engine.stateful.deduplicate.DeduplicateOperator`):
``persistent_kind``, ``persistent_name``, ``state_layout``, ``record_changes()``,
``has_unsaved_changes()``, ``state_changes_until(time)`` and
``restore_state(entries, replay_time)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from deltaflow.persistence.checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    OperatorState,
)

logger = logging.getLogger("deltaflow.persistence")

COMPACT_AFTER_CHUNKS = 32
"""An operator's saved state is rewritten as one chunk past this many chunks."""


def persisted_operators(operators: Sequence[Any], *, only_named: bool) -> list[tuple[str, Any]]:
    """The operators whose state is persisted, each with its persistent id."""
    found: list[tuple[str, Any]] = []
    taken: set[str] = set()
    unnamed: dict[str, int] = {}
    for op in operators:
        kind = getattr(op, "persistent_kind", None)
        if kind is None:
            continue
        name = op.persistent_name
        if name is None:
            if only_named:
                continue
            unnamed[kind] = unnamed.get(kind, 0) + 1
            base = f"{kind}#{unnamed[kind]}"
        else:
            base = f"{kind}:{name}"
        persistent_id, count = base, 2
        while persistent_id in taken:  # one name given twice: number them in plan order
            persistent_id = f"{base}#{count}"
            count += 1
        taken.add(persistent_id)
        found.append((persistent_id, op))
    return found


class OperatorStates:
    """The persisted operators of one run: restores them, and writes what changed."""

    def __init__(self, store: CheckpointStore, operators: list[tuple[str, Any]]) -> None:
        self.store = store
        self.operators = operators
        self.saved: dict[str, OperatorState] = {}
        for _, op in operators:
            op.record_changes()

    def restore(self, checkpoint: Checkpoint | None, replay_time: int) -> bool:
        """Give each operator its saved state (its rows go out at ``replay_time``, whose
        input it ignores); whether any was restored. The saved states of operators this
        program does not have are kept for later runs."""
        restored = False
        if checkpoint is not None:
            self.saved = dict(checkpoint.operators)
        for persistent_id, op in self.operators:
            stored = checkpoint.operators.get(persistent_id) if checkpoint else None
            if stored is None:
                continue
            if stored.layout != op.state_layout:
                raise CheckpointError(
                    f"persistence: the state of {persistent_id!r} was saved with columns "
                    f"{stored.layout} but the operator now has {op.state_layout}; give the "
                    f"operator another name= or use a new persistence directory"
                )
            entries = self.store.read_operator_state(stored)
            op.restore_state(entries, replay_time)
            restored = True
            logger.info(
                "persistence: restored the state of %s (%d entries)", persistent_id, len(entries)
            )
        return restored

    def has_unsaved_changes(self) -> bool:
        return any(op.has_unsaved_changes() for _, op in self.operators)

    def write(self, number: int, time: int) -> dict[str, OperatorState]:
        """Phase one for the operators: store the entries changed up to ``time``; the states
        to name in checkpoint ``number``'s manifest."""
        ours = {persistent_id for persistent_id, _ in self.operators}
        states = {k: v for k, v in self.saved.items() if k not in ours}
        for persistent_id, op in self.operators:
            previous = self.saved.get(persistent_id)
            state = OperatorState(op.state_layout, list(previous.chunks) if previous else [])
            changes = op.state_changes_until(time)
            if changes:
                state.chunks.append(self.store.write_operator_chunk(persistent_id, number, changes))
            if len(state.chunks) > COMPACT_AFTER_CHUNKS:
                entries = self.store.read_operator_state(state)
                state.chunks = [
                    self.store.write_operator_chunk(
                        persistent_id, number, entries, suffix="-compact"
                    )
                ]
            if state.chunks:
                states[persistent_id] = state
        self.saved = states
        return states
