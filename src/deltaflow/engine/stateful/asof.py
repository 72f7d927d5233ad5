"""Asof joins: each row is paired with the closest row of the other side in time.

Both sides are arranged by join key (the instance). At each time the operator looks up the
instances the deltas touch, computes their asof matches before and after the deltas (Polars
``join_asof`` per instance, through ``by=``) and emits the difference, so the cost follows the
touched instances, not the whole state. A static join is a single ``join_asof``.

Matching follows one total order of the rows of an instance: by time, then by side, then by
row id. Whether the other side's rows of an equal time come before or after a row depends on
the mode and direction exactly as in Pathway (``right_first`` below), and among several rows
of the other side with the same time, a backward match takes the last one (by id) and a
forward match the first. ``nearest`` takes the backward candidate only when it is strictly
closer than the forward one.

``asof_now`` joins (:class:`AsofNowJoinOperator`) answer each left change once, against the
right side as it is at that time; nothing is revised later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from deltaflow._ids import with_derived_ids
from deltaflow.engine.batch import DIFF, ID, collect, consolidate
from deltaflow.engine.operators import Delta
from deltaflow.engine.stateful.asof_small import SMALL_ROWS, small_step
from deltaflow.engine.stateful.join import LID, RID, JoinOperator, _plus
from deltaflow.engine.stateful.keys import KH
from deltaflow.engine.stateful.nodes import JoinNode

TIME = "__time"
_OTHER_TIME = "__ot"
_PREV = "__p_"
_NEXT = "__n_"
_VERSION = "__ver"


@dataclass(eq=False)
class AsofJoinNode(JoinNode):
    """The wide result of an asof join: one row per left row (left/outer modes) and one per
    right row (right/outer modes), each with its match on the other side (or defaults)."""

    direction: str = "backward"  # backward | forward | nearest
    defaults: dict[str, Any] = field(default_factory=dict)  # wide column -> value if unmatched
    time_cast: Any = None  # a Polars dtype both time columns are cast to (int with float)


@dataclass(eq=False)
class AsofNowJoinNode(JoinNode):
    """``asof_now_join``: left changes joined with the right side as it is when they come."""


class AsofJoinOperator(JoinOperator[AsofJoinNode]):
    """Recomputes the asof matches of the touched instances and emits the difference."""

    def __init__(self, node: AsofJoinNode) -> None:
        super().__init__(node)
        self.direction = node.direction
        right_first = (node.direction == "backward" and node.mode == "left") or (
            node.direction == "forward" and node.mode == "right"
        )
        # (backward inclusive, forward inclusive): whether a row may match rows of the other
        # side with its own time, looking back / ahead.
        self.inclusive = {"l": (right_first, not right_first), "r": (not right_first, right_first)}
        self.defaults = dict(node.defaults)
        self.time_cast = node.time_cast
        self.versioned = False  # while matching old and new rows together (see step)

    def _prepared(self, delta: Delta, pre: Any, id_name: str) -> pl.DataFrame | None:
        frame = self._side(delta, pre, id_name)
        if frame is not None and self.time_cast is not None:
            frame = frame.with_columns(pl.col(TIME).cast(self.time_cast))
        return frame

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        rows = sum(d.height for d in deltas if d is not None)
        if self.small and self.keys and rows <= SMALL_ROWS:
            # Without keys every change touches the whole state: Polars does that better.
            return small_step(self, deltas)
        node = self.node
        d_left = self._prepared(deltas[0], node.left_pre, LID)
        d_right = self._prepared(deltas[1], node.right_pre, RID)
        if d_left is None and d_right is None:
            return None
        touched = pl.concat([d[KH] for d in (d_left, d_right) if d is not None]).unique()
        left_old = self.left.lookup(touched) if self.left.size else None
        right_old = self.right.lookup(touched) if self.right.size else None
        if d_left is not None:
            self.left.insert(d_left)
        if d_right is not None:
            self.right.insert(d_right)
        left_new = _plus(left_old, d_left, LID)
        right_new = _plus(right_old, d_right, RID)
        if left_old is None and right_old is None:
            out = self._matches(left_new, right_new)
        else:
            # The matches before and after the change in one pass: the old rows (diffs
            # negated) and the new ones are told apart by a version column in the key.
            self.versioned = True
            try:
                out = self._matches(_versions(left_old, left_new), _versions(right_old, right_new))
            finally:
                self.versioned = False
            out = consolidate(out)
        return out if out.height else None

    # --- matching ------------------------------------------------------------------------
    def _by(self) -> list[str]:
        """The columns that identify an instance (the keys, or their text surrogates)."""
        by = [c for c in self._on() if c != KH]
        return [*by, _VERSION] if self.versioned else by

    def _matches(
        self, left_rows: pl.DataFrame | None, right_rows: pl.DataFrame | None
    ) -> pl.DataFrame:
        """The wide output rows (with ids and diffs) of the given rows of some instances."""
        parts: list[pl.LazyFrame] = []
        if self.mode in ("left", "outer") and left_rows is not None and left_rows.height:
            parts.append(self._own_rows(left_rows, right_rows, "l"))
        if self.mode in ("right", "outer") and right_rows is not None and right_rows.height:
            parts.append(self._own_rows(right_rows, left_rows, "r"))
        if not parts:
            return self.empty()
        frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")
        rows = sum(f.height for f in (left_rows, right_rows) if f is not None)
        return collect(frame, rows)

    def _own_rows(self, own: pl.DataFrame, other: pl.DataFrame | None, side: str) -> pl.LazyFrame:
        """One output row per row of ``own`` (side ``l`` or ``r``), with its match."""
        by = self._by()
        own_names, other_names = (
            (self.left_names, self.right_names)
            if side == "l"
            else (self.right_names, self.left_names)
        )
        other_id = other_names[0]
        frame = own.select([*dict.fromkeys([*by, *self.keys]), TIME, *own_names, DIFF])
        if other is None or other.height == 0:
            matched = frame.lazy().with_columns(
                [pl.lit(None, dtype=self.schema[c]).alias(c) for c in other_names]
            )
        else:
            matched = self._attach(frame, other, by, other_names, side).lazy()
        fills = []
        for name in other_names:
            if name in self.defaults:
                fills.append(
                    pl.when(pl.col(other_id).is_null())
                    .then(pl.lit(self.defaults[name]).cast(self.schema[name]))
                    .otherwise(pl.col(name).cast(self.schema[name]))
                    .alias(name)
                )
        if fills:
            matched = matched.with_columns(fills)
        own_columns = [pl.col(own_names[0]).alias("__own")]
        if "__t__t" in self.schema:
            own_columns.append(pl.col(TIME).alias("__t__t"))
        if "__t__side" in self.schema:
            own_columns.append(pl.lit(side == "r").alias("__t__side"))
        if "__t__instance" in self.schema:
            own_columns.append(pl.col(self.keys[0]).alias("__t__instance"))
        matched = matched.with_columns(own_columns)
        matched = with_derived_ids(matched, ["__own"], salt=f"asof-{side}", name=ID)
        columns = [c for c in self.schema if c not in (ID, DIFF)]
        return matched.select([ID, *[pl.col(c).cast(self.schema[c]) for c in columns], DIFF])

    def _attach(
        self,
        frame: pl.DataFrame,
        other: pl.DataFrame,
        by: list[str],
        other_names: list[str],
        side: str,
    ) -> pl.DataFrame:
        """``frame`` with the columns of each row's match in ``other`` (nulls if none)."""
        back_inclusive, forward_inclusive = self.inclusive[side]
        other_id = other_names[0]
        # Sorted by (time, id): among rows of the other side with one time, a backward match
        # then takes the last (by id) and a forward match the first, as Pathway's order says.
        candidates = other.select([*by, pl.col(TIME).alias(_OTHER_TIME), *other_names]).sort(
            [_OTHER_TIME, other_id]
        )
        frame = frame.sort(TIME)
        if self.direction == "backward":
            return _asof(frame, candidates, by, "backward", back_inclusive, "")
        if self.direction == "forward":
            return _asof(frame, candidates, by, "forward", forward_inclusive, "")
        prev = _asof(frame, candidates, by, "backward", back_inclusive, _PREV)
        both = _asof(prev, candidates, by, "forward", forward_inclusive, _NEXT)
        prev_time, next_time = pl.col(_PREV + _OTHER_TIME), pl.col(_NEXT + _OTHER_TIME)
        use_prev = prev_time.is_not_null() & (
            next_time.is_null() | ((pl.col(TIME) - prev_time) < (next_time - pl.col(TIME)))
        )
        return both.with_columns(
            [
                pl.when(use_prev).then(pl.col(_PREV + c)).otherwise(pl.col(_NEXT + c)).alias(c)
                for c in [*other_names, _OTHER_TIME]
            ]
        )


def _versions(old: pl.DataFrame | None, new: pl.DataFrame | None) -> pl.DataFrame | None:
    """Old rows (version 0, diffs negated) and new rows (version 1) of some instances."""
    parts = []
    if old is not None and old.height:
        parts.append(
            old.with_columns(pl.lit(0, dtype=pl.Int8).alias(_VERSION), (-pl.col(DIFF)).alias(DIFF))
        )
    if new is not None and new.height:
        parts.append(new.with_columns(pl.lit(1, dtype=pl.Int8).alias(_VERSION)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")


def _asof(
    frame: pl.DataFrame,
    candidates: pl.DataFrame,
    by: list[str],
    strategy: str,
    inclusive: bool,
    prefix: str,
) -> pl.DataFrame:
    """Polars' asof join of ``frame`` (sorted by time) with ``candidates`` (sorted by time,
    then id), the candidates' columns renamed with ``prefix``."""
    if prefix:
        candidates = candidates.rename({c: prefix + c for c in candidates.columns if c not in by})
    return frame.join_asof(
        candidates,
        left_on=TIME,
        right_on=prefix + _OTHER_TIME,
        by=by or None,
        strategy=strategy,  # type: ignore[arg-type]
        allow_exact_matches=inclusive,
        check_sortedness=False,
        coalesce=False,
    )


class AsofNowJoinOperator(JoinOperator[AsofNowJoinNode]):
    """Joins each left change with the right rows present at its time (after that time's
    right changes); right changes alone change nothing, and no answer is revised later."""

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        node = self.node
        d_right = self._side(deltas[1], node.right_pre, RID)
        if d_right is not None:
            self.right.insert(d_right)
        d_left = self._side(deltas[0], node.left_pre, LID)
        if d_left is None:
            return None
        right_now = self.right.lookup(d_left[KH].unique()) if self.right.size else None
        parts: list[pl.LazyFrame] = []
        if right_now is not None:
            parts.append(self._join(d_left, right_now))
        if self.mode == "left":
            unmatched = self._unmatched(d_left, right_now, 1)
            if unmatched is not None:
                parts.append(unmatched)
        if not parts:
            return None
        rows = d_left.height + (right_now.height if right_now is not None else 0)
        return self._finish(parts, rows)
