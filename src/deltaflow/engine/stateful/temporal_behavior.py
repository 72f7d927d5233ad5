"""Operators acting on event time: hold rows back, drop late rows, forget old rows.

Each keeps the *frontier* of event time: the largest value of a time column seen so far (per
instance when an instance column is given, else one for the whole input). A row's fate depends
on its *threshold* (another column, typically time + some length) compared with that frontier:

- ``buffer``: a row is held until the frontier, including the time being processed, reaches
  its threshold (``threshold <= frontier``); rows still held when every input has finished are
  let out at the engine's final time.
- ``freeze``: a row (insertion or deletion) whose threshold is at or below the frontier of the
  earlier times (``threshold <= frontier``) is dropped.
- ``forget``: the rows whose threshold is at or below the frontier of the earlier times are
  retracted the next time the operator receives changes (at that time, or at the odd time just
  after it when the retractions are *marked*, so that ``filter_out_results_of_forgetting``
  downstream can drop what they cause). A late insertion is never let in; a deletion of a row
  that was already forgotten is dropped.

These are Pathway's observable rules (checked on its update streams). The frontier is kept as
a plain value (no instance) or a small frame of (instance, frontier).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.operators import Delta, Operator, run_projection
from deltaflow.engine.runtime import FINAL_TIME
from deltaflow.plan import Node

THRESHOLD = "__thr"
EVENT_TIME = "__time"
INSTANCE = "__inst"
FRONTIER = "__frontier"


@dataclass(eq=False)
class TimeGateNode(Node):
    """``buffer`` / ``freeze`` / ``forget`` over a table: same columns and ids as the input.

    ``pre`` computes ``__thr`` and ``__time`` (and ``__inst`` when ``has_instance``).
    """

    pre: Any = None
    kind: str = "buffer"  # buffer | freeze | forget
    has_instance: bool = False
    mark_forgetting_records: bool = False


@dataclass(eq=False)
class ForgettingFilterNode(Node):
    """``filter_out_results_of_forgetting``: the input without the changes made at the odd
    times (only marked forgetting produces those). With ``ensure_consistency`` the rows last
    shown are remembered, so that a later change of a row retracts what was shown."""

    ensure_consistency: bool = False


class _Frontier:
    """The largest event time seen, for the whole input or per instance."""

    def __init__(self, has_instance: bool) -> None:
        self.has_instance = has_instance
        self.value: Any = None
        self.frame: pl.DataFrame | None = None  # (__inst, __frontier) with an instance

    def attach(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with a ``__frontier`` column: the frontier before this batch (null when
        no time was seen yet for the row's instance)."""
        if not self.has_instance:
            dtype = frame.schema[EVENT_TIME]
            return frame.with_columns(pl.lit(self.value, dtype=dtype).alias(FRONTIER))
        if self.frame is None:
            return frame.with_columns(pl.lit(None, dtype=frame.schema[EVENT_TIME]).alias(FRONTIER))
        return frame.join(
            self.frame, on=INSTANCE, how="left", nulls_equal=True, maintain_order="left"
        )

    def advance(self, frame: pl.DataFrame) -> None:
        """Take the event times of ``frame`` into account."""
        if frame.height == 0:
            return
        if not self.has_instance:
            latest = frame[EVENT_TIME].max()
            if latest is not None and (self.value is None or latest > self.value):
                self.value = latest
            return
        latest_by_instance = frame.group_by(INSTANCE).agg(pl.col(EVENT_TIME).max().alias(FRONTIER))
        latest_by_instance = latest_by_instance.filter(pl.col(FRONTIER).is_not_null())
        if self.frame is not None:
            latest_by_instance = (
                pl.concat([self.frame, latest_by_instance], how="vertical_relaxed")
                .group_by(INSTANCE)
                .agg(pl.col(FRONTIER).max())
            )
        self.frame = latest_by_instance

    def largest(self) -> Any:
        """The largest frontier of any instance (None before any time)."""
        if not self.has_instance:
            return self.value
        if self.frame is None or self.frame.height == 0:
            return None
        return self.frame[FRONTIER].max()


def _at_or_below(threshold: pl.Expr, frontier: pl.Expr) -> pl.Expr:
    """Whether the frontier reached the threshold (false without a frontier or threshold)."""
    return (threshold <= frontier).fill_null(False)


class TimeGateOperator(Operator[TimeGateNode]):
    def __init__(self, node: TimeGateNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.kind = node.kind
        self.marked = node.mark_forgetting_records
        self.frontier = _Frontier(node.has_instance)
        self.names = [ID, *node.columns]
        self.extra = [THRESHOLD, EVENT_TIME, *([INSTANCE] if node.has_instance else [])]
        # buffer: held changes; forget: live rows (both with the extra columns)
        self.state: pl.DataFrame | None = None
        self.smallest_threshold: Any = None  # of the rows in ``state``
        self.requested_time: int | None = None  # forget: the odd time of marked retractions
        self._marked: pl.DataFrame | None = None

    # --- the runtime's hooks -----------------------------------------------------------------
    def inputs_finished(self, final_time: int) -> bool:
        """Buffered rows go out when the inputs end (asked for the final time)."""
        if self.kind == "buffer" and self.state is not None and self.state.height:
            self.requested_time = final_time
            return True
        return False

    def state_rows(self) -> int:
        """Rows held in memory (for tests of bounded state)."""
        return 0 if self.state is None else self.state.height

    # --- step ------------------------------------------------------------------------------
    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if self.kind == "buffer" and time >= FINAL_TIME:
            # The inputs have ended: event time is over, everything held goes out, and so
            # does what comes now (from buffers upstream).
            self.requested_time = None
            held, self.state = self.state, None
            parts = [p for p in (held, delta) if p is not None and p.height]
            parts = [p.select([*self.names, DIFF]) for p in parts]
            return self._output(pl.concat(parts, how="vertical_relaxed") if parts else None)
        marked = None
        if self.requested_time == time:
            self.requested_time = None
            marked, self._marked = self._marked, None
        if delta is None or delta.height == 0:
            return self._output(marked)
        frame = run_projection(self.pre, delta, keep=delta.columns)
        if self.kind == "freeze":
            out = self._freeze(frame)
        elif self.kind == "buffer":
            out = self._buffer(frame)
        else:
            out = self._forget(time, frame)
        if marked is None or marked.height == 0:
            return out
        parts = [marked.select([*self.names, DIFF])]
        if out is not None:
            parts.append(out)
        return self._output(pl.concat(parts, how="vertical_relaxed"))

    def _output(self, frame: pl.DataFrame | None) -> Delta:
        if frame is None or frame.height == 0:
            return None
        out = consolidate(frame.select([*self.names, DIFF]))
        return out if out.height else None

    def _freeze(self, frame: pl.DataFrame) -> Delta:
        frame = self.frontier.attach(frame)
        kept = frame.filter(~_at_or_below(pl.col(THRESHOLD), pl.col(FRONTIER)))
        self.frontier.advance(frame)
        if kept.height == frame.height:
            return frame.select([*self.names, DIFF])
        return kept.select([*self.names, DIFF]) if kept.height else None

    def _buffer(self, frame: pl.DataFrame) -> Delta:
        self.frontier.advance(frame)
        rows = frame.select([*self.names, DIFF, *self.extra])
        smallest = rows[THRESHOLD].min()
        if self.state is None or self.state.height == 0:
            held = rows
        else:
            held = pl.concat([self.state, rows], how="vertical_relaxed")
            if (rows[DIFF] < 0).any():  # a deletion may cancel a held insertion
                held = consolidate(held)
            if self.smallest_threshold is not None and (
                smallest is None or self.smallest_threshold < smallest
            ):
                smallest = self.smallest_threshold
        largest = self.frontier.largest()
        if smallest is None or largest is None or smallest > largest:
            self.state, self.smallest_threshold = _compact(held), smallest
            return None
        held = self.frontier.attach(held)
        due = _at_or_below(pl.col(THRESHOLD), pl.col(FRONTIER)) | pl.col(THRESHOLD).is_null()
        released = held.filter(due)
        self.state = held.filter(~due).drop(FRONTIER)
        self.smallest_threshold = self.state[THRESHOLD].min() if self.state.height else None
        return self._output(released)

    def _forget(self, time: int, frame: pl.DataFrame) -> Delta:
        frame = self.frontier.attach(frame)
        late = _at_or_below(pl.col(THRESHOLD), pl.col(FRONTIER))
        inserted = frame.filter(pl.col(DIFF) > 0)
        if not self.marked:  # a late insertion would be forgotten at once: never let in
            inserted = inserted.filter(~late)
        deleted = frame.filter(pl.col(DIFF) < 0)
        live = self.state
        if deleted.height:
            # Only deletions of rows still live pass (the others were forgotten or dropped).
            # Rows are matched by id and threshold: a row in several windows has one id.
            if live is None or live.height == 0:
                deleted = deleted.clear()
            else:
                match = [ID, THRESHOLD]
                deleted = deleted.join(live.select(match), on=match, how="semi", nulls_equal=True)
                live = live.join(deleted.select(match), on=match, how="anti", nulls_equal=True)
        columns = [*self.names, DIFF, *self.extra]
        passed = pl.concat(
            [deleted.select(columns), inserted.select(columns)], how="vertical_relaxed"
        )
        if inserted.height:
            fresh = inserted.select(columns)
            live = (
                fresh
                if live is None or live.height == 0
                else pl.concat([live, fresh], how="vertical_relaxed")
            )
            smallest = fresh[THRESHOLD].min()
            if smallest is not None and (
                self.smallest_threshold is None or smallest < self.smallest_threshold
            ):
                self.smallest_threshold = smallest
        forgotten = None
        largest = self.frontier.largest()  # of the earlier times
        if (
            live is not None
            and live.height
            and largest is not None
            and self.smallest_threshold is not None
            and self.smallest_threshold <= largest
        ):
            live = self.frontier.attach(live)
            expired = _at_or_below(pl.col(THRESHOLD), pl.col(FRONTIER))
            forgotten = (
                live.filter(expired)
                .drop(FRONTIER)
                .with_columns(pl.lit(-1, dtype=pl.Int64).alias(DIFF))
            )
            live = live.filter(~expired).drop(FRONTIER)
            self.smallest_threshold = live[THRESHOLD].min() if live.height else None
        self.state = _compact(live)
        self.frontier.advance(frame)
        if forgotten is not None and forgotten.height:
            if self.marked:
                self._marked = forgotten
                self.requested_time = time + 1
            else:
                passed = pl.concat([passed, forgotten], how="vertical_relaxed")
        return self._output(passed)


def _compact(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    """State frames grow by one chunk per batch; many small chunks slow every later scan."""
    if frame is not None and frame.n_chunks() > 32:
        return frame.rechunk()
    return frame


class ForgettingFilterOperator(Operator[ForgettingFilterNode]):
    """Drops the changes of odd times: the effects of marked forgetting.

    With ``ensure_consistency``: the rows shown so far are kept by id; every row a delta
    touches retracts the shown one (if any) and shows its new version (if inserted), so the
    stream stays a valid sequence of changes even though forgetting changed the rows
    upstream unseen.
    """

    def __init__(self, node: ForgettingFilterNode) -> None:
        super().__init__(node)
        self.consistent = node.ensure_consistency
        self.names = [ID, *node.columns]
        self.shown: pl.DataFrame | None = None

    def state_rows(self) -> int:
        return 0 if self.shown is None else self.shown.height

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if time % 2 or delta is None:
            return None
        if not self.consistent:
            return delta
        inserted = delta.filter(pl.col(DIFF) > 0).select(self.names)
        parts = []
        shown = self.shown
        if shown is not None and shown.height:
            touched = delta.select(ID).unique()
            parts.append(
                shown.join(touched, on=ID, how="semi").with_columns(
                    pl.lit(-1, dtype=pl.Int64).alias(DIFF)
                )
            )
            shown = shown.join(touched, on=ID, how="anti")
        parts.append(inserted.with_columns(pl.lit(1, dtype=pl.Int64).alias(DIFF)))
        self.shown = _compact(
            inserted if shown is None else pl.concat([shown, inserted], how="vertical_relaxed")
        )
        return self._output(pl.concat(parts, how="vertical_relaxed"))

    def _output(self, frame: pl.DataFrame) -> Delta:
        out = consolidate(frame)
        return out if out.height else None
