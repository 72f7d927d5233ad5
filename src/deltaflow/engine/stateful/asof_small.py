"""The asof join's path for small deltas: the same recomputation of the touched instances as
the Polars path (:mod:`deltaflow.engine.stateful.asof`), over Python row tuples.

A Polars call costs tens of microseconds whatever it does, and the Polars path needs a few
dozen per time; here a streaming change costs one projection, the arrangements' Python lookups
and a binary search per row of the touched instances. The results are identical: the same
order (time, then id) decides ties, and the same ids are derived.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from deltaflow._ids import combine_id_values
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.operators import Delta
from deltaflow.engine.stateful.arrangement import Arrangement
from deltaflow.engine.stateful.join import LID, RID
from deltaflow.engine.stateful.keys import KH

if TYPE_CHECKING:
    from deltaflow.engine.stateful.asof import AsofJoinOperator

TIME = "__time"
#: Deltas up to this many rows (both sides) take this path.
SMALL_ROWS = 256


class _Layout:
    """Where the fields of one side's row tuples are."""

    def __init__(
        self, columns: Sequence[str], by: Sequence[str], names: Sequence[str], keys: Sequence[str]
    ) -> None:
        index = {name: i for i, name in enumerate(columns)}
        self.id = index[names[0]]
        self.time = index[TIME]
        self.diff = index[DIFF]
        self.kh = index[KH]
        self.by = [index[c] for c in by]
        self.names = {name: index[name] for name in names}
        self.first_key = index[keys[0]] if keys else -1

    def instance(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[i] for i in self.by)


def small_step(op: AsofJoinOperator, deltas: Sequence[Delta]) -> Delta:
    """One time of the asof join over Python rows (the caller checked the sizes and that
    every column converts exactly to Python values)."""
    node = op.node
    d_left = op._prepared(deltas[0], node.left_pre, LID)
    d_right = op._prepared(deltas[1], node.right_pre, RID)
    if d_left is None and d_right is None:
        return None
    by = op._by()
    sides: dict[str, tuple[Arrangement, pl.DataFrame | None]] = {
        "l": (op.left, d_left),
        "r": (op.right, d_right),
    }
    delta_rows: dict[str, list[tuple[Any, ...]]] = {}
    for side, (arrangement, delta) in sides.items():
        if (
            delta is not None
            and arrangement.columns is not None
            and delta.columns != arrangement.columns
        ):
            delta = delta.select(arrangement.columns)
            sides[side] = (arrangement, delta)
        delta_rows[side] = delta.rows() if delta is not None else []
    touched: set[int] = set()
    for side, (_, delta) in sides.items():
        if delta is not None:
            kh = delta.columns.index(KH)
            touched.update(row[kh] for row in delta_rows[side])
    old: dict[str, list[tuple[Any, ...]]] = {}
    new: dict[str, list[tuple[Any, ...]]] = {}
    for side, (arrangement, delta) in sides.items():
        old[side] = arrangement.lookup_rows(touched) if arrangement.size else []
        if delta is not None:
            arrangement.insert(delta, delta_rows[side])
        rows = delta_rows[side]
        if not rows:
            new[side] = old[side]
        elif not old[side]:
            new[side] = rows
        else:
            row_layout = arrangement._layout
            assert row_layout is not None
            new[side] = row_layout.consolidate(old[side] + rows)
    if op.left.columns is None or op.right.columns is None:
        # One side has never had rows: its columns are unknown, and it matches nothing.
        layouts = {
            side: _Layout(
                arr.columns, by, op.left_names if side == "l" else op.right_names, op.keys
            )
            for side, (arr, _) in sides.items()
            if arr.columns is not None
        }
    else:
        layouts = {
            "l": _Layout(op.left.columns, by, op.left_names, op.keys),
            "r": _Layout(op.right.columns, by, op.right_names, op.keys),
        }
    # Matches are compared as (side, row, matched row) before building any output row, so
    # only the rows whose match changed cost more than a lookup.
    pairs: dict[tuple[str, tuple[Any, ...], tuple[Any, ...] | None], int] = {}
    _emit(op, layouts, old, -1, pairs)
    _emit(op, layouts, new, 1, pairs)
    columns = [c for c in op.schema if c not in (ID, DIFF)]
    out: dict[tuple[Any, ...], int] = {}
    for (side, row, peer), count in pairs.items():
        if count:
            layout = layouts[side]
            wide = _wide(
                op, side, row, layout, peer, layouts.get("r" if side == "l" else "l"), columns
            )
            out[wide] = out.get(wide, 0) + count * row[layout.diff]
    live = [(key, diff) for key, diff in out.items() if diff != 0]
    if not live:
        return None
    data = list(zip(*[key for key, _ in live], strict=True))
    series = [pl.Series(ID, data[0], dtype=pl.UInt128)]
    series += [
        pl.Series(name, values, dtype=op.schema[name])
        for name, values in zip(columns, data[1:], strict=True)
    ]
    series.append(pl.Series(DIFF, [diff for _, diff in live], dtype=pl.Int64))
    return pl.DataFrame(series)


def _emit(
    op: AsofJoinOperator,
    layouts: dict[str, _Layout],
    rows: dict[str, list[tuple[Any, ...]]],
    sign: int,
    out: dict[tuple[str, tuple[Any, ...], tuple[Any, ...] | None], int],
) -> None:
    """Count ``sign`` for each (side, row, matched row) of the given rows of some
    instances."""
    kept = [side for side in ("l", "r") if op.mode in ("outer", {"l": "left", "r": "right"}[side])]
    groups: dict[tuple[Any, ...], dict[str, list[tuple[Any, ...]]]] = {}
    for side, side_rows in rows.items():
        layout = layouts.get(side)
        if layout is None:
            continue
        for row in side_rows:
            groups.setdefault(layout.instance(row), {"l": [], "r": []})[side].append(row)
    for group in groups.values():
        for side in kept:
            own = group[side]
            if not own:
                continue
            other_side = "r" if side == "l" else "l"
            own_layout = layouts[side]
            other_layout = layouts.get(other_side)
            times: list[Any] = []
            candidates = (
                [r for r in group[other_side] if r[other_layout.time] is not None]
                if other_layout is not None
                else []
            )
            if candidates:
                assert other_layout is not None
                time_column, id_column = other_layout.time, other_layout.id
                candidates.sort(key=lambda r: (r[time_column], r[id_column]))
                times = [r[time_column] for r in candidates]
            for row in own:
                peer = (
                    _peer(op, side, row[own_layout.time], candidates, times) if candidates else None
                )
                key = (side, row, peer)
                out[key] = out.get(key, 0) + sign


def _peer(
    op: AsofJoinOperator, side: str, time: Any, candidates: list[tuple[Any, ...]], times: list[Any]
) -> tuple[Any, ...] | None:
    """The row of ``candidates`` (sorted by time, then id) a row at ``time`` matches."""
    if time is None:
        return None
    back_inclusive, forward_inclusive = op.inclusive[side]
    prev = (bisect_right(times, time) if back_inclusive else bisect_left(times, time)) - 1
    nxt = bisect_left(times, time) if forward_inclusive else bisect_right(times, time)
    has_prev, has_next = prev >= 0, nxt < len(times)
    if op.direction == "backward":
        return candidates[prev] if has_prev else None
    if op.direction == "forward":
        return candidates[nxt] if has_next else None
    if has_prev and (not has_next or time - times[prev] < times[nxt] - time):
        return candidates[prev]
    return candidates[nxt] if has_next else None


def _wide(
    op: AsofJoinOperator,
    side: str,
    row: tuple[Any, ...],
    layout: _Layout,
    peer: tuple[Any, ...] | None,
    peer_layout: _Layout | None,
    columns: list[str],
) -> tuple[Any, ...]:
    """The output row (id first, then the wide columns) of ``row`` matched with ``peer``."""
    values: list[Any] = [combine_id_values(row[layout.id], salt=f"asof-{side}")]
    for name in columns:
        position = layout.names.get(name)
        if position is not None:
            values.append(row[position])
        elif name == "__t__t":
            values.append(row[layout.time])
        elif name == "__t__side":
            values.append(side == "r")
        elif name == "__t__instance":
            values.append(row[layout.first_key])
        elif peer is None or peer_layout is None:
            values.append(op.defaults.get(name))
        else:
            values.append(peer[peer_layout.names[name]])
    return tuple(values)
