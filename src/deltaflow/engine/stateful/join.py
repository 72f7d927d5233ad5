"""The join operator: both inputs arranged by join key; output follows the bilinear rule.

At each time, with ``K`` the keys of both deltas, the operator looks up the rows of ``K`` on
both sides (``L_old``, ``R_old``), and emits ``dL ⋈ R_old + L_new ⋈ dR`` where
``L_new = L_old + dL``. Left/right/outer joins also emit the change of the unmatched rows of
``K``: rows of one side with no partner on the other, before and after the delta.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from deltaflow._ids import combine_ids_expr
from deltaflow.engine.batch import DIFF, ID, consolidate, empty_batch
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.stateful.arrangement import KH, Arrangement, add_key_columns
from deltaflow.engine.stateful.nodes import JoinNode

LID = "__l_id"
RID = "__r_id"
RDIFF = "__rdiff"


def pair_id_expr() -> pl.Expr:
    """The id of a join row: derived from the pair of ids (a missing side counts as None)."""
    def side(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String).fill_null("none")

    return combine_ids_expr(side(LID), side(RID), salt="join")


class JoinOperator(Operator):
    def __init__(self, node: JoinNode) -> None:
        super().__init__(node)
        self.node = node
        self.keys = list(node.keys)
        self.mode = node.mode
        self.left = Arrangement()
        self.right = Arrangement()
        self.match: list[str] = [KH]
        empty = empty_batch(node.columns)
        self.schema = empty.schema
        self.left_names = [LID, *node.left_columns]
        self.right_names = [RID, *node.right_columns]

    def _side(self, delta: pl.DataFrame | None, pre: object, id_name: str) -> pl.DataFrame | None:
        if delta is None or delta.height == 0:
            return None
        frame = pre.run(delta, keep=[ID, DIFF]).rename({ID: id_name})  # type: ignore[attr-defined]
        casts = [pl.col(k).cast(dtype.to_polars()) for k, dtype in
                 zip(self.keys, self.node.key_types, strict=True)
                 if dtype.to_polars() != pl.Object]
        if casts:
            frame = frame.with_columns(casts)
        frame, self.match = add_key_columns(frame, self.keys)
        return frame

    def _join(self, left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
        right = right.select([*self.match, *self.right_names, pl.col(DIFF).alias(RDIFF)])
        joined = left.join(right, on=self.match, how="inner", nulls_equal=True)
        return joined.with_columns((pl.col(DIFF) * pl.col(RDIFF)).alias(DIFF))

    def _unmatched(self, rows: pl.DataFrame | None, other: pl.DataFrame | None,
                   sign: int) -> pl.DataFrame | None:
        if rows is None or rows.height == 0:
            return None
        if other is not None and other.height:
            rows = rows.join(other.select(self.match), on=self.match, how="anti",
                             nulls_equal=True)
        if rows.height == 0:
            return None
        return rows.with_columns((pl.col(DIFF) * sign).alias(DIFF))

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        node = self.node
        d_left = self._side(deltas[0], node.left_pre, LID)
        d_right = self._side(deltas[1], node.right_pre, RID)
        if d_left is None and d_right is None:
            return None
        touched = pl.concat([d[KH] for d in (d_left, d_right) if d is not None]).unique()
        left_old = self.left.lookup(touched)
        right_old = self.right.lookup(touched)
        left_new = _plus(left_old, d_left)
        right_new = _plus(right_old, d_right)
        if d_left is not None:
            self.left.insert(d_left)
        if d_right is not None:
            self.right.insert(d_right)

        parts: list[pl.DataFrame] = []
        if d_left is not None and right_old is not None:
            parts.append(self._join(d_left, right_old))
        if d_right is not None and left_new is not None:
            parts.append(self._join(left_new, d_right))
        if self.mode in ("left", "outer"):
            for rows, other, sign in ((left_old, right_old, -1), (left_new, right_new, 1)):
                found = self._unmatched(rows, other, sign)
                if found is not None:
                    parts.append(found)
        if self.mode in ("right", "outer"):
            for rows, other, sign in ((right_old, left_old, -1), (right_new, left_new, 1)):
                found = self._unmatched(rows, other, sign)
                if found is not None:
                    parts.append(found)
        parts = [p for p in parts if p.height]
        if not parts:
            return None
        return self._finish(parts)

    def _finish(self, parts: list[pl.DataFrame]) -> Delta:
        columns = [c for c in self.schema if c not in (ID, DIFF)]
        shaped = []
        for part in parts:
            fill = [pl.lit(None, dtype=self.schema[c]).alias(c) for c in columns
                    if c not in part.columns and c not in self.node.coalesced]
            shaped.append(part.with_columns(fill) if fill else part)
        frame = pl.concat([p.select([*[c for c in columns if c not in self.node.coalesced],
                                     DIFF]) for p in shaped], how="vertical_relaxed")
        if self.node.coalesced:
            frame = frame.with_columns([
                pl.coalesce(pl.col(a).cast(self.schema[name]), pl.col(b).cast(self.schema[name]))
                .alias(name) for name, (a, b) in self.node.coalesced.items()
            ])
        if self.node.id_side == "left":
            ids = pl.col(LID)
        elif self.node.id_side == "right":
            ids = pl.col(RID)
        else:
            ids = pair_id_expr()
        frame = frame.with_columns(ids.alias(ID)).select([ID, *columns, DIFF])
        # One part pairs consolidated inputs, so its (id, row) pairs are already distinct.
        out = consolidate(frame) if len(parts) > 1 else frame.filter(pl.col(DIFF) != 0)
        if out.height == 0:
            return None
        if self.node.id_side is not None:
            self._check_ids(out)
        return out

    def _check_ids(self, out: pl.DataFrame) -> None:
        side = self.node.id_side
        if out[ID].null_count():
            raise ValueError(f"{self.describe()}: a join with id= taken from the {side} side "
                             f"produced rows with no {side} row (unmatched rows of an outer "
                             f"join); drop id= or use a join that keeps every {side} row")
        inserted = out.filter(pl.col(DIFF) > 0)[ID]
        if inserted.n_unique() != inserted.len():
            raise ValueError(f"{self.describe()}: a join with id= taken from the {side} side "
                             f"matched one {side} row with several rows of the other side, so "
                             f"ids would repeat; drop id= or make the join key unique")


def _plus(old: pl.DataFrame | None, delta: pl.DataFrame | None) -> pl.DataFrame | None:
    if delta is None:
        return old
    if old is None or old.height == 0:
        return delta
    from deltaflow.engine.stateful.arrangement import consolidate_rows

    merged = consolidate_rows(pl.concat([old, delta], how="vertical_relaxed"))
    return merged if merged.height else None
