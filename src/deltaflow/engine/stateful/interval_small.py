"""The interval join's pairs for small deltas, over Python row tuples.

Same rule as the Polars path (:mod:`deltaflow.engine.stateful.interval`): the pairs of the
touched (key, bucket)s, ``dL ⋈ R_old + L_new ⋈ dR``, kept when the times are within the
bounds; the rows come from the arrangements' Python lookups, so a streaming change costs a
handful of Polars calls instead of a few dozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from deltaflow.engine.batch import DIFF
from deltaflow.engine.stateful.arrangement import Arrangement
from deltaflow.engine.stateful.join import _Positions
from deltaflow.engine.stateful.keys import KH

if TYPE_CHECKING:
    from deltaflow.engine.stateful.interval import IntervalJoinOperator

#: Deltas up to this many (bucketed) rows, both sides together, take this path.
SMALL_ROWS = 256


def small_pairs(
    op: IntervalJoinOperator,
    d_left: pl.DataFrame | None,
    d_right: pl.DataFrame | None,
    pair_names: Sequence[str],
    left_time: str,
    right_time: str,
    bucket: str,
) -> pl.DataFrame | None:
    """Look up, insert and pair the deltas of one time; the change of the pairs as a frame
    of ``pair_names`` (both sides' ids and columns) and ``_diff``, or None."""
    d_left = _aligned(op.left, d_left)
    d_right = _aligned(op.right, d_right)
    left_rows = d_left.rows() if d_left is not None else []
    right_rows = d_right.rows() if d_right is not None else []
    touched: set[int] = set()
    for frame, rows in ((d_left, left_rows), (d_right, right_rows)):
        if frame is not None:
            kh = frame.columns.index(KH)
            touched.update(row[kh] for row in rows)
    left_old = op.left.lookup_rows(touched) if right_rows and op.left.size else []
    right_old = op.right.lookup_rows(touched) if left_rows and op.right.size else []
    if d_left is not None:
        op.left.insert(d_left, left_rows)
    if d_right is not None:
        op.right.insert(d_right, right_rows)
    if op.left.columns is None or op.right.columns is None:
        return None  # one side has never had rows: nothing pairs
    keys = [*op.keys, bucket]
    left_at = _Positions(op.left._schema, keys)
    right_at = _Positions(op.right._schema, keys)
    left_new = op.left.plus_rows(left_old, left_rows) if right_rows else []
    out: dict[tuple[Any, ...], list[Any]] = {}
    lt, rt = left_at.index[left_time], right_at.index[right_time]
    lower, upper = op.lower, op.upper
    for lefts, rights in ((left_rows, right_old), (left_new, right_rows)):
        if not lefts or not rights:
            continue
        by_group: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for row in rights:
            by_group.setdefault(right_at.group(row), []).append(row)
        for lrow in lefts:
            partners = by_group.get(left_at.group(lrow))
            if not partners or lrow[lt] is None:  # a missing time matches nothing
                continue
            low, high = lrow[lt] + lower, lrow[lt] + upper
            for rrow in partners:
                if rrow[rt] is not None and low <= rrow[rt] <= high:
                    key = (left_at.key(lrow), right_at.key(rrow))
                    diff = lrow[left_at.diff] * rrow[right_at.diff]
                    entry = out.get(key)
                    if entry is None:
                        out[key] = [lrow, rrow, diff]
                    else:
                        entry[2] += diff
    live = [entry for entry in out.values() if entry[2] != 0]
    if not live:
        return None
    series = []
    for name in pair_names:
        at, side = (
            (left_at, 0) if name in left_at.index and name.startswith("__l") else (right_at, 1)
        )
        position = at.index[name]
        series.append(
            pl.Series(name, [entry[side][position] for entry in live], dtype=op.schema[name])
        )
    series.append(pl.Series(DIFF, [entry[2] for entry in live], dtype=pl.Int64))
    return pl.DataFrame(series)


def _aligned(arrangement: Arrangement, frame: pl.DataFrame | None) -> pl.DataFrame | None:
    """The frame with the arrangement's column order (so its rows can be inserted as they
    are)."""
    if (
        frame is not None
        and arrangement.columns is not None
        and frame.columns != arrangement.columns
    ):
        return frame.select(arrangement.columns)
    return frame
