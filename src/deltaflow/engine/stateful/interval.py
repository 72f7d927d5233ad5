"""Interval joins: pairs (l, r) with equal keys and ``l.t + lower <= r.t <= l.t + upper``.

Time is cut into buckets as wide as the interval. A right row lives in the bucket of its time;
a left row is copied into every bucket its range ``[t + lower, t + upper]`` touches (one or
two). Both sides are arranged by (key, bucket), the pairs of a bucket are found with the
equi-join's bilinear rule ``dL ⋈ R_old + L_new ⋈ dR`` and then filtered by the exact bounds.
A pair meets in exactly one bucket (the right row's), so no pair is found twice, and a delta
only looks up the buckets it touches: the cost follows the change.

Left/right/outer joins also keep, per row id, how many partners the row has; a row is emitted
with None on the other side while it has none, and retracted when its first partner comes.
The row's values come with the change that moves its count (the pairs, or its own delta), so
the unmatched rows need no state of their own beyond the counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow.engine.batch import DIFF, consolidate_rows, value_hashes
from deltaflow.engine.operators import Delta
from deltaflow.engine.stateful.interval_small import SMALL_ROWS, small_pairs
from deltaflow.engine.stateful.join import LID, RID, JoinOperator, _plus
from deltaflow.engine.stateful.keys import KH, key_hash_expr
from deltaflow.engine.stateful.nodes import JoinNode
from deltaflow.errors import EngineError

TIME = "__time"
BUCKET = "__b"
LEFT_TIME = "__lu"  # a side's time in computing units (ns for datetimes)
RIGHT_TIME = "__ru"


@dataclass(eq=False)
class IntervalJoinNode(JoinNode):
    """The wide result of an interval join (see the module doc)."""

    lower: Any = 0  # bounds in computing units: ns for datetime times
    upper: Any = 0
    time_unit: str = "int"  # int | float | datetime: how times become computing units


class IntervalJoinOperator(JoinOperator[IntervalJoinNode]):
    def __init__(self, node: IntervalJoinNode) -> None:
        super().__init__(node)
        self.lower = node.lower
        self.upper = node.upper
        width = node.upper - node.lower
        self.width = width if width > 0 else (1.0 if node.time_unit == "float" else 1)
        self.time_unit = node.time_unit
        self.right_names = [*self.right_names, RIGHT_TIME]
        # Partner counts of the rows that have partners (left/right/outer modes).
        self.counts: dict[str, dict[Any, int]] = {LID: {}, RID: {}}
        # Whether a side's rows are counted by (id, hash of their values) or by id alone. A
        # side may hold two rows under one id at once (an update whose deletion a cutoff
        # ignored), each with partners of its own, so rows are told apart by their values
        # where these can be hashed: that depends on the column types only, so it is decided
        # here, once, and every step keys the counts the same way.
        self.row_keyed = {
            LID: _hashable(self.schema, node.left_columns),
            RID: _hashable(self.schema, node.right_columns),
        }

    # --- preparing the deltas ----------------------------------------------------------------
    def _units(self) -> pl.Expr:
        time = pl.col(TIME)
        if self.time_unit == "datetime":
            return time.dt.epoch("ns")
        return time.cast(pl.Float64 if self.time_unit == "float" else pl.Int64)

    def _bucket(self, expr: pl.Expr) -> pl.Expr:
        return (
            (expr / self.width).floor().cast(pl.Int64)
            if self.time_unit == "float"
            else expr.floordiv(self.width)
        )

    def _prepared(self, delta: Delta, side: str) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
        """A side's delta as the join sees it (left rows once per bucket) and the delta with
        one row per input row (for the unmatched rows)."""
        if side == "l":
            frame = self._side(delta, self.node.left_pre, LID)
        else:
            frame = self._side(delta, self.node.right_pre, RID)
        if frame is None:
            return None, None
        match = [c for c in JoinOperator._on(self) if c != KH]
        if side == "l":
            # The time itself is not needed once in computing units (and datetimes would
            # not survive the Python path's row tuples).
            frame = frame.with_columns(self._units().alias(LEFT_TIME)).drop(TIME)
            first = self._bucket(pl.col(LEFT_TIME) + self.lower)
            last = self._bucket(pl.col(LEFT_TIME) + self.upper)
            bucketed = frame.with_columns(pl.int_ranges(first, last + 1).alias(BUCKET)).explode(
                BUCKET
            )
        else:
            frame = frame.with_columns(self._units().alias(RIGHT_TIME)).drop(TIME)
            bucketed = frame.with_columns(self._bucket(pl.col(RIGHT_TIME)).alias(BUCKET))
        keyed = [*match, BUCKET]
        hashed = key_hash_expr(keyed, [bucketed.schema[c] for c in keyed])
        bucketed = bucketed.with_columns(hashed.alias(KH))
        return bucketed, frame

    def _on(self) -> list[str]:
        return [*super()._on(), BUCKET]

    def _pairs(self, left: pl.DataFrame, right: pl.DataFrame) -> pl.LazyFrame:
        joined = self._join(left, right)
        return joined.filter(
            (pl.col(RIGHT_TIME) <= pl.col(LEFT_TIME) + self.upper)
            & (pl.col(LEFT_TIME) + self.lower <= pl.col(RIGHT_TIME))
        )

    # --- the step ---------------------------------------------------------------------------
    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        d_left, raw_left = self._prepared(deltas[0], "l")
        d_right, raw_right = self._prepared(deltas[1], "r")
        if d_left is None and d_right is None:
            return None
        # A side with no rows before this step has no unmatched rows to retract.
        fresh = {LID: not self.left.size, RID: not self.right.size}
        rows = sum(f.height for f in (d_left, d_right) if f is not None)
        if self.small and rows <= SMALL_ROWS:
            pair_names = [*self.left_names, *[n for n in self.right_names if n != RIGHT_TIME]]
            pairs = small_pairs(self, d_left, d_right, pair_names, LEFT_TIME, RIGHT_TIME, BUCKET)
            return self._with_unmatched(pairs, raw_left, raw_right, fresh, rows)
        need_left = bool(self.left.size) and d_right is not None
        need_right = bool(self.right.size) and d_left is not None
        left_old = right_old = None
        if need_left or need_right:
            touched = pl.concat([d[KH] for d in (d_left, d_right) if d is not None]).unique()
            left_old = self.left.lookup(touched) if need_left else None
            right_old = self.right.lookup(touched) if need_right else None
        if d_left is not None:
            self.left.insert(d_left)
        if d_right is not None:
            self.right.insert(d_right)
        parts: list[pl.LazyFrame] = []
        if d_left is not None and right_old is not None:
            parts.append(self._pairs(d_left, right_old))
        if d_right is not None:
            left_new = _plus(left_old, d_left, LID)
            if left_new is not None:
                parts.append(self._pairs(left_new, d_right))
        rows = sum(f.height for f in (left_old, right_old, d_left, d_right) if f is not None)
        pairs = self._consolidated_pairs(parts, rows)
        return self._with_unmatched(pairs, raw_left, raw_right, fresh, rows)

    def _with_unmatched(
        self,
        pairs: pl.DataFrame | None,
        raw_left: pl.DataFrame | None,
        raw_right: pl.DataFrame | None,
        fresh: dict[str, bool],
        rows: int,
    ) -> Delta:
        """The output: the change of the pairs and, for outer modes, of the unmatched rows."""
        out: list[pl.LazyFrame] = []
        if pairs is not None:
            out.append(pairs.lazy())
        if self.mode in ("left", "outer"):
            unmatched = self._unmatched_change(pairs, raw_left, LID, self.left_names, fresh[LID])
            if unmatched is not None:
                out.append(unmatched.lazy())
        if self.mode in ("right", "outer"):
            names = [n for n in self.right_names if n != RIGHT_TIME]
            unmatched = self._unmatched_change(pairs, raw_right, RID, names, fresh[RID])
            if unmatched is not None:
                out.append(unmatched.lazy())
        if not out:
            return None
        return self._finish(out, rows)

    def _consolidated_pairs(self, parts: list[pl.LazyFrame], rows: int) -> pl.DataFrame | None:
        """The change of the matched pairs: left and right columns, ids and diff."""
        if not parts:
            return None
        names = [*self.left_names, *[n for n in self.right_names if n != RIGHT_TIME], DIFF]
        shaped = [p.select(names) for p in parts]
        frame = shaped[0] if len(shaped) == 1 else pl.concat(shaped, how="vertical_relaxed")
        out = frame.collect()
        if len(parts) > 1 and out.height:
            out = consolidate_rows(out, (), "__no_id__")
        out = out.filter(pl.col(DIFF) != 0)
        return out if out.height else None

    def _unmatched_change(
        self,
        pairs: pl.DataFrame | None,
        raw: pl.DataFrame | None,
        id_name: str,
        names: list[str],
        fresh: bool,
    ) -> pl.DataFrame | None:
        """The change of one side's rows without partners, from the change of the pairs and
        the side's own delta (one row per input row); updates the partner counts."""
        counts = self.counts[id_name]
        own = raw.select([*names, DIFF]) if raw is not None else None
        side_rows = pairs.select([*names, DIFF]) if pairs is not None else None
        key = [id_name]
        keyed_pairs, keyed_own = side_rows, own  # the frames, with the row key where counted by it
        if self.row_keyed[id_name]:
            key = [id_name, _ROW_KEY]
            keyed_pairs = _with_row_key(side_rows, id_name, names)
            keyed_own = _with_row_key(own, id_name, names)
        if (
            fresh
            and (pairs is None or (pairs[DIFF] > 0).all())
            and (own is None or (own[DIFF] > 0).all())
        ):
            # Only insertions into a side that had no rows (a static join): the unmatched
            # rows are the inserted rows without pairs.
            if keyed_pairs is not None:
                summed = keyed_pairs.group_by(key).agg(pl.col(DIFF).sum())
                counts.update(zip(_keys_of(summed, key), summed[DIFF].to_list(), strict=True))
                if own is not None and keyed_own is not None:
                    own = keyed_own.join(summed.select(key), on=key, how="anti").select(own.columns)
            return own if own is not None and own.height else None
        # Rows are referred to by position, so that values keep their exact types (Python
        # values would cut datetimes to microseconds).
        changes: dict[Any, int] = {}
        content: dict[Any, int] = {}  # row key -> a row of the pairs holding its values
        if side_rows is not None and keyed_pairs is not None:
            for position, (row_key, diff) in enumerate(
                zip(_keys_of(keyed_pairs, key), side_rows[DIFF].to_list(), strict=True)
            ):
                changes[row_key] = changes.get(row_key, 0) + diff
                content.setdefault(row_key, position)
        own_rows: dict[Any, list[tuple[int, int]]] = {}
        if own is not None and keyed_own is not None:
            for position, (row_key, diff) in enumerate(
                zip(_keys_of(keyed_own, key), own[DIFF].to_list(), strict=True)
            ):
                own_rows.setdefault(row_key, []).append((position, diff))
        from_pairs: list[int] = []
        pair_diffs: list[int] = []
        from_own: list[int] = []
        for row_key in set(changes) | set(own_rows):
            before = counts.get(row_key, 0)
            after = before + changes.get(row_key, 0)
            if row_key in own_rows:
                for position, diff in own_rows[row_key]:
                    # A deleted row was unmatched before; an inserted one is after.
                    if (diff < 0 and before == 0) or (diff > 0 and after == 0):
                        from_own.append(position)
            elif (before == 0) != (after == 0):
                from_pairs.append(content[row_key])
                pair_diffs.append(-1 if before == 0 else 1)
            if after:
                counts[row_key] = after
            else:
                counts.pop(row_key, None)
        parts = []
        if from_pairs and side_rows is not None:
            parts.append(
                side_rows[from_pairs].with_columns(pl.Series(DIFF, pair_diffs, dtype=pl.Int64))
            )
        if from_own and own is not None:
            parts.append(own[from_own])
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")


_ROW_KEY = "__row_key"


def _hashable(schema: Mapping[str, pl.DataType], columns: list[str]) -> bool:
    """Whether rows with these columns (of ``schema``) have a hash of their values: there
    are such columns and none holds Python objects (tried on an empty frame of theirs)."""
    empty = pl.DataFrame(schema={name: schema[name] for name in columns})
    return value_hashes(empty, columns) is not None


def _with_row_key(
    frame: pl.DataFrame | None, id_name: str, names: list[str]
) -> pl.DataFrame | None:
    """``frame`` with a hash of each row's values (``_ROW_KEY``); None when there is no frame.
    Only for a side whose values :func:`_hashable` found hashable."""
    if frame is None:
        return None
    hashes = value_hashes(frame, [n for n in names if n != id_name])
    if hashes is None:
        raise EngineError(f"interval join: the values of rows {names} could not be hashed")
    return frame.with_columns(hashes.alias(_ROW_KEY))


def _keys_of(frame: pl.DataFrame, key: list[str]) -> list[Any]:
    """The partner-count key of each row of ``frame``: its id, or (id, values' hash)."""
    if len(key) == 1:
        return frame[key[0]].to_list()
    return list(zip(frame[key[0]].to_list(), frame[key[1]].to_list(), strict=True))
