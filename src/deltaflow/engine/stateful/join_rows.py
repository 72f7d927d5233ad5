"""The join's step for deltas of a few rows: the bilinear rule over Python row tuples.

A Polars query has a fixed cost of a fraction of a millisecond; for a delta of a few rows
against a few matching rows of state, plain Python over row tuples costs less.
:class:`SmallDeltaStep` holds that path of :class:`~deltaflow.engine.stateful.join.JoinOperator`
(the same rule and output as its Polars path), with the names both paths share: the columns
of the two sides' ids and the salt of the pair ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from deltaflow._ids import combine_id_values
from deltaflow.engine.batch import DIFF, ID, project, row_key_function
from deltaflow.engine.operators import Delta
from deltaflow.engine.stateful.arrangement import Arrangement
from deltaflow.engine.stateful.keys import KH, key_hash_series

LID = "__l_id"
RID = "__r_id"

#: Join rows take the derived id (:func:`deltaflow._ids.combine_ids`) of their pair of ids,
#: left then right, with this salt; a missing side (an unmatched row of an outer join) counts
#: as :data:`~deltaflow._ids.MISSING`.
PAIR_SALT = "join"

#: Key types whose Python values stand for themselves exactly (as dict keys), so that a key's
#: hash can be remembered by value (floats are not: -0.0 == 0.0, NaN != NaN).
_EXACT_KEYS = (pl.Int64, pl.String, pl.Boolean, pl.UInt128)
_KEY_HASHES_KEPT = 65_536  # remembered key hashes per join


class SmallDeltaStep:
    """The small-delta step of the join operator (a mixin: the operator provides the
    attributes and methods declared here)."""

    node: Any
    mode: str
    keys: list[str]
    left: Arrangement
    right: Arrangement
    schema: Mapping[str, pl.DataType]
    left_names: list[str]
    right_names: list[str]
    match: list[str]
    _key_hashes: dict[tuple[Any, ...], int]  # key values -> their hash (see _side_small)

    def _side(self, delta: pl.DataFrame | None, pre: Any, id_name: str) -> pl.DataFrame | None:
        raise NotImplementedError

    def _check_id_values(self, ids: list[Any], diffs: list[int]) -> None:
        raise NotImplementedError

    def _side_small(self, delta: pl.DataFrame, pre: Any, id_name: str) -> pl.DataFrame | None:
        """:meth:`_side` of a few rows whose projection only picks columns: the frame is put
        together from the delta's Series, and the key hashes come from remembered ones (a
        query hashes only keys not seen yet). None when that does not apply."""
        if not self.keys or pre.pure_exprs() is None:  # no key; Python nodes or error cells
            return None
        copies = pre.copies(delta)
        if copies is None:
            return None
        source = dict(copies)
        key_columns = [delta.get_column(source[k]) for k in self.keys]
        for column, dtype in zip(key_columns, self.node.key_types, strict=True):
            wanted = dtype.to_polars()
            if column.dtype != wanted or not isinstance(wanted, _EXACT_KEYS):
                return None
        values = list(zip(*(column.to_list() for column in key_columns), strict=True))
        known = self._key_hashes
        missing = [key for key in set(values) if key not in known]
        if missing:
            if len(known) + len(missing) > _KEY_HASHES_KEPT:
                known.clear()
            hashed = key_hash_series(
                [
                    pl.Series(name, [key[i] for key in missing], dtype=column.dtype)
                    for i, (name, column) in enumerate(zip(self.keys, key_columns, strict=True))
                ]
            )
            assert hashed is not None  # exact key types, never Python objects
            known.update(zip(missing, hashed.to_list(), strict=True))
        self.match = [KH, *self.keys]
        return pl.DataFrame(
            [
                delta.get_column(ID).alias(id_name),
                delta.get_column(DIFF),
                *(delta.get_column(column).alias(name) for name, column in copies),
                pl.Series(KH, [known[key] for key in values], dtype=pl.UInt64),
            ]
        )

    def _step_small(
        self,
        deltas: Sequence[Delta],
        sides: tuple[pl.DataFrame | None, pl.DataFrame | None] | None = None,
    ) -> Delta:
        """The step for deltas of a few rows: the bilinear rule over Python row tuples
        (``sides``: the deltas as :meth:`_side` gives them, when computed already)."""
        node = self.node
        if sides is not None:
            d_left, d_right = sides
        else:
            d_left = self._side(deltas[0], node.left_pre, LID)
            d_right = self._side(deltas[1], node.right_pre, RID)
        if d_left is None and d_right is None:
            return None
        outer_left = self.mode in ("left", "outer")
        outer_right = self.mode in ("right", "outer")
        left_rows = d_left.rows() if d_left is not None else []
        right_rows = d_right.rows() if d_right is not None else []
        left_at = _Positions(d_left.schema if d_left is not None else self.left._schema, self.keys)
        right_at = _Positions(
            d_right.schema if d_right is not None else self.right._schema, self.keys
        )
        touched = {r[left_at.kh] for r in left_rows} | {r[right_at.kh] for r in right_rows}
        # An inner join needs one side's old rows only to pair them with the other's delta.
        unmatched = outer_left or outer_right
        left_old = self.left.lookup_rows(touched) if right_rows or unmatched else []
        right_old = self.right.lookup_rows(touched) if left_rows or unmatched else []
        if d_left is not None:
            self.left.insert(d_left, left_rows)
        if d_right is not None:
            self.right.insert(d_right, right_rows)
        if self.left.columns is not None and self.left.columns != list(left_at.index):
            left_at = _Positions(self.left._schema, self.keys)
        if self.right.columns is not None and self.right.columns != list(right_at.index):
            right_at = _Positions(self.right._schema, self.keys)

        groups: dict[tuple[Any, ...], list[list[tuple[Any, ...]]]] = {}
        for slot, rows, at in (
            (0, left_old, left_at),
            (1, left_rows, left_at),
            (2, right_old, right_at),
            (3, right_rows, right_at),
        ):
            for row in rows:
                group = groups.get(at.group(row))
                if group is None:
                    group = groups[at.group(row)] = [[], [], [], []]
                group[slot].append(row)
        out: dict[tuple[Any, ...], list[Any]] = {}
        for l_old, d_l, r_old, d_r in groups.values():
            l_new = self.left.plus_rows(l_old, d_l)
            r_new = self.right.plus_rows(r_old, d_r)
            for lefts, rights in ((d_l, r_old), (l_new, d_r)):
                for lrow in lefts:
                    for rrow in rights:
                        _add(
                            out,
                            left_at,
                            lrow,
                            right_at,
                            rrow,
                            lrow[left_at.diff] * rrow[right_at.diff],
                        )
            if outer_left:
                for rows, other, sign in ((l_old, r_old, -1), (l_new, r_new, 1)):
                    if not other:
                        for lrow in rows:
                            _add(out, left_at, lrow, right_at, None, sign * lrow[left_at.diff])
            if outer_right:
                for rows, other, sign in ((r_old, l_old, -1), (r_new, l_new, 1)):
                    if not other:
                        for rrow in rows:
                            _add(out, left_at, None, right_at, rrow, sign * rrow[right_at.diff])
        live = [entry for entry in out.values() if entry[2] != 0]
        if not live:
            return None
        return self._frame_small(live, left_at, right_at)

    def _frame_small(
        self, live: list[list[Any]], left_at: _Positions, right_at: _Positions
    ) -> Delta:
        """The wide output rows (left row, right row, diff) as a delta batch."""
        schema = self.schema
        data: dict[str, list[Any]] = {}
        for names, at, side in ((self.left_names, left_at, 0), (self.right_names, right_at, 1)):
            for name in names:
                position = at.index.get(name)
                if position is None:  # this side never had rows: every row lacks it
                    data[name] = [None] * len(live)
                    continue
                data[name] = [None if e[side] is None else e[side][position] for e in live]
        columns = [c for c in schema if c not in (ID, DIFF)]
        plain = [c for c in columns if c not in self.node.coalesced]
        diffs = [e[2] for e in live]
        series = {c: pl.Series(c, data[c], dtype=schema[c]) for c in plain}
        side = self.node.id_side
        if side is None:
            # Pair ids in Python: a few rows cost less than a Polars query.
            ids = [
                combine_id_values(left, right, salt=PAIR_SALT)
                for left, right in zip(data[LID], data[RID], strict=True)
            ]
        else:
            ids = data[LID] if side == "left" else data[RID]
            self._check_id_values(ids, diffs)
        try:  # coalesced columns in Python too: the frame then needs no query at all
            for name, (a, b) in self.node.coalesced.items():
                values = [x if x is not None else y for x, y in zip(data[a], data[b], strict=True)]
                series[name] = pl.Series(name, values, dtype=schema[name])
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
            return self._frame_with_query(series, ids, diffs, columns)
        return pl.DataFrame(
            [
                pl.Series(ID, ids, dtype=pl.UInt128),
                *(series[c] for c in columns),
                pl.Series(DIFF, diffs, dtype=pl.Int64),
            ]
        )

    def _frame_with_query(
        self, series: dict[str, pl.Series], ids: list[Any], diffs: list[int], columns: list[str]
    ) -> pl.DataFrame:
        """The output frame with its coalesced columns computed by Polars (for values that
        do not convert to the output type one by one)."""
        schema = self.schema
        frame = pl.DataFrame(
            [
                pl.Series(ID, ids, dtype=pl.UInt128),
                *(series[c] for c in columns if c not in self.node.coalesced),
                pl.Series(DIFF, diffs, dtype=pl.Int64),
            ]
        )
        coalesced = {
            name: pl.coalesce(pl.col(a).cast(schema[name]), pl.col(b).cast(schema[name])).alias(
                name
            )
            for name, (a, b) in self.node.coalesced.items()
        }
        return project(frame, [ID, *[coalesced.get(c, c) for c in columns], DIFF])


class _Positions:
    """Where the diff, the key hash and the key columns are in one side's row tuples."""

    def __init__(self, schema: Mapping[str, pl.DataType], keys: Sequence[str]) -> None:
        names = list(schema)
        self.index = {name: i for i, name in enumerate(names)}
        self.diff = self.index.get(DIFF, -1)
        self.kh = self.index.get(KH, -1)
        self.keys = [self.index[k] for k in keys] if names else []
        row = [i for i in range(len(names)) if i != self.diff]
        self.key = row_key_function(
            row,
            [i for i in row if schema[names[i]] == pl.Object],
            [i for i in row if schema[names[i]] in (pl.Float32, pl.Float64)],
        )

    def group(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return (row[self.kh], *[row[i] for i in self.keys])


def _add(
    out: dict[tuple[Any, ...], list[Any]],
    left_at: _Positions,
    left: tuple[Any, ...] | None,
    right_at: _Positions,
    right: tuple[Any, ...] | None,
    diff: int,
) -> None:
    """Add ``diff`` copies of the wide row of (left, right) to ``out`` (consolidating)."""
    key = (
        None if left is None else left_at.key(left),
        None if right is None else right_at.key(right),
    )
    entry = out.get(key)
    if entry is None:
        out[key] = [left, right, diff]
    else:
        entry[2] += diff
