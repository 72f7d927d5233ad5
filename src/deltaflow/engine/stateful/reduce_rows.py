"""The Python paths of a reduce: deltas of up to ``SMALL_DELTA_ROWS`` rows.

Simple reductions fold the delta into NumPy group columns (:mod:`.reduce_columns`); the
others work over row tuples (a few Polars calls in all, whatever the state holds). Both keep
the group rows they change in their own cache (see :class:`.reduce_state.ReduceState`).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._float_sums import compensate_small_sums, exact_sum, wrap_int64
from deltaflow._small_frames import column_values, frame_of, series_of_array, series_of_values
from deltaflow.engine.batch import DIFF, ID, consolidate, project
from deltaflow.engine.operators import Delta, projection_exprs, run_projection
from deltaflow.engine.stateful import reduce_columns
from deltaflow.engine.stateful.keys import (
    KH,
    TIME,
    key_hash_expr,
    key_hash_series,
    key_hashes_of_values,
)
from deltaflow.engine.stateful.reduce_columns import (
    ColumnGroups,
    Fold,
    fold_few,
    output_frame,
)
from deltaflow.engine.stateful.reduce_plan import SmallPlan
from deltaflow.engine.stateful.reduce_state import COUNT, KNOWN_LIMIT, LAST_TIME, ReduceState
from deltaflow.reducers import Row, inverts

NOT_FOLDED = object()  # _step_columns: the delta takes the row path
_NO_SHORTCUT = object()  # _step_few: the delta takes the rest of _step_columns


class ReduceRowPath(ReduceState):
    """The reduce step over Python tuples and NumPy group columns."""

    def _step_small(self, time: int, delta: pl.DataFrame) -> Delta:
        """The step for a delta of a few rows: the same results as the frame path, computed
        over Python tuples (the arrangements answer with row tuples for a few keys)."""
        if self._columns is not None:  # the row path keeps group rows as tuples
            self._drop_caches()
        frame = self._prepare_small(time, delta)
        self.match = [KH, *self.keys]
        plan = self._small_plan()
        rows = frame.rows()
        if self.rows is not None:
            self.rows.insert(frame, rows)
        at = {name: i for i, name in enumerate(frame.columns)}
        group_of = _getter([at[KH], *[at[k] for k in self.keys]])
        diff_at = at[DIFF]
        sums = [(2 + i, at[self.calls[i].args[0]]) for i in plan.accumulated]
        largest = [(2 + i, at[self.calls[i].args[0]]) for i in plan.largest]
        smallest = [(2 + i, at[self.calls[i].args[0]]) for i in plan.smallest]

        # Aggregate the delta per group: [count, any deletion, accumulators / min / max].
        touched: dict[tuple[Any, ...], list[Any]] = {}
        zeros = plan.zeros
        for row in rows:
            group = group_of(row)
            entry = touched.get(group)
            if entry is None:
                entry = touched[group] = [0, False, *zeros]
            diff = row[diff_at]
            entry[0] += diff
            if diff < 0:
                entry[1] = True
                continue
            for slot, position in sums:
                entry[slot] += row[position] * diff
            for slot, position in largest:
                value = row[position]
                if value is not None and (entry[slot] is None or value > entry[slot]):
                    entry[slot] = value
            for slot, position in smallest:
                value = row[position]
                if value is not None and (entry[slot] is None or value < entry[slot]):
                    entry[slot] = value
        if self.invertible:
            for row in rows:  # deletions, skipped above
                diff = row[diff_at]
                if diff < 0:
                    entry = touched[group_of(row)]
                    for slot, position in sums:
                        entry[slot] += row[position] * diff
        # Float sums added row by row above are redone accurately (Pathway compensates them).
        compensate_small_sums(
            self.calls, plan.accumulated, sums, rows, group_of, diff_at, touched, self.invertible
        )
        recompute: set[int] = set()
        if not self.invertible:
            recompute = {
                group[0] for group, entry in touched.items() if entry[1] or not self.foldable
            }
        # Old group rows: from the cache of rows this path wrote, else from the arrangement
        # (always for recomputed key hashes: every group with such a hash is recomputed).
        width = plan.width
        if recompute:  # every group of a recomputed key hash is read from ``groups``
            self._sync_groups()
        known = self._known
        missing = {group[0] for group in touched if group not in known} | recompute
        olds: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        if missing:
            for old in self.groups.lookup_rows(missing):
                olds[old[:width]] = old
        for group in touched:
            if group in known:
                cached = known[group]
                if cached is None:
                    olds.pop(group, None)
                else:
                    olds[group] = cached
        old_rows = list(olds.values())
        news: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for group, entry in touched.items():
            if group[0] not in recompute:
                new = plan.fold(entry, olds.get(group))
                if new is not None:
                    news[group] = new
        if recompute:
            assert self.rows is not None and self.rows.columns is not None
            news.update(
                self._recompute_small(
                    self.rows.lookup_rows(recompute), self.rows.columns, recompute
                )
            )
        return self._emit_small(plan, old_rows, olds, news, touched, recompute)

    def _prepare_small(self, time: int, delta: pl.DataFrame) -> pl.DataFrame:
        """What :meth:`_prepare` (plus the time column) gives, in one Polars call."""
        exprs = projection_exprs(self.pre)
        if exprs is None:
            frame = self._prepare(delta)
            if not self.invertible:
                frame = frame.with_columns(pl.lit(min(time, LAST_TIME), dtype=pl.Int64).alias(TIME))
            return frame
        cached = self._small_select
        built_from = tuple(map(id, exprs.values()))
        if cached is None or cached[0] != built_from:  # built once: expressions cost to build
            hashed = key_hash_expr(
                [exprs[k] for k in self.keys], [k.to_polars() for k in self.key_types]
            )
            cached = self._small_select = (
                built_from,
                [ID, DIFF, *exprs.values(), hashed.alias(KH)],
            )
        frame = project(delta, cached[1])
        if self.invertible:
            return frame
        return frame_of([*frame.get_columns(), _time_column(time, frame.height)])

    def _prepare_known(self, time: int, delta: pl.DataFrame) -> pl.DataFrame | None:
        """:meth:`_prepare_small`'s frame built from the delta's Series, without a query, when
        the reducers' arguments and the keys are columns as they are; else None. The key
        hashes of groups already in the column state are looked up, the others computed on
        the key Series."""
        copies = self.pre.copies(delta)
        if copies is None:
            return None
        source = dict(copies)
        keys = [delta.get_column(source[k]) for k in self.keys]
        state = self._columns
        hashes = _known_hashes(state.hash_of, keys) if state is not None else None
        if hashes is None:  # a new group (or a key not found by value, as NaN): hash them
            hashes = key_hash_series(keys)
            if hashes is None:
                return None
        columns = [
            delta.get_column(ID),
            delta.get_column(DIFF),
            *(delta.get_column(column).alias(name) for name, column in copies),
            hashes,
        ]
        if not self.invertible:
            columns.append(_time_column(time, delta.height))
        return frame_of(columns)

    def _recompute_small(
        self, rows: list[tuple[Any, ...]], names: list[str], touched: set[int] | None = None
    ) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        """Group rows computed from the current rows of the given groups, as the frame path's
        aggregations would (Python reducers see the rows in id order). ``touched``: the key
        hashes recomputed, whose stateful reducers' states are replaced by the new ones."""
        at = {name: i for i, name in enumerate(names)}
        diff_at, id_at, time_at = at[DIFF], at[ID], at[TIME]
        group_of = _getter([at[KH], *[at[k] for k in self.keys]])
        convert = [[_to_user(a) for a in c.arg_types] for c in self.calls]
        arg_at = [[at[a] for a in c.args] for c in self.calls]
        members: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        # A group's count includes retractions of rows never inserted (as the frame path's);
        # so do its count/sum/avg values, and user reducers see every row.
        everyone: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for row in rows:
            group = group_of(row)
            everyone.setdefault(group, []).append(row)
            if row[diff_at] > 0:
                members.setdefault(group, []).append(row)
        totals_of = [
            c.reducer.stateful
            or (c.reducer.name in ("count", "sum", "avg") and inverts(c.reducer, c.arg_types))
            for c in self.calls
        ]
        fresh: dict[int, dict[int, dict[tuple[Any, ...], Any]]] = {i: {} for i in self._states}
        news: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for group, live in members.items():
            live.sort(key=lambda r: r[id_at])
            every = everyone[group]
            count = sum(r[diff_at] for r in every)
            if count <= 0:
                continue
            if len(every) != len(live):
                every.sort(key=lambda r: r[id_at])
            else:
                every = live
            accs = []
            for index in range(len(self.calls)):
                if f"__acc{index}" in self.accs:
                    position = arg_at[index][0]
                    accs.append(wrap_int64(exact_sum(r[position] * r[diff_at] for r in every)))
            results = []
            for index, (call, positions, converters) in enumerate(
                zip(self.calls, arg_at, convert, strict=True)
            ):
                reducer_rows = [
                    Row(
                        r[id_at],
                        tuple(f(r[p]) for f, p in zip(converters, positions, strict=True)),
                        r[diff_at],
                        r[time_at],
                    )
                    for r in (every if totals_of[index] else live)
                ]
                # Back to storage: a Pointer a reducer returns is stored as its UInt128.
                if call.reducer.stateful:
                    before = self._states[index].get(group[0], {}).get(group)
                    result, state = call.reducer.python_stateful(reducer_rows, before)
                    if state is not None:
                        fresh[index].setdefault(group[0], {})[group] = state
                else:
                    result = call.reducer.python(reducer_rows)
                results.append(int(result) if isinstance(result, t.Pointer) else result)
            news[group] = (count, *accs, *results)
        for index, states in self._states.items():
            for key_hash in touched or ():
                states.pop(key_hash, None)
            states.update(fresh[index])
        return news

    def _emit_small(
        self,
        plan: SmallPlan,
        old_rows: list[tuple[Any, ...]],
        olds: dict[tuple[Any, ...], tuple[Any, ...]],
        news: dict[tuple[Any, ...], tuple[Any, ...]],
        touched: dict[tuple[Any, ...], list[Any]],
        recompute: set[int],
    ) -> Delta:
        """Retract the old rows of the changed groups, insert the new ones, run ``post``.

        A group whose row does not change is left alone (the frame path retracts and
        re-inserts it, which cancels out).
        """
        width = plan.width
        body_from = width + 1
        same = plan.same
        unchanged = set()
        inserted = []
        known = self._known
        dirty = self._dirty
        if len(known) > KNOWN_LIMIT:
            self._sync_groups()
            known.clear()
        for group, body in news.items():
            old = olds.get(group)
            if old is not None and same(old[body_from:-1], body):
                unchanged.add(group)
                known[group] = old
            else:
                inserted.append((group, old, body))
        changes: list[tuple[Any, ...]] = []
        diffs: list[int] = []
        for old in old_rows:
            group = old[:width]
            if group in unchanged or (group not in touched and group[0] not in recompute):
                continue  # unchanged, or a group whose key hash collides with a touched one
            changes.append(old[:-1])
            diffs.append(-1)
            if group not in dirty:
                dirty[group] = old
            known[group] = None
        for group in touched:
            if group not in news and group not in olds:
                if group not in dirty:  # came and went within the delta
                    dirty[group] = known.get(group)
                known[group] = None
        fresh = self._new_ids([g for g, old, _ in inserted if old is None])
        hidden = set()  # groups whose count or accumulators changed but not their values
        for group, old, body in inserted:
            if old is not None:
                gid = old[width]
                if plan.injective and same(old[plan.values_from : -1], body[plan.body_values :]):
                    hidden.add(group)
            else:
                gid = fresh[group]
            row = (*group, gid, *body)
            changes.append(row)
            diffs.append(1)
            if group not in dirty:
                dirty[group] = old
            known[group] = (*row, 1)
        if not changes:
            return None
        frame = plan.output_frame(changes, diffs)
        if plan.injective:
            # ``post`` shows every reducer value as it is: an output row changes exactly when
            # a value does, and output rows are then distinct (no consolidation needed).
            if hidden:
                shown = [row[:width] not in hidden for row in changes]
                frame = frame.filter(pl.Series(shown, dtype=pl.Boolean))
                if frame.height == 0:
                    return None
            return run_projection(self.post, frame, keep=[ID], tail=[DIFF])
        out = consolidate(run_projection(self.post, frame, keep=[ID], tail=[DIFF]))
        return out if out.height else None

    def _step_columns(self, time: int, delta: pl.DataFrame) -> Any:
        """The small-delta step over NumPy group columns (see reduce_columns); returns
        :data:`NOT_FOLDED` when the delta needs the row path."""
        if delta.height <= reduce_columns.FEW_ROWS:  # (read here: tests change it)
            few = self._step_few(delta)
            if few is not _NO_SHORTCUT:
                return few
        frame = self._prepare_known(time, delta)
        if frame is None:
            frame = self._prepare_small(time, delta)
        diffs = frame[DIFF].to_numpy()
        if not self.invertible and bool((diffs < 0).any()):
            return NOT_FOLDED  # a deletion under min/max: the group is recomputed
        plan = self._small_plan()
        state = self._column_state(plan)
        slots = self._frame_slots(state, frame, plan.width)
        # Only sums and extremes read their argument here (count ignores it, and it may be a
        # column NumPy cannot hold, such as 128-bit row ids).
        read = {*state.accumulated, *state.extremes}
        args = [
            frame[c.args[0]].to_numpy() if c.args and i in read else None
            for i, c in enumerate(self.calls)
        ]
        if self.rows is not None:
            self.rows.insert(frame)
        layout = plan.layout
        if len(slots) <= reduce_columns.FEW_ROWS:
            out = fold_few(
                state,
                slots.tolist(),
                diffs.tolist(),
                [None if a is None else a.tolist() for a in args],
                layout,
                [(layout[at][0], at) for at in plan.read_by_post],
                width=plan.width,
            )
        else:
            out = output_frame(
                state, Fold(state, slots, diffs, args), layout, plan.read_by_post, plan.width
            )
        return self._column_output(out, plan)

    def _fold_aggregated(self, agg: pl.DataFrame) -> Any:
        """:meth:`_step_columns` for a delta already aggregated per group by the frame path
        (``_aggregate_delta``: key hash, keys, count change, accumulator changes): one row per
        group folded into the column state, so that a big delta of few groups costs a query
        and a pass over its groups rather than the frame path's dozen queries and arrangement
        merge."""
        plan = self._small_plan()
        state = self._column_state(plan)
        changes: list[np.ndarray | None] = [
            agg[f"__acc{i}"].to_numpy() if i in state.accumulated else None
            for i in range(len(self.calls))
        ]
        slots = self._frame_slots(state, agg, plan.width)
        fold = Fold(state, slots, agg[COUNT].to_numpy(), changes, weighted=True)
        return self._column_output(
            output_frame(state, fold, plan.layout, plan.read_by_post, plan.width), plan
        )

    def _column_state(self, plan: SmallPlan) -> ColumnGroups:
        """The column state, made (after writing the cached group rows back) when there is
        none or it has grown past :data:`KNOWN_LIMIT`."""
        state = self._columns
        if state is None or len(state) > KNOWN_LIMIT:
            self._drop_caches()
            self.match = [KH, *self.keys]
            state = self._columns = ColumnGroups(
                [c.reducer.name for c in self.calls],
                plan.accumulated,
                [bool(c.arg_types) and c.arg_types[0] == t.FLOAT for c in self.calls],
            )
        return state

    def _column_output(self, out: pl.DataFrame | None, plan: SmallPlan) -> Delta:
        """The column paths' output rows projected by ``post`` (consolidated unless each
        changed group gives one distinct row)."""
        if out is None:
            return None
        if plan.injective:  # one row per changed group: distinct output rows
            return run_projection(self.post, out, keep=[ID], tail=[DIFF])
        out = consolidate(run_projection(self.post, out, keep=[ID], tail=[DIFF]))
        return out if out.height else None

    def _step_few(self, delta: pl.DataFrame) -> Any:
        """:meth:`_step_columns` for a delta of a few rows whose keys and arguments are
        columns of ``delta`` as they are, once the column state exists, when ``post`` only
        picks and renames columns: the delta's Python values (a ListFrame's lists, or read
        from its Series) folded into the state, and the output made at once as a ListFrame,
        without the frames in between (a single-row update's cost is the number of such
        calls). :data:`_NO_SHORTCUT` when the delta does not qualify."""
        state = self._columns
        plan = self._plan
        if state is None or plan is None or self.rows is not None or len(state) > KNOWN_LIMIT:
            return _NO_SHORTCUT  # (rows: min/max keep the input rows, which need a frame)
        outputs = plan.outputs
        copies = self.pre.copies(delta)
        if outputs is None or copies is None:
            return _NO_SHORTCUT
        source = dict(copies)
        diffs = column_values(delta, DIFF)
        if not self.invertible and min(diffs) < 0:
            return NOT_FOLDED  # a deletion under min/max: the group is recomputed
        columns = [column_values(delta, source[k]) for k in self.keys]
        values = list(zip(*columns))
        hash_of = state.hash_of
        try:
            hashes = [hash_of[group] for group in values]
        except KeyError:  # a group new to the column state: hashed from its keys
            hashed = key_hashes_of_values(columns, plan.key_dtypes)
            if hashed is None:
                series = key_hash_series([delta.get_column(source[k]) for k in self.keys])
                if series is None:
                    return _NO_SHORTCUT
                hashed = series.to_list()
            hashes = hashed
        groups = [(key_hash, *group) for key_hash, group in zip(hashes, values, strict=True)]
        slots = self._slots(state, groups, plan.width)
        read = {*state.accumulated, *state.extremes}
        args = [
            column_values(delta, source[c.args[0]]) if c.args and i in read else None
            for i, c in enumerate(self.calls)
        ]
        return fold_few(state, slots, diffs, args, plan.layout, outputs, width=plan.width)

    def _frame_slots(self, state: ColumnGroups, frame: pl.DataFrame, width: int) -> np.ndarray:
        """:meth:`_slots` of the groups of ``frame``'s rows (its key hash and key columns)."""
        groups = list(zip(frame[KH].to_list(), *(frame[k].to_list() for k in self.keys)))
        return np.array(self._slots(state, groups, width), dtype=np.int64)

    def _slots(self, state: ColumnGroups, groups: list[tuple[Any, ...]], width: int) -> list[int]:
        """The slots of ``groups`` (key hash and keys) in the column state; a group not there
        yet is loaded from the arrangement, or is new and gets an id."""
        slot = state.slot
        try:  # every group known (the usual case): one pass, per row in C
            return list(map(slot.__getitem__, groups))
        except KeyError:
            pass
        missing = {g for g in groups if g not in slot}
        found = {row[:width]: row for row in self.groups.lookup_rows({g[0] for g in missing})}
        new = [g for g in missing if g not in found]
        ids = self._new_ids(new)
        for group in missing:
            state.add(group, found.get(group), width, ids.get(group))
        return list(map(slot.__getitem__, groups))


def _known_hashes(hash_of: dict[tuple[Any, ...], int], keys: list[pl.Series]) -> pl.Series | None:
    """The ``_kh`` column of rows whose keys are all in ``hash_of``, else None."""
    if not hash_of:
        return None
    try:
        hashes = list(map(hash_of.__getitem__, zip(*(key.to_list() for key in keys))))
    except KeyError:
        return None
    return series_of_values(KH, hashes, pl.UInt64)


def _time_column(time: int, rows: int) -> pl.Series:
    """The ``_time`` column of a prepared small delta: a Series rather than a query (a query
    releases the GIL, see input_session)."""
    return series_of_array(TIME, np.full(rows, min(time, LAST_TIME), dtype=np.int64))


def _getter(positions: list[int]) -> Any:
    """A function taking the values at ``positions`` of a row, as a tuple."""
    if len(positions) == 1:
        only = positions[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*positions)


def _to_user(dtype: t.DType) -> Any:
    """How a stored value becomes the value a Python reducer sees (ids are Pointers)."""
    if dtype.to_polars() == pl.UInt128:
        return lambda v: None if v is None else t.Pointer(v)
    return lambda v: v
