"""The reduce operator: one output row per group, updated for the groups a delta touches.

State: ``groups``, an arrangement of the current group rows (key hash, key values, id, count,
accumulators and reducer values) keyed by the group-key hash. When every reducer is invertible
(count, sum, avg) that is all: a delta is aggregated per group and added to the accumulators.
Otherwise the input rows are arranged by group key as well. A group whose delta only inserts rows
is *folded* when every reducer can absorb insertions (count, sum, avg, min, max: the new min is
the min of the old one and the delta's); any other touched group is recomputed from its current
rows (with Polars aggregations where they exist, in Python for the others).

Each step takes one of two paths with the same results: deltas of up to
:data:`SMALL_DELTA_ROWS` rows are handled in plain Python over row tuples (a few Polars calls in
all, whatever the state holds), bigger ones with Polars frame operations.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow import errors
from deltaflow._float_sums import compensate_small_sums, exact_sum, sum_expr
from deltaflow._ids import hash_columns
from deltaflow.engine.batch import (
    DIFF,
    ID,
    STREAMING_ROWS,
    collect,
    consolidate,
    mark_distinct_ids,
    python_exact,
)
from deltaflow.engine.operators import Delta, Operator, projection_exprs, run_projection
from deltaflow.engine.stateful.arrangement import (
    KH,
    TIME,
    Arrangement,
    add_key_columns,
    constant_id,
    constant_ids,
    key_hash_expr,
)
from deltaflow.engine.stateful.nodes import ReduceNode
from deltaflow.engine.stateful.reduce_columns import (
    ColumnGroups,
    Fold,
    eligible,
    output_frame,
    sum_is_safe,
)
from deltaflow.expressions.evaluate import error_flag
from deltaflow.reducers import Row, inverts

COUNT = "__cnt"
NEG = "__neg"
SMALL_DELTA_ROWS = 1024  # deltas up to this many rows take the Python path
COLUMN_GROUPS = True  # simple reductions keep that path's groups in NumPy columns (tests: off)
_KNOWN_LIMIT = 200_000  # group rows cached by the Python path
_FOLDABLE = frozenset(["count", "sum", "avg", "min", "max"])
_ACCUMULATED = frozenset(["sum", "avg"])
_NOT_FOLDED = object()  # _step_columns: the delta takes the row path
# Times order rows for reducers (latest, earliest ...); the engine's final time (2^64 - 2,
# when held rows are let out at the end) is stored as the largest Int64.
_LAST_TIME = 2**63 - 1
# The state of a user reducer that folded an Error in (see ReduceOperator._poison_states).
_POISONED = object()


class ReduceOperator(Operator[ReduceNode]):
    handles_errors = True  # through the error policy of its key/argument projection

    def __init__(self, node: ReduceNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.keys = list(node.keys)
        # Errors as values: a row with an error in a grouping column is left out and
        # reported; one with an error argument is left out of the reduction (its error was
        # reported where it arose).
        self.pre.set_error_policy(
            self.keys, "Error value encountered in grouping columns, skipping the row", ""
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
        self._plan: _SmallPlan | None = None
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
                "Error value encountered in grouping columns, skipping the row",
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

    # --- step ------------------------------------------------------------------------------
    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        # Reducer failures become Error cells only on the frame path (runs keeping errors).
        if self.small and delta.height <= SMALL_DELTA_ROWS and not errors.keeps_errors():
            if self._columns_possible and COLUMN_GROUPS and not self.argument_errors:
                out = self._step_columns(time, delta)
                if out is not _NOT_FOLDED:
                    return out
            return self._step_small(time, delta)
        return self._step_big(time, delta)

    def _step_big(self, time: int, delta: pl.DataFrame) -> Delta:
        self._drop_caches()
        if self.invertible:
            # Aggregate the delta per group first: hashing then costs per group, not per row.
            agg, match = self._aggregate_delta(delta)
            old = self.groups.lookup(agg[KH]) if self.groups.size else None
            new = self._accumulate(agg, old, match)
            news = [new]
        else:
            frame = self._prepare(delta)
            match = self.match or [KH]
            assert self.rows is not None
            frame = frame.with_columns(pl.lit(min(time, _LAST_TIME), dtype=pl.Int64).alias(TIME))
            self.rows.insert(frame)
            if self.foldable:
                old, news = self._fold_big(frame, match)
            else:
                touched = frame[KH].unique()
                old = self.groups.lookup(touched)
                news = [self._recompute(self.rows.lookup(touched), match, set(touched.to_list()))]
        columns = self._state_columns(match)
        parts = []
        if old is not None and old.height:
            parts.append(old.select(columns).with_columns(pl.lit(-1, dtype=pl.Int64).alias(DIFF)))
        for new in news:
            if new is not None and new.height:
                parts.append(
                    new.select(columns).with_columns(pl.lit(1, dtype=pl.Int64).alias(DIFF))
                )
        if not parts:
            return None
        stored = None
        if errors.errors_seen():
            parts, stored = self._with_error_cells(parts)
        changes = pl.concat(parts, how="vertical_relaxed") if len(parts) > 1 else parts[0]
        self.groups.insert(changes if stored is None else stored)
        out = run_projection(self.post, changes, keep=[ID], tail=[DIFF])
        if old is None or old.height == 0:
            # Only new group rows, one per group: their ids are distinct.
            mark_distinct_ids(out)
        out = consolidate(out)
        return out if out.height else None

    def _with_error_cells(
        self, parts: list[pl.DataFrame]
    ) -> tuple[list[pl.DataFrame], pl.DataFrame | None]:
        """Reducer values that are Errors (a failing reducer in a run keeping errors): the
        group arrangement keeps its column types, so they are stored as nulls and remembered
        here by group id. Returns the parts with the Errors of the retracted group rows put
        back, and the changes to store (None: no Error involved)."""
        cells = self._error_cells
        if not cells and not any(errors.error_columns(p) for p in parts):
            return parts, None
        restored = []
        for part in parts:
            retracted = part[DIFF][0] < 0 if part.height else False
            if retracted and cells:
                ids = part[ID].to_list()
                replace = {}
                for column in {c for i in ids for c in cells.get(i, ())}:
                    mask = pl.Series([column in cells.get(i, ()) for i in ids])
                    replace[column] = errors.with_errors(part[column], mask)
                if replace:
                    part = part.with_columns(list(replace.values()))
            restored.append(part)
        for part in restored:  # retractions first, then the new rows' Errors
            if part.height and part[DIFF][0] < 0:
                for gid in part[ID].to_list():
                    cells.pop(gid, None)
        for part in restored:
            if part.height and part[DIFF][0] > 0:
                for column, mask in errors.error_columns(part).items():
                    for gid in part.filter(mask)[ID].to_list():
                        cells.setdefault(gid, set()).add(column)
        restored = errors.unify_object_columns(restored)
        changes = pl.concat(restored, how="vertical_relaxed") if len(restored) > 1 else restored[0]
        schema = self._state_schema()
        stored = changes.with_columns(
            [
                errors.without_errors(changes[c], schema[c])
                for c in changes.columns
                if changes.schema[c] == pl.Object and schema.get(c, pl.Object) != pl.Object
            ]
        )
        return [changes], stored

    # --- invertible reducers ---------------------------------------------------------------
    def _acc_exprs(self) -> list[pl.Expr]:
        exprs = [pl.col(DIFF).sum().alias(COUNT)]
        for index, call in enumerate(self.calls):
            if f"__acc{index}" in self.accs:
                exprs.append(
                    sum_expr(pl.col(call.args[0]) * pl.col(DIFF), call.arg_types[0]).alias(
                        f"__acc{index}"
                    )
                )
            elif self.foldable and call.reducer.name in ("min", "max"):
                exprs.append(
                    call.reducer.polars_agg(call.args, call.arg_types).alias(f"__fold{index}")
                )
        return exprs

    def _results(self, groups: pl.DataFrame) -> pl.DataFrame:
        exprs = []
        for index, call in enumerate(self.calls):
            target = call.dtype.to_polars()
            if call.reducer.name == "count":
                value = pl.col(COUNT)
            elif call.reducer.name == "sum":
                value = pl.col(f"__acc{index}")
            elif call.reducer.name == "avg":
                value = pl.col(f"__acc{index}") / pl.col(COUNT)
            else:  # min / max, folded
                value = pl.col(f"__fold{index}")
            exprs.append(value.cast(target).alias(call.column))
        return groups.with_columns(exprs)

    def _aggregate_delta(self, delta: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
        """:meth:`_aggregate` of the pre-projected delta (fused into one query if possible)."""
        big = self.lazy_aggregate and delta.height >= STREAMING_ROWS
        exprs = projection_exprs(self.pre) if big else None
        if exprs is None:
            return self._aggregate(self.pre.run(delta, keep=[ID, DIFF]))
        query = delta.lazy().select([DIFF, *exprs.values()])
        agg = collect(query.group_by(self.keys).agg(self._acc_exprs()), delta.height)
        return add_key_columns(agg, self.keys)

    def _aggregate(
        self, frame: pl.DataFrame, extra: Sequence[pl.Expr] = ()
    ) -> tuple[pl.DataFrame, list[str]]:
        objects = [k for k in self.keys if frame.schema[k] == pl.Object]
        if objects or not self.keys:
            frame, match = add_key_columns(frame, self.keys)
            firsts = [pl.col(k).first() for k in self._key_columns(match)]
            return frame.group_by(match).agg(firsts + self._acc_exprs() + list(extra)), match
        aggs = self._acc_exprs() + list(extra)
        if frame.height < STREAMING_ROWS or any(
            dtype == pl.Object for dtype in frame.schema.values()
        ):
            agg = frame.group_by(self.keys).agg(aggs)
        else:
            agg = collect(frame.lazy().group_by(self.keys).agg(aggs), frame.height)
        return add_key_columns(agg, self.keys)

    def _accumulate(
        self, agg: pl.DataFrame, old: pl.DataFrame | None, match: list[str]
    ) -> pl.DataFrame | None:
        accs = [COUNT, *self.accs]
        folds = [
            (f"__fold{i}", c)
            for i, c in enumerate(self.calls)
            if self.foldable and c.reducer.name in ("min", "max")
        ]
        if old is None or old.height == 0:
            new = agg.filter(pl.col(COUNT) > 0)
            if new.height == 0:
                return None
            new = new.with_columns(self._group_ids(new))
            return self._results(new)
        previous = old.select(
            [*match, *self._key_columns(match), ID, *accs, *[c.column for _, c in folds]]
        )
        joined = previous.join(
            agg, on=match, how="full", coalesce=True, nulls_equal=True, suffix="__d"
        )
        fixes = [pl.col(k).fill_null(pl.col(f"{k}__d")) for k in self._key_columns(match)]
        fixes += [(pl.col(a).fill_null(0) + pl.col(f"{a}__d").fill_null(0)).alias(a) for a in accs]
        # The old value (in the reducer's column) and the delta's, nulls skipped.
        fixes += [
            (pl.max_horizontal if c.reducer.name == "max" else pl.min_horizontal)(
                pl.col(c.column), pl.col(name)
            ).alias(name)
            for name, c in folds
        ]
        joined = joined.with_columns(fixes).filter(pl.col(COUNT) > 0)
        joined = joined.drop([c for c in joined.columns if c.endswith("__d")])
        if joined.height == 0:
            return None
        missing = joined[ID].is_null()
        if missing.any():
            joined = joined.with_columns(
                pl.when(missing).then(self._group_ids(joined)).otherwise(pl.col(ID)).alias(ID)
            )
        return self._results(joined.drop([c.column for _, c in folds]))

    # --- folded and recomputed reducers ----------------------------------------------------
    def _fold_big(
        self, frame: pl.DataFrame, match: list[str]
    ) -> tuple[pl.DataFrame | None, list[pl.DataFrame | None]]:
        """Groups (by key hash) whose delta only inserts are folded; the others recomputed."""
        assert self.rows is not None
        agg, match = self._aggregate(frame, [(pl.col(DIFF) < 0).any().alias(NEG)])
        recompute = agg.filter(pl.col(NEG))[KH].unique()
        old = self.groups.lookup(agg[KH])
        if recompute.len() == 0:
            return old, [self._accumulate(agg.drop(NEG), old, match)]
        folded = agg.filter(~pl.col(KH).is_in(recompute.implode())).drop(NEG)
        old_folded = None
        if old is not None:
            old_folded = old.filter(~old[KH].is_in(recompute.implode()))
        news = [
            self._accumulate(folded, old_folded, match) if folded.height else None,
            self._recompute(self.rows.lookup(recompute), match),
        ]
        return old, news

    def _recompute(
        self, rows: pl.DataFrame | None, match: list[str], touched: set[int] | None = None
    ) -> pl.DataFrame | None:
        """The group rows of the groups whose key hashes have these rows (all of them).

        ``touched``: the key hashes recomputed, whose stateful reducers' states are replaced
        by the new ones (a group gone loses its state).
        """
        self._fresh_states: dict[int, dict[int, dict[tuple[Any, ...], Any]]] = {
            i: {} for i in self._states
        }
        groups = self._recompute_groups(rows, match)
        for index, states in self._states.items():
            for key_hash in touched or ():
                states.pop(key_hash, None)
            states.update(self._fresh_states[index])
        return groups

    def _recompute_groups(self, rows: pl.DataFrame | None, match: list[str]) -> pl.DataFrame | None:
        if rows is None or rows.height == 0:
            return None
        all_rows = rows
        rows = rows.filter(pl.col(DIFF) > 0)
        if rows.height == 0:
            return None
        aggs: list[pl.Expr] = [pl.col(k).first() for k in self._key_columns(match)]
        aggs.append(pl.col(DIFF).sum().alias(COUNT))
        for index, call in enumerate(self.calls):
            if f"__acc{index}" in self.accs:
                aggs.append(
                    sum_expr(pl.col(call.args[0]) * pl.col(DIFF), call.arg_types[0]).alias(
                        f"__acc{index}"
                    )
                )
        in_python = []
        for call in self.calls:
            expr = call.reducer.polars_agg(call.args, call.arg_types)
            if expr is None:
                in_python.append(call)
            else:
                aggs.append(expr.alias(call.column))
        groups = rows.group_by(match, maintain_order=True).agg(aggs)
        if all_rows.height != rows.height:
            groups = self._count_retractions(groups, all_rows, match)
            if groups.height == 0:
                return None
        if in_python:
            groups = groups.with_columns(
                self._python_values(rows, groups, match, in_python, all_rows)
            )
        if self.argument_errors:
            groups = self._argument_errors(groups, rows, match)
        casts = [
            pl.col(c.column).cast(c.dtype.to_polars())
            for c in self.calls
            if c.dtype.to_polars() != pl.Object and groups.schema[c.column] != pl.Object
        ]
        if casts:
            groups = groups.with_columns(casts)
        return groups.with_columns(self._group_ids(groups))

    def _count_retractions(
        self, groups: pl.DataFrame, all_rows: pl.DataFrame, match: list[str]
    ) -> pl.DataFrame:
        """Counts, sums and averages that take retractions of rows never inserted into
        account (every diff is summed, as Pathway does); groups whose count is not positive
        are gone. Other reducers only see the inserted rows."""
        totals = [pl.col(DIFF).sum().alias(COUNT)]
        for index, call in enumerate(self.calls):
            name = call.reducer.name
            if name in ("sum", "avg") and inverts(call.reducer, call.arg_types):
                total = sum_expr(pl.col(call.args[0]) * pl.col(DIFF), call.arg_types[0])
                if f"__acc{index}" in self.accs:
                    totals.append(total.alias(f"__acc{index}"))
                value = total if name == "sum" else total / pl.col(DIFF).sum()
                totals.append(value.cast(call.dtype.to_polars()).alias(call.column))
            elif name == "count":
                totals.append(pl.col(DIFF).sum().alias(call.column))
        totals_frame = all_rows.group_by(match).agg(totals)
        replaced = [c for c in totals_frame.columns if c not in match]
        groups = groups.drop(replaced).join(totals_frame, on=match, how="left", nulls_equal=True)
        return groups.filter(pl.col(COUNT) > 0)

    def _python_values(
        self,
        rows: pl.DataFrame,
        groups: pl.DataFrame,
        match: list[str],
        calls: list[Any],
        all_rows: pl.DataFrame,
    ) -> list[pl.Series]:
        """Values of the reducers computed in Python: from the group's live rows in id order
        (stateful reducers: from all its rows, retractions included, and its state)."""
        keys = list(groups.select(match).iter_rows())
        position: dict[tuple[Any, ...], int] = {key: i for i, key in enumerate(keys)}
        out = []
        live = rows.sort(ID)
        every = all_rows.sort(ID) if any(c.reducer.stateful for c in calls) else live
        for call in calls:
            source = every if call.reducer.stateful else live
            if self.argument_errors and call.args:  # error arguments: not this reducer's rows
                source = source.filter(~self._error_mask(call))
            per_group = self._rows_per_group(source, match, position, call.args)
            if call.reducer.stateful:
                index = self.calls.index(call)
                states, fresh = self._states[index], self._fresh_states[index]
                values = []
                for key, group in zip(keys, per_group, strict=True):
                    before = states.get(key[0], {}).get(key)
                    if before is _POISONED:  # the state took an Error in: it stays one
                        fresh.setdefault(key[0], {})[key] = before
                        values.append(errors.ERROR)
                        continue
                    try:
                        value, state = call.reducer.python_stateful(group, before)
                    except Exception as error:  # noqa: BLE001 - user code: an Error value
                        value = errors.on_failure(errors.exception_message(error), error)
                        state = before
                    if state is not None:
                        fresh.setdefault(key[0], {})[key] = state
                    values.append(value)
            else:
                values = [_python_value(call, group) for group in per_group]
            out.append(_value_series(call.column, values, call.dtype))
        return out

    def _error_mask(self, call: Any) -> pl.Expr:
        """The rows where an argument of ``call`` was an error."""
        return pl.any_horizontal([pl.col(error_flag(a)) for a in call.args])

    def _argument_errors(
        self, groups: pl.DataFrame, rows: pl.DataFrame, match: list[str]
    ) -> pl.DataFrame:
        """Reducer values of groups that have rows with error arguments: recomputed without
        those rows (skip_errors), or Errors. Reducers computed in Python already left the
        rows out."""
        for call in self.calls:
            if not call.args:
                continue
            mask = self._error_mask(call)
            bad = rows.filter(mask)
            if bad.height == 0:
                continue
            if self.skip_errors:
                expr = call.reducer.polars_agg(call.args, call.arg_types)
                if expr is None:
                    continue
                values = rows.filter(~mask).group_by(match).agg(expr.alias(call.column))
                column = groups.select(match).join(
                    values, on=match, how="left", nulls_equal=True, maintain_order="left"
                )
                groups = groups.with_columns(column[call.column])
            else:
                marked = bad.select(match).unique().with_columns(pl.lit(True).alias("__bad"))
                hit = (
                    groups.select(match)
                    .join(marked, on=match, how="left", nulls_equal=True, maintain_order="left")[
                        "__bad"
                    ]
                    .fill_null(False)
                )
                groups = groups.with_columns(errors.with_errors(groups[call.column], hit))
                if call.reducer.stateful:
                    self._poison_states(self.calls.index(call), groups.filter(hit), match)
        return groups

    def _poison_states(self, index: int, groups: pl.DataFrame, match: list[str]) -> None:
        """A user reducer's state that saw an Error argument (``skip_errors=False``) cannot
        take it out again: its groups keep an Error value while they live (as in Pathway)."""
        fresh = self._fresh_states[index]
        for key in groups.select(match).iter_rows():
            fresh.setdefault(key[0], {})[key] = _POISONED

    @staticmethod
    def _rows_per_group(
        rows: pl.DataFrame, match: list[str], position: dict[tuple[Any, ...], int], args: list[str]
    ) -> list[list[Row]]:
        """The rows of each group (in ``position``'s order) as :class:`Row` tuples."""
        ids = rows[ID].to_list()
        counts = rows[DIFF].to_list()
        times = rows[TIME].to_list()
        columns = [t.values_from_series(rows[a]) for a in args]
        per_group: list[list[Row]] = [[] for _ in range(len(position))]
        for i, key in enumerate(rows.select(match).iter_rows()):
            at = position.get(key)
            if at is not None:  # None: a group left without rows
                per_group[at].append(Row(ids[i], tuple(c[i] for c in columns), counts[i], times[i]))
        return per_group

    # --- the small-delta path --------------------------------------------------------------
    def _small_plan(self) -> _SmallPlan:
        if self._plan is None:
            self._plan = _SmallPlan(self)
        return self._plan

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
                frame = frame.with_columns(
                    pl.lit(min(time, _LAST_TIME), dtype=pl.Int64).alias(TIME)
                )
            return frame
        cached = self._small_select
        built_from = tuple(map(id, exprs.values()))
        if cached is None or cached[0] != built_from:  # built once: expressions cost to build
            hashed = key_hash_expr([exprs[k] for k in self.keys])
            cached = self._small_select = (
                built_from,
                [ID, DIFF, *exprs.values(), hashed.alias(KH)],
            )
        frame = delta.select(cached[1])
        if self.invertible:
            return frame
        # A Series rather than a query: a query releases the GIL (see input_session).
        times = pl.Series(TIME, np.full(frame.height, min(time, _LAST_TIME), dtype=np.int64))
        return pl.DataFrame([*frame.get_columns(), times])

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
                    accs.append(exact_sum(r[position] * r[diff_at] for r in every))
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
        plan: _SmallPlan,
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
        if len(known) > _KNOWN_LIMIT:
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

    def _drop_caches(self) -> None:
        """Write the Python paths' group rows back and forget them (before a step that
        changes ``groups`` by itself)."""
        self._sync_groups()
        self._known.clear()
        self._columns = None

    def _step_columns(self, time: int, delta: pl.DataFrame) -> Any:
        """The small-delta step over NumPy group columns (see reduce_columns); returns
        :data:`_NOT_FOLDED` when the delta needs the row path."""
        frame = self._prepare_small(time, delta)
        diffs = frame[DIFF].to_numpy()
        if not self.invertible and bool((diffs < 0).any()):
            return _NOT_FOLDED  # a deletion under min/max: the group is recomputed
        plan = self._small_plan()
        state = self._columns
        if state is None or len(state) > _KNOWN_LIMIT:
            self._drop_caches()
            self.match = [KH, *self.keys]
            state = self._columns = ColumnGroups(
                [c.reducer.name for c in self.calls],
                plan.accumulated,
                [bool(c.arg_types) and c.arg_types[0] == t.FLOAT for c in self.calls],
            )
        width = plan.width
        groups = list(zip(frame[KH].to_list(), *(frame[k].to_list() for k in self.keys)))
        slot = state.slot
        missing = {g for g in groups if g not in slot}
        if missing:
            found = {row[:width]: row for row in self.groups.lookup_rows({g[0] for g in missing})}
            new = [g for g in missing if g not in found]
            ids = self._new_ids(new)
            for group in missing:
                state.add(group, found.get(group), width, ids.get(group))
        slots = np.fromiter(map(slot.__getitem__, groups), dtype=np.int64, count=len(groups))
        args = [frame[c.args[0]].to_numpy() if c.args else None for c in self.calls]
        if not sum_is_safe(state, slots, args):
            return _NOT_FOLDED
        if self.rows is not None:
            self.rows.insert(frame)
        fold = Fold(state, slots, diffs, args)
        out = output_frame(
            state,
            fold,
            [(name, dtype) for name, dtype, _ in plan.columns],
            plan.read_by_post,
            width,
        )
        if out is None:
            return None
        if plan.injective:  # one row per changed group: distinct output rows
            return run_projection(self.post, out, keep=[ID], tail=[DIFF])
        out = consolidate(run_projection(self.post, out, keep=[ID], tail=[DIFF]))
        return out if out.height else None

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
        frame = pl.DataFrame(
            [
                pl.Series(k, [g[1 + i] for g in groups], dtype=d.to_polars())
                for i, (k, d) in enumerate(zip(self.keys, self.key_types, strict=True))
            ]
        )
        ids = hash_columns(frame, list(zip(self.keys, self.key_types, strict=True))).to_list()
        return dict(zip(groups, ids, strict=True))


class _SmallPlan:
    """Positions and steps of the Python path, fixed for one reduce: group rows are
    ``(key hash, *keys, id, count, *accumulators, *reducer values)``, group deltas
    ``[count, any deletion, *per-reducer accumulators or folded values]``."""

    def __init__(self, op: ReduceOperator) -> None:
        calls = op.calls
        self.width = 1 + len(op.keys)  # key hash and keys: what identifies a group
        count_at = self.width + 1
        self.accumulated = [i for i, c in enumerate(calls) if f"__acc{i}" in op.accs]
        self.largest = [i for i, c in enumerate(calls) if op.foldable and c.reducer.name == "max"]
        self.smallest = [i for i, c in enumerate(calls) if op.foldable and c.reducer.name == "min"]
        self.zeros = [0 if i in self.accumulated else None for i in range(len(calls))]
        acc_at = {i: count_at + 1 + n for n, i in enumerate(self.accumulated)}
        first_result = count_at + 1 + len(self.accumulated)
        # (kind, delta slot, old accumulator position, old value position) per reducer
        self.steps = [
            (c.reducer.name, 2 + i, acc_at.get(i, -1), first_result + i)
            for i, c in enumerate(calls)
        ]
        self.count_at = count_at
        columns = op._state_columns([KH, *op.keys])
        schema = op._state_schema()
        declared = {c.column: c.dtype for c in calls}
        self.columns = [(name, schema[name], declared.get(name)) for name in columns]
        objects = any(dtype == pl.Object for dtype in schema.values())
        floats = any(dtype in (pl.Float32, pl.Float64) for dtype in schema.values())
        self.same = _same if objects else _equal if floats else operator.eq
        # Where the reducer values start in a group row and in its (count, *accs, *values).
        self.values_from = first_result
        self.body_values = 1 + len(self.accumulated)
        self.injective = _shows_every_value(op.post, [c.column for c in calls])
        self.read_by_post = list(range(len(columns)))
        empty = pl.DataFrame(schema={name: dtype for name, dtype, _ in self.columns})
        if not errors.keeps_errors() and (copies := op.post.copies(empty)) is not None:
            wanted = {ID} | {source for _, source in copies}
            self.read_by_post = [i for i, name in enumerate(columns) if name in wanted]

    def fold(self, entry: list[Any], old: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        """The group row's count, accumulators and values after an insert-only delta (any
        delta when every reducer is invertible), None when the group is now empty."""
        count = entry[0] + (old[self.count_at] if old is not None else 0)
        if count <= 0:
            return None
        accs: list[Any] = []
        results: list[Any] = []
        for kind, slot, acc_at, value_at in self.steps:
            if kind == "count":
                results.append(count)
            elif acc_at >= 0:
                acc = entry[slot] if old is None else old[acc_at] + entry[slot]
                accs.append(acc)
                results.append(acc if kind == "sum" else acc / count)
            else:
                results.append(
                    _better(None if old is None else old[value_at], entry[slot], kind == "max")
                )
        return (count, *accs, *results)

    def series(self, index: int, values: list[Any]) -> pl.Series:
        name, dtype, declared = self.columns[index]
        if declared is not None:
            return t.series_from_values(name, values, declared)
        return pl.Series(name, values, dtype=dtype)

    def state_frame(self, rows: list[tuple[Any, ...]]) -> pl.DataFrame:
        """Group rows (with their diffs last) as a frame of the group arrangement."""
        columns = list(zip(*rows, strict=True))
        series = [self.series(i, list(values)) for i, values in enumerate(columns[:-1])]
        series.append(pl.Series(DIFF, columns[-1], dtype=pl.Int64))
        return pl.DataFrame(series)

    def output_frame(self, changes: list[tuple[Any, ...]], diffs: list[int]) -> pl.DataFrame:
        """The frame ``post`` reads, from changed group rows (without their diffs): only the
        columns it reads when it merely picks columns, else every state column."""
        columns = list(zip(*changes, strict=True))
        series = [self.series(i, list(columns[i])) for i in self.read_by_post]
        series.append(pl.Series(DIFF, diffs, dtype=pl.Int64))
        return pl.DataFrame(series)


def _python_value(call: Any, rows: list[Row]) -> Any:
    """A Python reducer's value for one group; a reducer that fails (``unique`` over
    different values, a user reducer raising) gives an Error cell when the run keeps errors
    (else the run stops with its exception)."""
    try:
        return call.reducer.python(rows)
    except Exception as error:  # noqa: BLE001 - any failure of user code becomes an Error
        return errors.on_failure(errors.exception_message(error), error)


def _value_series(name: str, values: list[Any], dtype: t.DType) -> pl.Series:
    """A column of reducer values; with Error cells it is an object column."""
    if any(value is errors.ERROR for value in values):
        return pl.Series(name, values, dtype=pl.Object)
    return t.series_from_values(name, values, dtype)


def _shows_every_value(post: Any, columns: list[str]) -> bool:
    """Whether every reducer value is an output of ``post`` as it is (so two group rows with
    different values never give equal output rows)."""
    from deltaflow.reducers import ReducerExpression

    scope_columns = getattr(post.scope, "reducer_columns", {})
    shown = {
        scope_columns.get(id(expr))
        for _, expr in post.outputs
        if isinstance(expr, ReducerExpression)
    }
    return all(c in shown for c in columns)


def _getter(positions: list[int]) -> Any:
    """A function taking the values at ``positions`` of a row, as a tuple."""
    if len(positions) == 1:
        only = positions[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*positions)


def _better(current: Any, value: Any, largest: bool) -> Any:
    """The larger (smaller) of two values, None meaning no value (as Polars skips nulls)."""
    if value is None:
        return current
    if current is None:
        return value
    if largest:
        return value if value > current else current
    return value if value < current else current


def _same(old: Sequence[Any], new: Sequence[Any]) -> bool:
    """Whether a group row's values are unchanged (Python objects compared canonically)."""
    if len(old) != len(new):
        return False
    for a, b in zip(old, new, strict=True):
        if type(a) in _SCALARS and type(b) in _SCALARS:
            if a != b and (a == a or b == b):  # NaN equals NaN, as Polars groups them
                return False
        elif t.canonical_key(a) != t.canonical_key(b):
            return False
    return True


_SCALARS = frozenset([int, float, str, bool, bytes, type(None)])


def _equal(old: Sequence[Any], new: Sequence[Any]) -> bool:
    """Equality of plain values, NaN equal to NaN (as Polars groups them)."""
    if old == new:
        return True
    if len(old) != len(new):
        return False
    return all(a == b or (a != a and b != b) for a, b in zip(old, new, strict=True))


def _to_user(dtype: t.DType) -> Any:
    """How a stored value becomes the value a Python reducer sees (ids are Pointers)."""
    if dtype.to_polars() == pl.UInt128:
        return lambda v: None if v is None else t.Pointer(v)
    return lambda v: v
