"""``deduplicate``: per instance, the last row whose value the acceptor accepted.

The acceptor sees values one after another, so the state is a plain dict ``instance key ->
(value, row, instance)`` and a time touches only the instances of its inserted rows.
Retractions are ignored: an accepted row stays the instance's row until a later one is
accepted (as in Pathway).

The state can outlive a run (see docs/persistence.md, *Operator state*): the operator then
records, per time, the entries a time changed (:meth:`DeduplicateOperator.state_changes_until`
gives the checkpointer exactly the entries of a given time, even when the engine is already
further), and a restarted run :meth:`~DeduplicateOperator.restore_state` s it. A restored
operator emits its rows at its first time and ignores the input of that time: it is the replay
of what the saved state already reflects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow import errors
from deltaflow._ids import hash_columns
from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.stateful.keys import constant_ids
from deltaflow.engine.stateful.nodes import DeduplicateNode

Entry = tuple[Any, tuple[Any, ...], Any]
"""One instance's state: (accepted value, the row's columns, the instance value)."""

_ABSENT = object()  # an instance without an entry before a change (undo log)


def _acceptor_order(values: list[Any], rows: list[tuple[Any, ...]], ids: list[Any]) -> list[int]:
    """The positions of a time's inserted rows in the order the acceptor sees them: by value,
    then by the row's columns, as Pathway does. The order must not depend on the order of the
    rows in the delta, which differs with the number of workers (parts gathered from several
    workers). Values or rows that cannot be compared are ordered by value, then by id, or by
    id alone."""
    keys: list[Callable[[int], Any]] = [
        lambda i: (_order_key(values[i]), tuple(map(_order_key, rows[i]))),
        lambda i: (_order_key(values[i]), ids[i]),
        lambda i: ids[i],
    ]
    for key in keys:
        try:
            return sorted(range(len(values)), key=key)
        except (TypeError, ValueError):  # e.g. Json values, arrays
            continue
    raise AssertionError("ids are comparable")


def _order_key(value: Any) -> Any:
    return (0, 0) if value is None else (1, value)


class DeduplicateOperator(Operator[DeduplicateNode]):
    persistent_kind = "deduplicate"

    def __init__(self, node: DeduplicateNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.acceptor = node.acceptor
        self.pre.set_error_policy(
            ["__inst"] if node.has_instance else [],
            "row skipped: an Error value in the deduplicate instance",
            "row skipped: an Error value in the deduplicate value",
        )
        self.has_instance = node.has_instance
        self.instance_type = node.instance_type
        self.names = list(node.columns)
        self.persistent_name: str | None = getattr(node, "name", None)
        self.current: dict[Any, Entry] = {}
        # The columns' Polars types as the input delivers them (until then: as declared).
        self._schema = {name: dtype.to_polars() for name, dtype in self.columns.items()}
        # Persistence (set by deltaflow.persistence.run for a persisted operator).
        self._log: list[tuple[int, Any, Any]] | None = None  # (time, key, entry before)
        self._restored: list[Entry] | None = None  # rows to emit at the first time
        self._skip_time: int | None = None  # the time whose input is a replay

    # --- persistence ---------------------------------------------------------------------
    @property
    def state_layout(self) -> list[str]:
        """What a saved state must match to be restored: the columns and the instance mode."""
        return [*self.names, "+instance" if self.has_instance else "-instance"]

    @property
    def always_step(self) -> bool:
        """Step at the next time even without input, while restored rows wait to be emitted."""
        return self._restored is not None

    def record_changes(self) -> None:
        """Start remembering which entries each time changes (for checkpoints)."""
        if self._log is None:
            self._log = []

    def has_unsaved_changes(self) -> bool:
        return bool(self._log)

    def state_changes_until(self, time: int) -> dict[Any, Entry]:
        """The entries changed by the times up to ``time`` (not yet handed out), as they were
        at the end of ``time``; forgets them. Later times' changes stay recorded."""
        assert self._log is not None, "record_changes() was not called"
        changed: set[Any] = set()
        before_later: dict[Any, Any] = {}  # key -> its entry before the first later change
        kept: list[tuple[int, Any, Any]] = []
        for entry_time, key, previous in self._log:
            if entry_time <= time:
                changed.add(key)
            else:
                before_later.setdefault(key, previous)
                kept.append((entry_time, key, previous))
        self._log = kept
        out: dict[Any, Entry] = {}
        for key in changed:
            value = before_later.get(key, self.current.get(key, _ABSENT))
            if value is not _ABSENT:
                out[key] = value
        return out

    def restore_state(self, entries: dict[Any, Entry], replay_time: int) -> None:
        """Take over a saved state: its rows are emitted at the next time (``replay_time``),
        whose input is ignored."""
        self.current = dict(entries)
        self._restored = list(self.current.values())
        self._skip_time = replay_time

    # --- the operator --------------------------------------------------------------------
    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        restored, self._restored = self._restored, None
        if self._skip_time is not None:
            if time == self._skip_time:
                delta = None  # the replay of what the restored state already reflects
            elif time > self._skip_time:
                self._skip_time = None
        old_rows: dict[Any, tuple[Any, tuple[Any, ...] | None]] = {}
        if delta is not None and delta.height:
            old_rows = self._accept(time, delta)
        if restored:
            for instance_value in (entry[2] for entry in restored):
                old_rows.setdefault(t.canonical_key(instance_value), (instance_value, None))
        if not old_rows:
            return None
        return self._changes(old_rows)

    def _accept(
        self, time: int, delta: pl.DataFrame
    ) -> dict[Any, tuple[Any, tuple[Any, ...] | None]]:
        """Run the acceptor over the inserted rows (see :func:`_acceptor_order`); per changed
        instance, its row before this time (None: it had none)."""
        frame = self.pre.run(delta, keep=[ID, *self.names, DIFF])
        inserted = frame.filter(pl.col(DIFF) > 0)
        old_rows: dict[Any, tuple[Any, tuple[Any, ...] | None]] = {}
        if inserted.height == 0:
            return old_rows
        values = t.values_from_series(inserted["__val"])
        instances = (
            t.values_from_series(inserted["__inst"])
            if self.has_instance
            else [None] * inserted.height
        )
        rows = inserted.select(self.names).rows()
        self._schema = {name: inserted.schema[name] for name in self.names}
        log = self._log
        for position in _acceptor_order(values, rows, inserted[ID].to_list()):
            value, instance, row = values[position], instances[position], rows[position]
            key = t.canonical_key(instance)
            previous = self.current.get(key)
            if previous is not None and not self._accepts(value, previous[0]):
                continue
            if key not in old_rows:
                old_rows[key] = (instance, previous[1] if previous is not None else None)
            if log is not None:
                log.append((time, key, previous if previous is not None else _ABSENT))
            self.current[key] = (value, row, instance)
        return old_rows

    def _accepts(self, value: Any, previous: Any) -> bool:
        """The acceptor's verdict; an acceptor that raises stops the run, or with
        ``terminate_on_error=False`` rejects the row (reported, as in Pathway)."""
        try:
            return bool(self.acceptor(value, previous))
        except Exception as error:  # noqa: BLE001 - user code: reported per row
            errors.on_failure(errors.exception_message(error), error)
            return False

    def _changes(self, old_rows: dict[Any, tuple[Any, tuple[Any, ...] | None]]) -> Delta:
        instances_out: list[Any] = []
        data: list[tuple[Any, ...]] = []
        signs: list[int] = []
        for key, (instance, old_row) in old_rows.items():
            if old_row is not None:
                instances_out.append(instance)
                data.append(old_row)
                signs.append(-1)
            instances_out.append(instance)
            data.append(self.current[key][1])
            signs.append(1)
        out = (
            pl.DataFrame(data, schema=self._schema, orient="row")
            if self.names
            else pl.DataFrame({"__": [0] * len(data)})
        )
        if self.has_instance:
            inst = t.series_from_values("__inst", instances_out, self.instance_type or t.ANY)
            ids = hash_columns(inst.to_frame(), [("__inst", self.instance_type or t.ANY)])
        else:
            ids = constant_ids(len(data))
        out = out.with_columns(ids.alias(ID), pl.Series(DIFF, signs, dtype=pl.Int64))
        return consolidate(out.select([ID, *self.names, DIFF]))
