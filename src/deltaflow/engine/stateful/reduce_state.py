"""The reduce operator's state and its bookkeeping (see :mod:`.reduce` for the whole).

:class:`ReduceState` sets up what a reduce keeps (the group arrangement, the input rows when a
reducer needs them, the caches of the Python paths, user reducers' states, Error cells) and
the helpers every path shares: the key projection, group ids, the order of a group row's
columns, and the write-back of the Python paths' group rows into the arrangement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from deltaflow import errors
from deltaflow._ids import PYTHON_KEY_ROWS, hash_columns, key_ids_of_values
from deltaflow.engine.batch import DIFF, ID, python_exact
from deltaflow.engine.operators import Operator
from deltaflow.engine.stateful.arrangement import Arrangement
from deltaflow.engine.stateful.keys import KH, TIME, add_key_columns, constant_id, constant_ids
from deltaflow.engine.stateful.nodes import ReduceNode
from deltaflow.engine.stateful.reduce_columns import ColumnGroups, eligible
from deltaflow.engine.stateful.reduce_plan import SmallPlan
from deltaflow.expressions.evaluate import error_flag
from deltaflow.reducers import inverts

COUNT = "__cnt"
NEG = "__neg"
KNOWN_LIMIT = 200_000  # group rows cached by the Python path
_FOLDABLE = frozenset(["count", "sum", "avg", "min", "max"])
_ACCUMULATED = frozenset(["sum", "avg"])
# Times order rows for reducers (latest, earliest ...); the engine's final time (2^64 - 2,
# when held rows are let out at the end) is stored as the largest Int64.
LAST_TIME = 2**63 - 1


class ReduceState(Operator[ReduceNode]):
    """What a reduce keeps between steps, and the bookkeeping both paths share."""

    handles_errors = True  # through the error policy of its key/argument projection

    # User reducers' states being computed by a frame-path recomputation (see _recompute).
    _fresh_states: dict[int, dict[int, dict[tuple[Any, ...], Any]]]

    def __init__(self, node: ReduceNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.keys = list(node.keys)
        # Errors as values: a row with an error in a grouping column is left out and
        # reported; one with an error argument is left out of the reduction (its error was
        # reported where it arose).
        self.pre.set_error_policy(
            self.keys, "row skipped: an Error value in the grouping columns", ""
        )
        self.key_types = list(node.key_types)
        self.calls = list(node.reducers)
        self.post = node.post
        self.id_key = node.id_key
        self.invertible = all(inverts(c.reducer, c.arg_types) for c in self.calls)
        native = all(not a.stored_as_object for c in self.calls for a in c.arg_types)
        # Insert-only deltas can be folded into the old values without reading the rows.
        # (min over an Optional column is left out: a None makes the minimum None, which a
        # fold that reads None as "no value yet" cannot tell apart.)
        self.foldable = (
            not self.invertible
            and native
            and all(
                c.reducer.name in _FOLDABLE
                and not (c.reducer.name == "min" and c.arg_types[0].is_optional)
                for c in self.calls
            )
        )
        self.accumulated = self.invertible or self.foldable
        self.accs = [
            f"__acc{i}"
            for i, c in enumerate(self.calls)
            if self.accumulated and c.reducer.name in _ACCUMULATED
        ]
        self.groups = Arrangement(index_eagerly=True)
        self.rows: Arrangement | None = None if self.invertible else Arrangement(ignore=(TIME,))
        self.match: list[str] | None = None
        self.state_columns: list[str] | None = None
        self.small = self._small_possible(native)
        # Big deltas (STREAMING_ROWS) are aggregated in one streaming query (projection and
        # group_by fused; Polars' streaming group_by is several times faster than the eager
        # one on millions of rows) when no column is a Python object.
        self.lazy_aggregate = (
            native and bool(self.keys) and all(k.to_polars() != pl.Object for k in self.key_types)
        )
        self._plan: SmallPlan | None = None
        self._small_select: tuple[Any, list[Any]] | None = None  # see _prepare_small
        # Group rows as the Python path last wrote them (None: no such group), so that hot
        # groups need no arrangement lookup; cleared by the frame path, which does not keep it.
        self._known: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}
        # The Python path writes group rows to ``_known`` only; ``groups`` catches up when
        # something else reads it (:meth:`_sync_groups`). Per group changed since: the row
        # ``groups`` still holds (None: none). Storing every change at once cost a frame and
        # a tail insert per time for rows that are mostly changed again a moment later.
        self._dirty: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}
        # Reducer values that are Errors, by group id (see _with_error_cells).
        self._error_cells: dict[int, set[str]] = {}
        # Stateful (user) reducers: per call index, key hash -> group key -> group state.
        self._states: dict[int, dict[int, dict[tuple[Any, ...], Any]]] = {
            i: {} for i, c in enumerate(self.calls) if c.reducer.stateful
        }
        # Simple reductions keep the streaming path's group state in NumPy columns instead
        # of tuples (see reduce_columns): None until a small delta comes, and after a
        # frame-path step.
        self._columns: ColumnGroups | None = None
        self._columns_possible = (
            self.small
            and self.accumulated
            and eligible(self.calls, self.key_types, node.id_key is not None, bool(self._states))
        )
        # Errors as values (a run with terminate_on_error=False): an error in a reducer's
        # argument leaves the row out of that reducer only (skip_errors, the default) or makes
        # that reducer's value an Error (skip_errors=False); the other reducers, count()
        # included, still see the row. Error cells are kept as flags on the stored rows, so
        # touched groups are recomputed from their rows (no accumulators, no Python path).
        self.skip_errors = node.skip_errors
        self.argument_errors = errors.keeps_errors() and any(c.args for c in self.calls)
        self._flags = [error_flag(a) for c in self.calls for a in c.args]
        if self.argument_errors:
            self.pre.set_error_policy(
                self.keys,
                "row skipped: an Error value in the grouping columns",
                flag_others=True,
            )
            self.invertible = self.foldable = self.accumulated = False
            self.accs = []
            self.rows = Arrangement(ignore=(TIME,))
            self.small = False

    def _small_possible(self, native: bool) -> bool:
        """The Python path needs keys hashable by Polars without surrogates and columns that
        round-trip exactly through Python values."""
        keys = [k.to_polars() for k in self.key_types]
        if any(k == pl.Object or not python_exact(k) for k in keys):
            return False
        if self.accumulated and not native:
            return False
        return all(python_exact(a.to_polars()) for c in self.calls for a in c.arg_types) and all(
            python_exact(c.dtype.to_polars()) for c in self.calls
        )

    # --- helpers ---------------------------------------------------------------------------
    def _prepare(self, delta: pl.DataFrame) -> pl.DataFrame:
        frame = self.pre.run(delta, keep=[ID, DIFF])
        if self.argument_errors:  # every stored row has every flag, in one order
            flags = set(self._flags)
            frame = frame.with_columns(
                [pl.lit(False).alias(f) for f in self._flags if f not in frame.columns]
            )
            frame = frame.select([c for c in frame.columns if c not in flags] + self._flags)
        frame, match = add_key_columns(frame, self.keys)
        self.match = match
        return frame

    def _group_ids(self, groups: pl.DataFrame) -> pl.Series:
        if self.id_key is not None:
            ids = groups[self.id_key]
            if ids.null_count():
                raise ValueError(f"{self.describe()}: groupby(id=...) met a None id value")
            return ids.alias(ID)
        if not self.keys:
            return constant_ids(groups.height)
        return hash_columns(groups, list(zip(self.keys, self.key_types, strict=True)))

    def _key_columns(self, match: Sequence[str]) -> list[str]:
        """Key columns that are not themselves join columns (object keys have surrogates)."""
        return [k for k in self.keys if k not in match]

    def _state_columns(self, match: Sequence[str]) -> list[str]:
        """The columns of a group row, in the one order both paths store them."""
        if self.state_columns is None:
            self.state_columns = [
                *match,
                *self._key_columns(match),
                ID,
                COUNT,
                *self.accs,
                *[c.column for c in self.calls],
            ]
        return self.state_columns

    def _state_schema(self) -> dict[str, pl.DataType]:
        schema: dict[str, pl.DataType] = {KH: pl.UInt64()}
        schema.update({k: d.to_polars() for k, d in zip(self.keys, self.key_types, strict=True)})
        schema[ID] = pl.UInt128()
        schema[COUNT] = pl.Int64()
        for index, call in enumerate(self.calls):
            name = f"__acc{index}"
            if name in self.accs:
                schema[name] = call.arg_types[0].to_polars()
        for call in self.calls:
            schema[call.column] = call.dtype.to_polars()
        return schema

    # --- the Python paths' group rows ---------------------------------------------------
    def _small_plan(self) -> SmallPlan:
        if self._plan is None:
            self._plan = SmallPlan(self)
        return self._plan

    def _drop_caches(self) -> None:
        """Write the Python paths' group rows back and forget them (before a step that
        changes ``groups`` by itself)."""
        self._sync_groups()
        self._known.clear()
        self._columns = None

    def _sync_groups(self) -> None:
        """Store in ``groups`` the group rows the Python paths changed since the last call
        (their old rows retracted, their current ones inserted)."""
        if self._columns is not None:
            plan = self._small_plan()
            self._columns.sync(lambda rows: self.groups.insert(plan.state_frame(rows), rows))
        dirty = self._dirty
        if not dirty:
            return
        self._dirty = {}
        plan = self._small_plan()
        known = self._known
        rows: list[tuple[Any, ...]] = []
        for group, stored in dirty.items():
            current = known[group]
            if stored is current:
                continue
            if stored is not None:
                rows.append((*stored[:-1], -1))
            if current is not None:
                rows.append(current)
        if rows:
            self.groups.insert(plan.state_frame(rows), rows)

    def _new_ids(self, groups: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
        """Ids of groups seen for the first time (same function as the frame path)."""
        if not groups:
            return {}
        if self.id_key is not None:
            position = 1 + self.keys.index(self.id_key)
            given: dict[tuple[Any, ...], int] = {}
            for group in groups:
                if group[position] is None:
                    raise ValueError(f"{self.describe()}: groupby(id=...) met a None id value")
                given[group] = group[position]
            return given
        if not self.keys:
            value = constant_id()
            return {group: value for group in groups}
        values = [[g[1 + i] for g in groups] for i in range(len(self.keys))]
        hashed: list[int] | None = (
            key_ids_of_values(list(zip(values, self.key_types, strict=True)))
            if len(groups) <= PYTHON_KEY_ROWS
            else None
        )
        if hashed is None:
            frame = pl.DataFrame(
                [
                    pl.Series(k, column, dtype=d.to_polars())
                    for k, column, d in zip(self.keys, values, self.key_types, strict=True)
                ]
            )
            keys = list(zip(self.keys, self.key_types, strict=True))
            hashed = hash_columns(frame, keys).to_list()
        return dict(zip(groups, hashed, strict=True))
