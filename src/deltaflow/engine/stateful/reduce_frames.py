"""The frame path of a reduce: deltas of more than ``SMALL_DELTA_ROWS`` rows (and every delta
of a run keeping errors), with Polars frame operations.

Invertible reducers (count, sum, avg) aggregate the delta per group and add it to the
group rows' accumulators; insert-only deltas are folded into min/max; any other touched group
is recomputed from its rows (Polars aggregations where they exist, Python for the others).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow import errors
from deltaflow._float_sums import sum_expr
from deltaflow.engine.batch import DIFF, ID, STREAMING_ROWS, collect, consolidate, mark_distinct_ids
from deltaflow.engine.operators import Delta, projection_exprs, run_projection
from deltaflow.engine.stateful.keys import KH, TIME, add_key_columns
from deltaflow.engine.stateful.reduce_errors import (
    POISONED,
    ReduceErrorValues,
    python_value,
    value_series,
)
from deltaflow.engine.stateful.reduce_state import COUNT, LAST_TIME, NEG
from deltaflow.reducers import Row, inverts


class ReduceFramePath(ReduceErrorValues):
    """The reduce step over Polars frames."""

    def _step_big(
        self,
        time: int,
        delta: pl.DataFrame,
        aggregated: tuple[pl.DataFrame, list[str]] | None = None,
    ) -> Delta:
        """The frame path; ``aggregated``: :meth:`_aggregate_delta` of ``delta``, when the
        caller has it already."""
        self._drop_caches()
        if self.invertible:
            # Aggregate the delta per group first: hashing then costs per group, not per row.
            agg, match = aggregated if aggregated is not None else self._aggregate_delta(delta)
            old = self.groups.lookup(agg[KH]) if self.groups.size else None
            new = self._accumulate(agg, old, match)
            news = [new]
        else:
            frame = self._prepare(delta)
            match = self.match or [KH]
            assert self.rows is not None
            frame = frame.with_columns(pl.lit(min(time, LAST_TIME), dtype=pl.Int64).alias(TIME))
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
        self._fresh_states = {i: {} for i in self._states}
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
                    if before is POISONED:  # the state took an Error in: it stays one
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
                values = [python_value(call, group) for group in per_group]
            out.append(value_series(call.column, values, call.dtype))
        return out

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
