"""Session windows: consecutive rows (in time order, per instance) whose times are close.

Two neighbours belong to one session when their gap is below ``max_gap`` (or when the
``predicate`` accepts the pair of times). The operator keeps the live rows with their current
session (``_pw_window``: the id of the session's latest row, ``_pw_window_start``/``_end``:
its earliest and latest times) and, for each delta, recomputes only the neighbourhood the
delta can change: per touched instance, the sessions within ``max_gap`` of the delta's
times (the whole instance with a predicate). Rows whose session changed are retracted with
the old one and inserted with the new one, so a late row bridging two sessions retracts both
and inserts the merged session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.operators import Delta, Operator, run_projection
from deltaflow.plan import Node

KEY = "_pw_key"
INSTANCE = "_pw_instance"
WINDOW = "_pw_window"
START = "_pw_window_start"
END = "_pw_window_end"
_NEW = "__new_session"


@dataclass(eq=False)
class SessionNode(Node):
    """Rows with their session. ``pre`` computes ``_pw_key`` (and ``_pw_instance``) next to
    the ``carried`` columns; ``max_gap`` is in the time's units (a Polars duration for
    datetimes)."""

    pre: Any = None
    carried: list[str] = field(default_factory=list)
    max_gap: Any = None
    predicate: Callable[[Any, Any], bool] | None = None
    has_instance: bool = False


class SessionOperator(Operator[SessionNode]):
    def __init__(self, node: SessionNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.carried = list(node.carried)
        self.max_gap = node.max_gap
        self.predicate = node.predicate
        self.has_instance = node.has_instance
        self.input_names = [ID, *self.carried, KEY, *([INSTANCE] if node.has_instance else [])]
        self.out_names = [ID, *node.columns]
        self.state: pl.DataFrame | None = None  # live rows with their sessions

    def state_rows(self) -> int:
        return 0 if self.state is None else self.state.height

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        frame = run_projection(self.pre, delta, keep=[ID, *self.carried], tail=[DIFF])
        frame = frame.filter(pl.col(KEY).is_not_null())
        if not self.has_instance:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Null).alias(INSTANCE))
        if frame.height == 0:
            return None
        old = self._affected(frame)
        rows = old.select(self.input_names_all())
        deleted = frame.filter(pl.col(DIFF) < 0)
        if deleted.height:
            rows = rows.join(deleted.select(ID), on=ID, how="anti")
        inserted = frame.filter(pl.col(DIFF) > 0).select(self.input_names_all())
        rows = pl.concat([rows, inserted], how="vertical_relaxed") if rows.height else inserted
        new = self._sessions(rows)
        if self.state is None or self.state.height == 0:
            self.state = new
        else:
            rest = self.state.join(old.select(ID), on=ID, how="anti")
            self.state = pl.concat([rest, new], how="vertical_relaxed")
            if self.state.n_chunks() > 32:  # one chunk per batch otherwise
                self.state = self.state.rechunk()
        changes = pl.concat(
            [
                old.with_columns(pl.lit(-1, dtype=pl.Int64).alias(DIFF)),
                new.with_columns(pl.lit(1, dtype=pl.Int64).alias(DIFF)),
            ],
            how="vertical_relaxed",
        )
        out = consolidate(changes.select([*self.out_names, DIFF]))
        return out if out.height else None

    def input_names_all(self) -> list[str]:
        return [ID, *self.carried, KEY, INSTANCE]

    def _affected(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The live rows (with their sessions) that the delta may move to another session."""
        state = self.state
        if state is None or state.height == 0:
            return self._empty_state(frame)
        bounds = frame.group_by(INSTANCE).agg(
            pl.col(KEY).min().alias("__lo"), pl.col(KEY).max().alias("__hi")
        )
        candidates = state.join(bounds, on=INSTANCE, how="inner", nulls_equal=True)
        if self.predicate is None:
            near = (pl.col(END) >= pl.col("__lo") - self.max_gap) & (
                pl.col(START) <= pl.col("__hi") + self.max_gap
            )
            windows = candidates.filter(near).select(WINDOW).unique()
            candidates = candidates.join(windows, on=WINDOW, how="semi")
        return candidates.drop("__lo", "__hi")

    def _empty_state(self, frame: pl.DataFrame) -> pl.DataFrame:
        schema = frame.select(self.input_names_all()).schema
        empty = pl.DataFrame(schema=schema)
        return empty.with_columns(
            pl.lit(None, dtype=pl.UInt128).alias(WINDOW),
            pl.lit(None, dtype=schema[KEY]).alias(START),
            pl.lit(None, dtype=schema[KEY]).alias(END),
        )

    def _sessions(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` (whole sessions of some instances) with their sessions recomputed."""
        if rows.height == 0:
            return rows.with_columns(
                pl.lit(None, dtype=pl.UInt128).alias(WINDOW),
                pl.col(KEY).alias(START),
                pl.col(KEY).alias(END),
            )
        rows = rows.sort([INSTANCE, KEY, ID], nulls_last=True)
        first = (
            pl.col(INSTANCE).ne_missing(pl.col(INSTANCE).shift(1))
            if self.has_instance
            else pl.int_range(pl.len()) == 0
        )
        if self.predicate is None:
            close = (pl.col(KEY) - pl.col(KEY).shift(1)) < self.max_gap
            rows = rows.with_columns((first | ~close.fill_null(False)).alias(_NEW))
        else:
            keys = rows[KEY].to_list()
            starts = rows.select(first.alias("f"))["f"].to_list()
            predicate = self.predicate
            flags = [True] + [
                bool(starts[i]) or not predicate(keys[i - 1], keys[i]) for i in range(1, len(keys))
            ]
            rows = rows.with_columns(pl.Series(_NEW, flags, dtype=pl.Boolean))
        # Sessions are runs of the sorted rows: the start is the run's first time, the end
        # and the id (of the session's latest row) its last row's; filled along the runs
        # (linear scans, no grouping).
        last = pl.col(_NEW).shift(-1).fill_null(True)
        return rows.with_columns(
            pl.when(last).then(pl.col(ID)).backward_fill().alias(WINDOW),
            pl.when(pl.col(_NEW)).then(pl.col(KEY)).forward_fill().alias(START),
            pl.when(last).then(pl.col(KEY)).backward_fill().alias(END),
        ).drop(_NEW)
