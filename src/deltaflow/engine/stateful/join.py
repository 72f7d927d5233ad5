"""The join operator: both inputs arranged by join key; output follows the bilinear rule.

At each time, with ``K`` the keys of both deltas, the operator looks up the rows of ``K`` on
both sides (``L_old``, ``R_old``), and emits ``dL ⋈ R_old + L_new ⋈ dR`` where
``L_new = L_old + dL``. Left/right/outer joins also emit the change of the unmatched rows of
``K``: rows of one side with no partner on the other, before and after the delta.

Big deltas run as one Polars query per step (the join on the key columns themselves, the
products of diffs, the pair ids); an inner join looks up one side's old rows only when the
other side changed, and empty state is not looked up at all (a static join is then exactly
one join of the two inputs). Deltas of a few rows take a Python path over row tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import polars as pl

from deltaflow._ids import with_derived_ids
from deltaflow.engine.batch import (
    DIFF,
    ID,
    collect,
    consolidate,
    consolidate_rows,
    empty_batch,
    has_distinct_ids,
    mark_distinct_ids,
    project,
    python_exact,
)
from deltaflow.engine.operators import Delta, Operator, projection_exprs
from deltaflow.engine.stateful.arrangement import Arrangement
from deltaflow.engine.stateful.join_ids import merged, shown_changes
from deltaflow.engine.stateful.join_rows import LID, PAIR_SALT, RID, SmallDeltaStep, _Positions
from deltaflow.engine.stateful.keys import KH, add_key_columns, key_hash_expr
from deltaflow.engine.stateful.nodes import JoinNode
from deltaflow.errors import CarriedErrors, keeps_errors, on_failure

RDIFF = "__rdiff"
SMALL_DELTA_ROWS = 256  # deltas up to this many rows (both sides) take the Python path


#: The join node a join operator runs (temporal joins subclass both node and operator).
JoinNodeT = TypeVar("JoinNodeT", bound=JoinNode)


class JoinOperator(SmallDeltaStep, Operator[JoinNodeT]):
    def __init__(self, node: JoinNodeT) -> None:
        super().__init__(node)
        self.keys = list(node.keys)
        self.mode = node.mode
        # Errors as values: a row with an error in its join key is left out and reported;
        # errors in other columns are kept beside the typed arrangements by row id and put
        # back into the output (plain joins; the temporal joins drop such rows).
        self.carried: list[CarriedErrors] = []
        self.handles_errors = type(self) is JoinOperator  # temporal joins: runtime drops rows
        for pre, side_id in ((node.left_pre, LID), (node.right_pre, RID)):
            if pre is None:
                continue
            carry = CarriedErrors(side_id) if type(self) is JoinOperator else None
            if carry is not None:
                self.carried.append(carry)
            pre.set_error_policy(
                self.keys,
                "row skipped: an Error value in the join condition",
                "row skipped: an Error value in a column the join carries",
                carry,
            )
            keeps_unmatched = self.mode in (
                ("left", "outer") if side_id == LID else ("right", "outer")
            )
            if carry is not None and keeps_unmatched:
                pre.error_policy.stash = []
        self.left = Arrangement(id_column=LID)
        self.right = Arrangement(id_column=RID)
        self.match: list[str] = [KH]
        empty = empty_batch(node.columns)
        self.schema = empty.schema
        self.left_names = [LID, *node.left_columns]
        self.right_names = [RID, *node.right_columns]
        # The Python path needs keys Polars can hash as they are and columns that convert
        # exactly to Python values.
        self.small = all(python_exact(dtype) for dtype in self.schema.values()) and all(
            python_exact(k.to_polars()) and k.to_polars() != pl.Object for k in node.key_types
        )
        # Keys Polars can compare as they are (no text surrogates): frames are joined on them
        # alone (the key hash adds nothing to equality and makes the join several times
        # slower), and each side is prepared in one query.
        self.fusable = all(k.to_polars() != pl.Object for k in node.key_types)
        self._key_hashes: dict[tuple[Any, ...], int] = {}
        self.plain_keys = bool(self.keys) and self.fusable
        # The key hashes of the deltas of the last _step (recorded only within _step: the
        # temporal joins reuse _side with steps of their own).
        self._touched: list[pl.Series] = []
        self._recording = False

    def _side(self, delta: pl.DataFrame | None, pre: Any, id_name: str) -> pl.DataFrame | None:
        """One side's delta as the join sees it: its id renamed, the projected columns, the
        keys (cast to the key types) and their hash."""
        if delta is None or delta.height == 0:
            return None
        frame = self._side_frame(delta, pre, id_name)
        if self._recording:
            self._touched.append(frame[KH])
        return frame

    def _side_frame(self, delta: pl.DataFrame, pre: Any, id_name: str) -> pl.DataFrame:
        if self.fusable:
            if delta.height <= SMALL_DELTA_ROWS:
                small = self._side_small(delta, pre, id_name)
                if small is not None:
                    return small
            fused = self._side_fused(delta, pre, id_name)
            if fused is not None:
                return fused
        frame = pre.run(delta, keep=[ID, DIFF]).rename({ID: id_name})
        casts = [
            pl.col(k).cast(dtype.to_polars())
            for k, dtype in zip(self.keys, self.node.key_types, strict=True)
            if dtype.to_polars() != pl.Object
        ]
        if casts:
            frame = frame.with_columns(casts)
        frame, self.match = add_key_columns(frame, self.keys)
        return frame

    def _on(self) -> list[str]:
        """The columns two sides' rows are matched on."""
        return self.keys if self.plain_keys else self.match

    def _join(self, left: pl.DataFrame, right: pl.DataFrame) -> pl.LazyFrame:
        on = self._on()
        right_part = right.lazy().select([*on, *self.right_names, pl.col(DIFF).alias(RDIFF)])
        joined = left.lazy().join(right_part, on=on, how="inner", nulls_equal=True)
        return joined.with_columns((pl.col(DIFF) * pl.col(RDIFF)).alias(DIFF))

    def _unmatched(
        self, rows: pl.DataFrame | None, other: pl.DataFrame | None, sign: int
    ) -> pl.LazyFrame | None:
        if rows is None or rows.height == 0:
            return None
        on = self._on()
        if other is not None and other.height:
            rows = rows.join(other.select(on), on=on, how="anti", nulls_equal=True)
        if rows.height == 0:
            return None
        return rows.lazy().with_columns((pl.col(DIFF) * sign).alias(DIFF))

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        if not (self.handles_errors and keeps_errors()):
            return self._step(deltas)
        for carry in self.carried:
            carry.begin_step()
        if self.node.id_side is None:
            return self._restored(self._with_error_key_rows(self._step(deltas)))
        shown = self._step_tolerant(deltas)
        stashed = self._restored(self._with_error_key_rows(None))
        if shown is None or stashed is None:
            return shown if stashed is None else stashed
        out = merged([shown, stashed], self.schema)
        return out if out.height else None

    def _restored(self, out: Delta) -> Delta:
        """``out`` with the error cells carried beside the state put back."""
        for carry in self.carried:
            if out is not None:
                out = carry.restore(out)
        return out

    def _step_tolerant(self, deltas: Sequence[Delta]) -> Delta:
        """The step of a join with ``id=`` of a side in a run keeping errors: the plain step
        while no id of the touched key groups can be repeated, else the whole result of those
        groups, before and after, shown one row per id (see
        :mod:`deltaflow.engine.stateful.join_ids`)."""
        node = self.node
        d_left = self._side(deltas[0], node.left_pre, LID)
        d_right = self._side(deltas[1], node.right_pre, RID)
        if d_left is None and d_right is None:
            return None
        rows = sum(d.height for d in (d_left, d_right) if d is not None)
        if self.small and rows <= SMALL_DELTA_ROWS and not self._may_repeat(d_left, d_right):
            return self._restored(self._step_small(deltas, (d_left, d_right)))
        left_old, right_old, left_new, right_new = self._advance(
            d_left, d_right, bool(self.left.size), bool(self.right.size)
        )
        before = self._restored(self._whole(left_old, right_old, -1))
        after = self._restored(self._whole(left_new, right_new, 1))
        side = node.id_side
        other = self.right_names if side == "left" else self.left_names
        return shown_changes(before, after, other, self._report_repeated, self.schema)

    def _may_repeat(self, d_left: pl.DataFrame | None, d_right: pl.DataFrame | None) -> bool:
        """Whether a key group these (small) deltas touch has, before or after them, two
        rows on the side whose ids the join does not keep (so an id may be repeated); key
        hashes stand for keys, so a collision only makes the answer cautious."""
        other, d_other = (
            (self.right, d_right) if self.node.id_side == "left" else (self.left, d_left)
        )
        keys = {kh for d in (d_left, d_right) if d is not None for kh in d[KH].to_list()}
        counts: dict[int, int] = {}
        if other.size and other._schema is not None:
            at = _Positions(other._schema, self.keys)
            for row in other.lookup_rows(keys):
                counts[row[at.kh]] = counts.get(row[at.kh], 0) + row[at.diff]
        if any(n > 1 for n in counts.values()):
            return True
        if d_other is not None:
            for kh, diff in zip(d_other[KH].to_list(), d_other[DIFF].to_list(), strict=True):
                counts[kh] = counts.get(kh, 0) + diff
        return any(n > 1 for n in counts.values())

    def _whole(
        self, left: pl.DataFrame | None, right: pl.DataFrame | None, sign: int
    ) -> pl.DataFrame | None:
        """The join of ``left`` and ``right`` (rows of some key groups), with ``sign``."""
        parts: list[pl.LazyFrame] = []
        if left is not None and right is not None and left.height and right.height:
            parts.append(self._join(left, right).with_columns(pl.col(DIFF) * sign))
        if self.mode in ("left", "outer"):
            found = self._unmatched(left, right, sign)
            if found is not None:
                parts.append(found)
        if self.mode in ("right", "outer"):
            found = self._unmatched(right, left, sign)
            if found is not None:
                parts.append(found)
        if not parts:
            return None
        rows = sum(f.height for f in (left, right) if f is not None)
        return self._finish(parts, rows)

    def _report_repeated(self, key: Any) -> None:
        side = self.node.id_side
        other = "right" if side == "left" else "left"
        on_failure(
            f"{self.describe()}: the {side} row {key} matched several {other} rows, but the "
            f"join takes its ids from the {side} side (id=), so they share one row id; that "
            f"row holds Error in the {other} side's columns",
            KeyError(f"{self.describe()}: several rows with id {key}"),
        )

    def _tolerates_repeated_ids(self) -> bool:
        """Whether rows sharing an id (id= of a side) are shown as one row of Errors rather
        than stopping the run (a plain join in a run keeping errors)."""
        return self.node.id_side is not None and self.handles_errors and keeps_errors()

    def _with_error_key_rows(self, out: Delta) -> Delta:
        """``out`` and the unmatched rows of an outer side whose join key is an error (they
        match nothing, as in Pathway, but are kept)."""
        parts: list[pl.LazyFrame] = []
        for pre, side_id in ((self.node.left_pre, LID), (self.node.right_pre, RID)):
            stash = None if pre is None else pre.error_policy.stash
            while stash:
                parts.append(stash.pop().rename({ID: side_id}).lazy())
        if not parts:
            return out
        unmatched = self._finish(parts, 0)
        if unmatched is None:
            return out
        if out is None:
            return unmatched
        merged = consolidate(pl.concat([out, unmatched], how="vertical_relaxed"))
        return merged if merged.height else None

    def _step(self, deltas: Sequence[Delta]) -> Delta:
        rows = sum(d.height for d in deltas if d is not None)
        # With id= of a side, a repeat across times (a second partner arriving later) is
        # found in the state; within one batch, _check_ids finds it in the output.
        check_state = self.node.id_side is not None and bool(self.left.size or self.right.size)
        self._touched = []
        self._recording = True
        try:
            if self.small and rows <= SMALL_DELTA_ROWS:
                out = self._step_small(deltas)
            else:
                out = self._step_big(deltas)
        finally:
            self._recording = False
        if check_state and out is not None and self._touched:
            self._check_single_partners(self._touched)
        return out

    def _check_single_partners(self, touched_parts: list[pl.Series]) -> None:
        """With ``id=`` of a side, each row of that side may have one partner at most (its
        id is the id of its single result row); checked for the key hashes this time touched
        (``touched_parts``: those of each delta)."""
        side = self.node.id_side
        own, other = (self.left, self.right) if side == "left" else (self.right, self.left)
        if (
            sum(part.len() for part in touched_parts) <= SMALL_DELTA_ROWS
            and own._layout is not None
            and other._layout is not None
            and own._layout.exact
            and other._layout.exact
        ):
            keys: set[int] = set()
            for part in touched_parts:  # a few keys: Python sets, no Polars query
                keys.update(part.to_list())
            partners = other.lookup_rows(keys)
            at = _Positions(other._schema, self.keys)
            counts: dict[tuple[Any, ...], int] = {}
            for row in partners:
                counts[at.group(row)] = counts.get(at.group(row), 0) + row[at.diff]
            crowded = {group for group, n in counts.items() if n > 1}
            if not crowded:
                return
            own_at = _Positions(own._schema, self.keys)
            if not any(own_at.group(row) in crowded for row in own.lookup_rows(keys)):
                return
        else:
            touched = pl.concat(touched_parts).unique()
            own_rows, partner_rows = own.lookup(touched), other.lookup(touched)
            if own_rows is None or partner_rows is None:
                return
            on = self._on()
            crowded_frame = (
                partner_rows.group_by(on)
                .agg(pl.col(DIFF).sum().alias("__n"))
                .filter(pl.col("__n") > 1)
            )
            if own_rows.join(crowded_frame, on=on, how="semi", nulls_equal=True).height == 0:
                return
        raise KeyError(
            f"{self.describe()}: a join with id= taken from the {side} side "
            f"matched one {side} row with several rows of the other side, so ids "
            f"would repeat; drop id= or make the join key unique"
        )

    def _advance(
        self,
        d_left: pl.DataFrame | None,
        d_right: pl.DataFrame | None,
        need_left: bool,
        need_right: bool,
    ) -> tuple[pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
        """Look up the old rows of the key groups the deltas touch (on the sides asked for),
        add the deltas to both arrangements and return (left old, right old, left new, right
        new) for those groups."""
        left_old = right_old = None
        if need_left or need_right:
            touched = pl.concat([d[KH] for d in (d_left, d_right) if d is not None]).unique()
            left_old = self.left.lookup(touched) if need_left else None
            right_old = self.right.lookup(touched) if need_right else None
        left_new = _plus(left_old, d_left, LID)
        right_new = _plus(right_old, d_right, RID)
        if d_left is not None:
            self.left.insert(d_left)
        if d_right is not None:
            self.right.insert(d_right)
        return left_old, right_old, left_new, right_new

    def _step_big(self, deltas: Sequence[Delta]) -> Delta:
        node = self.node
        d_left = self._side(deltas[0], node.left_pre, LID)
        d_right = self._side(deltas[1], node.right_pre, RID)
        if d_left is None and d_right is None:
            return None
        # An inner join needs one side's old rows only to pair them with the other's delta;
        # the unmatched rows of the other modes need both. Empty state needs no lookup.
        inner = self.mode == "inner"
        need_left = bool(self.left.size) and (d_right is not None or not inner)
        need_right = bool(self.right.size) and (d_left is not None or not inner)
        left_old, right_old, left_new, right_new = self._advance(
            d_left, d_right, need_left, need_right
        )

        # Each part with whether both its operands are known to hold every id once.
        parts: list[tuple[pl.LazyFrame, bool]] = []
        if d_left is not None and right_old is not None:
            parts.append((self._join(d_left, right_old), False))
        if d_right is not None and left_new is not None:
            parts.append(
                (
                    self._join(left_new, d_right),
                    left_old is None and _distinct(deltas[0]) and _distinct(deltas[1]),
                )
            )
        if self.mode in ("left", "outer"):
            for rows, other, sign in ((left_old, right_old, -1), (left_new, right_new, 1)):
                found = self._unmatched(rows, other, sign)
                if found is not None:
                    parts.append((found, sign > 0 and left_old is None and _distinct(deltas[0])))
        if self.mode in ("right", "outer"):
            for rows, other, sign in ((right_old, left_old, -1), (right_new, left_new, 1)):
                found = self._unmatched(rows, other, sign)
                if found is not None:
                    parts.append((found, sign > 0 and right_old is None and _distinct(deltas[1])))
        if not parts:
            return None
        n_rows = sum(f.height for f in (left_old, right_old, d_left, d_right) if f is not None)
        return self._finish([p for p, _ in parts], n_rows, len(parts) == 1 and parts[0][1])

    def _finish(self, parts: list[pl.LazyFrame], rows: int, distinct: bool = False) -> Delta:
        """The output batch of the parts (one query over about ``rows`` rows); ``distinct``:
        a single part pairing frames whose ids are distinct, so that its pair ids are too."""
        columns = [c for c in self.schema if c not in (ID, DIFF)]
        plain = [c for c in columns if c not in self.node.coalesced]
        shaped = []
        for part in parts:
            names = part.collect_schema().names()
            fill = [pl.lit(None, dtype=self.schema[c]).alias(c) for c in plain if c not in names]
            shaped.append((part.with_columns(fill) if fill else part).select([*plain, DIFF]))
        frame = shaped[0] if len(shaped) == 1 else pl.concat(shaped, how="vertical_relaxed")
        if self.node.coalesced:
            frame = frame.with_columns(
                [
                    pl.coalesce(
                        pl.col(a).cast(self.schema[name]), pl.col(b).cast(self.schema[name])
                    ).alias(name)
                    for name, (a, b) in self.node.coalesced.items()
                ]
            )
        if self.node.id_side == "left":
            frame = frame.with_columns(pl.col(LID).alias(ID))
        elif self.node.id_side == "right":
            frame = frame.with_columns(pl.col(RID).alias(ID))
        else:  # pair ids, computed within the query
            frame = with_derived_ids(frame, [LID, RID], salt=PAIR_SALT, name=ID)
        frame = frame.select([ID, *columns, DIFF])
        if len(parts) == 1:
            # One part pairs consolidated inputs, so its (id, row) pairs are already distinct.
            frame = frame.filter(pl.col(DIFF) != 0)
        out = collect(frame, rows)
        if len(parts) > 1:
            out = consolidate(out)
        if out.height == 0:
            return None
        if self.node.id_side is not None:
            self._check_ids(out)
        elif distinct:
            mark_distinct_ids(out)
        return out

    def _check_ids(self, out: pl.DataFrame) -> None:
        """With ``id=`` of a side: every output row has that side's row, and no inserted id
        repeats (checked on the output frame)."""
        missing = out[ID].null_count() > 0
        repeated = False
        if not missing and not self._tolerates_repeated_ids():
            inserted = out.filter(pl.col(DIFF) > 0)[ID]
            repeated = inserted.n_unique() != inserted.len()
        self._refuse_ids(missing, repeated)

    def _check_id_values(self, ids: list[Any], diffs: list[int]) -> None:
        """:meth:`_check_ids` on a few rows given as Python lists."""
        missing = None in ids
        repeated = False
        if not missing and not self._tolerates_repeated_ids():
            inserted = [i for i, d in zip(ids, diffs, strict=True) if d > 0]
            repeated = len(set(inserted)) != len(inserted)
        self._refuse_ids(missing, repeated)

    def _refuse_ids(self, missing: bool, repeated: bool) -> None:
        # KeyError, as Pathway reports duplicated ids at run time.
        side = self.node.id_side
        if missing:
            raise KeyError(
                f"{self.describe()}: a join with id= taken from the {side} side "
                f"produced rows with no {side} row (unmatched rows of an outer "
                f"join); drop id= or use a join that keeps every {side} row"
            )
        if repeated:
            raise KeyError(
                f"{self.describe()}: a join with id= taken from the {side} side "
                f"matched one {side} row with several rows of the other side, so "
                f"ids would repeat; drop id= or make the join key unique"
            )

    def _side_fused(self, delta: pl.DataFrame, pre: Any, id_name: str) -> pl.DataFrame | None:
        """:meth:`_side` in one Polars query; None when the projection has Python nodes."""
        exprs = projection_exprs(pre)
        if exprs is None:
            return None
        for key, dtype in zip(self.keys, self.node.key_types, strict=True):
            exprs[key] = exprs[key].cast(dtype.to_polars()).alias(key)
        self.match = [KH, *self.keys]
        hashed = key_hash_expr(
            [exprs[k] for k in self.keys], [k.to_polars() for k in self.node.key_types]
        )
        return project(delta, [pl.col(ID).alias(id_name), DIFF, *exprs.values(), hashed.alias(KH)])


def _plus(
    old: pl.DataFrame | None, delta: pl.DataFrame | None, id_column: str
) -> pl.DataFrame | None:
    if delta is None:
        return old
    if old is None or old.height == 0:
        return delta
    merged = consolidate_rows(pl.concat([old, delta], how="vertical_relaxed"), (), id_column)
    return merged if merged.height else None


def _distinct(delta: Delta) -> bool:
    """Whether an input delta is known to hold every id once."""
    return delta is not None and has_distinct_ids(delta)
