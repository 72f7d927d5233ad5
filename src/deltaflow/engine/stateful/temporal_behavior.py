"""Operators acting on event time: hold rows back, drop late rows, forget old rows.

Each keeps the *frontier* of event time: the largest value of a time column seen so far (per
instance when an instance column is given, else one for the whole input). A row's fate depends
on its *threshold* (another column, typically time + some length) compared with that frontier:

- ``buffer``: a row is held until the frontier, including the time being processed, reaches
  its threshold (``threshold <= frontier``); a change without a threshold (None) passes at
  once; rows still held when every input has finished are let out at the engine's final time.
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

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import polars as pl

from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.operators import Delta, Operator, run_projection
from deltaflow.engine.times import FINAL_TIME
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
            self.advance_to(frame[EVENT_TIME].max())
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

    def advance_to(self, latest: Any) -> None:
        """Take the event time ``latest`` into account (no instance; None: no time)."""
        if latest is not None and (self.value is None or latest > self.value):
            self.value = latest

    def largest(self) -> Any:
        """The largest frontier of any instance (None before any time)."""
        if not self.has_instance:
            return self.value
        if self.frame is None or self.frame.height == 0:
            return None
        return self.frame[FRONTIER].max()


class GateSummary(NamedTuple):
    """What one worker's share of a gate's input at a time tells the other workers (see
    :meth:`TimeGateOperator.prepare`); on one worker, the whole input's."""

    #: Rows of the input at this time (none anywhere: the gate does not step).
    rows: int = 0
    #: The largest event time of those rows (None: none).
    latest: Any = None
    #: ``buffer``: the smallest and largest threshold, and the number, of the rows held with
    #: this time's rows added (with an instance: of those still held after this step, which
    #: the worker owning their instances decides alone).
    smallest: Any = None
    most: Any = None
    held: int = 0
    #: ``forget``: whether rows are forgotten at this time.
    forgot: bool = False


def combine_summaries(summaries: Sequence[GateSummary]) -> GateSummary:
    """The summary of the whole input from those of the workers' shares."""
    if len(summaries) == 1:
        return summaries[0]
    return GateSummary(
        rows=sum(s.rows for s in summaries),
        latest=_extreme(max, [s.latest for s in summaries]),
        smallest=_extreme(min, [s.smallest for s in summaries]),
        most=_extreme(max, [s.most for s in summaries]),
        held=sum(s.held for s in summaries),
        forgot=any(s.forgot for s in summaries),
    )


def _extreme(pick: Any, values: list[Any]) -> Any:
    """``pick`` (min or max) of ``values`` as Polars takes it over their union: None and NaN
    (a share whose only values are NaN) count only when nothing else is there."""
    numbers = [v for v in values if v is not None and v == v]
    if numbers:
        return pick(numbers)
    return next((v for v in values if v is not None), None)


def _at_or_below(threshold: pl.Expr, frontier: pl.Expr) -> pl.Expr:
    """Whether the frontier reached the threshold (false without a frontier or threshold)."""
    return (threshold <= frontier).fill_null(False)


def _bounds(frame: pl.DataFrame) -> tuple[Any, Any]:
    """The smallest and largest threshold of ``frame`` (None without one)."""
    if frame.height == 0:
        return None, None
    row = frame.select(
        pl.col(THRESHOLD).min().alias("smallest"), pl.col(THRESHOLD).max().alias("most")
    ).row(0)
    return row[0], row[1]


def _least(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _most(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


class TimeGateOperator(Operator[TimeGateNode]):
    """The gates. A step is two halves, so that several workers can share a gate (see
    ``engine.workers.placement``): :meth:`prepare` does what needs only this worker's rows and
    the frontier of the earlier times, and returns a :class:`GateSummary`; :meth:`conclude`
    gets every worker's summary, advances the frontier to the largest event time of the whole
    input and finishes the step with it. One worker does both at once (:meth:`step`).

    With an instance, each worker holds every row of the instances it owns, so their
    frontiers and what is held or forgotten are its own; the summaries only make the workers
    agree on the times the gate asks for (marked forgetting's odd time, the final time for
    held rows), which must be those of one worker."""

    def __init__(self, node: TimeGateNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.kind = node.kind
        self.marked = node.mark_forgetting_records
        self.frontier: _Frontier = _Frontier(node.has_instance)
        self.names = [ID, *node.columns]
        self.extra = [THRESHOLD, EVENT_TIME, *([INSTANCE] if node.has_instance else [])]
        # buffer: held changes; forget: live rows (both with the extra columns)
        self.state: pl.DataFrame | None = None
        # Of the rows in ``state``: buffer, the exact smallest and largest threshold; forget,
        # a lower bound of the thresholds.
        self.smallest_threshold: Any = None
        self.largest_threshold: Any = None
        self.holding = False  # buffer: whether rows are held (on any worker)
        self.requested_time: int | None = None  # forget: the odd time of marked retractions
        self._marked: pl.DataFrame | None = None
        self._prepared: Any = None  # what ``prepare`` left for ``conclude``

    # --- the runtime's hooks -----------------------------------------------------------------
    def inputs_finished(self, final_time: int) -> bool:
        """Buffered rows go out when the inputs end (asked for the final time)."""
        if self.kind == "buffer" and self.holding:
            self.requested_time = final_time
            return True
        return False

    def state_rows(self) -> int:
        """Rows held in memory (for tests of bounded state)."""
        return 0 if self.state is None else self.state.height

    # --- step ------------------------------------------------------------------------------
    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        summary = self.prepare(time, delta) if delta is not None and delta.height else GateSummary()
        return self.conclude(time, [summary])

    def prepare(self, time: int, delta: Delta) -> GateSummary:
        """The first half of a step over this worker's rows ``delta`` (perhaps none while
        other workers have some): what can be decided with the frontier of the earlier times.
        Changes no state; :meth:`conclude` follows with every worker's summary."""
        rows = 0 if delta is None else delta.height
        if self.kind == "buffer" and time >= FINAL_TIME:
            self._prepared = delta
            return GateSummary(rows)
        frame = (
            run_projection(self.pre, delta, keep=delta.columns)
            if delta is not None and rows
            else None
        )
        latest = None if frame is None else frame[EVENT_TIME].max()
        if self.kind == "freeze":
            self._prepared = frame
            return GateSummary(rows, latest)
        if self.kind == "buffer":
            return self._prepare_buffer(frame, rows, latest)
        return self._prepare_forget(frame, rows, latest)

    def conclude(self, time: int, summaries: Sequence[GateSummary]) -> Delta:
        """The second half of the step at ``time``, with the summaries of every worker's
        share (this worker's among them)."""
        prepared, self._prepared = self._prepared, None
        total = combine_summaries(summaries)
        if self.kind == "buffer" and time >= FINAL_TIME:
            # The inputs have ended: event time is over, everything held goes out, and so
            # does what comes now (from buffers upstream).
            self.requested_time = None
            self.holding = False
            held, self.state = self.state, None
            parts = [p for p in (held, prepared) if p is not None and p.height]
            parts = [p.select([*self.names, DIFF]) for p in parts]
            return self._output(pl.concat(parts, how="vertical_relaxed") if parts else None)
        marked = None
        if self.requested_time == time:
            self.requested_time = None
            marked, self._marked = self._marked, None
        if total.rows == 0:  # no rows on any worker: the gate does not step
            return self._output(marked)
        if self.kind == "freeze":
            out = self._freeze(prepared, total)
        elif self.kind == "buffer":
            out = self._buffer(prepared, total)
        else:
            out = self._forget(time, prepared, total)
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

    def _advance(self, total: GateSummary, frame: pl.DataFrame | None) -> None:
        """The frontier past this time: the whole input's latest event time (per instance,
        from this worker's rows: each instance's rows are all on one worker)."""
        if self.frontier.has_instance:
            if frame is not None:
                self.frontier.advance(frame)
        else:
            self.frontier.advance_to(total.latest)

    def _freeze(self, frame: pl.DataFrame | None, total: GateSummary) -> Delta:
        if frame is None:
            self._advance(total, None)
            return None
        frame = self.frontier.attach(frame)
        kept = frame.filter(~_at_or_below(pl.col(THRESHOLD), pl.col(FRONTIER)))
        self._advance(total, frame)
        if kept.height == frame.height:
            return frame.select([*self.names, DIFF])
        return kept.select([*self.names, DIFF]) if kept.height else None

    def _prepare_buffer(self, frame: pl.DataFrame | None, rows: int, latest: Any) -> GateSummary:
        held = self.state if self.state is not None and self.state.height else None
        smallest, most = (
            (None, None)
            if held is None
            else (
                self.smallest_threshold,
                self.largest_threshold,
            )
        )
        passing = None  # changes without a threshold: no frontier holds them back
        if frame is not None:
            fresh = frame.select([*self.names, DIFF, *self.extra])
            if fresh[THRESHOLD].null_count():
                passing = fresh.filter(pl.col(THRESHOLD).is_null())
                fresh = fresh.filter(pl.col(THRESHOLD).is_not_null())
            if held is None:
                held = fresh if fresh.height else None
                smallest, most = _bounds(fresh)
            elif fresh.height:
                held = pl.concat([held, fresh], how="vertical_relaxed")
                if (fresh[DIFF] < 0).any():  # a deletion may cancel a held insertion
                    held = consolidate(held)
                    smallest, most = _bounds(held)
                else:
                    low, high = _bounds(fresh)
                    smallest, most = _least(smallest, low), _most(most, high)
        if not self.frontier.has_instance:
            self._prepared = (frame, passing, held, smallest, most)
            return GateSummary(rows, latest, smallest, most, 0 if held is None else held.height)
        # With an instance the frontiers of the held rows are this worker's: the rows let out
        # are decided here (the frontier advanced in a copy, which ``conclude`` takes), and
        # the summary tells how many stay held.
        ahead = copy.copy(self.frontier)
        if frame is not None:
            ahead.advance(frame)  # held rows are let out by the frontier including this time
        released, held, smallest, most = _release(held, ahead, smallest, most)
        self._prepared = (ahead, _joined(passing, released), held, smallest, most)
        return GateSummary(rows, latest, smallest, most, 0 if held is None else held.height)

    def _buffer(self, prepared: Any, total: GateSummary) -> Delta:
        if self.frontier.has_instance:
            self.frontier, released, held, smallest, most = prepared
            self.holding = total.held > 0  # rows held on any worker wait for the final time
        else:
            frame, passing, held, smallest, most = prepared
            self._advance(total, frame)  # held rows go out by the frontier including this time
            largest = self.frontier.largest()
            if total.smallest is None or largest is None or total.smallest > largest:
                released = None
                self.holding = total.held > 0
            else:  # the rows left anywhere are those whose threshold the frontier passed
                released, held, smallest, most = _release(held, self.frontier, smallest, most)
                self.holding = total.most is not None and total.most > largest
            released = _joined(passing, released)
        self.state, self.smallest_threshold, self.largest_threshold = _compact(held), smallest, most
        return self._output(released)

    def _prepare_forget(self, frame: pl.DataFrame | None, rows: int, latest: Any) -> GateSummary:
        live = self.state
        smallest = self.smallest_threshold
        passed = None
        if frame is not None:
            frame = self.frontier.attach(frame)
            late = _at_or_below(pl.col(THRESHOLD), pl.col(FRONTIER))
            inserted = frame.filter(pl.col(DIFF) > 0)
            if not self.marked:  # a late insertion would be forgotten at once: never let in
                inserted = inserted.filter(~late)
            deleted = frame.filter(pl.col(DIFF) < 0)
            if deleted.height:
                # Only deletions of rows still live pass (the others were forgotten or
                # dropped). Rows are matched by id and threshold: a row in several windows
                # has one id.
                if live is None or live.height == 0:
                    deleted = deleted.clear()
                else:
                    match = [ID, THRESHOLD]
                    deleted = deleted.join(
                        live.select(match), on=match, how="semi", nulls_equal=True
                    )
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
                smallest = _least(smallest, fresh[THRESHOLD].min())
        forgotten = None
        largest = self.frontier.largest()  # of the earlier times
        if (
            live is not None
            and live.height
            and largest is not None
            and smallest is not None
            and smallest <= largest
        ):
            live = self.frontier.attach(live)
            expired = _at_or_below(pl.col(THRESHOLD), pl.col(FRONTIER))
            forgotten = (
                live.filter(expired)
                .drop(FRONTIER)
                .with_columns(pl.lit(-1, dtype=pl.Int64).alias(DIFF))
            )
            live = live.filter(~expired).drop(FRONTIER)
            smallest = live[THRESHOLD].min() if live.height else None
        self._prepared = (frame, passed, live, smallest, forgotten)
        forgot = forgotten is not None and forgotten.height > 0
        return GateSummary(rows, latest, forgot=forgot)

    def _forget(self, time: int, prepared: Any, total: GateSummary) -> Delta:
        frame, passed, live, smallest, forgotten = prepared
        self.state, self.smallest_threshold = _compact(live), smallest
        self._advance(total, frame)
        if self.marked:
            if total.forgot:  # forgotten on some worker: every worker marks at the odd time
                self._marked = forgotten
                self.requested_time = time + 1
        elif forgotten is not None and forgotten.height:
            passed = (
                forgotten
                if passed is None
                else pl.concat([passed, forgotten], how="vertical_relaxed")
            )
        return self._output(passed)


def _release(
    held: pl.DataFrame | None, frontier: _Frontier, smallest: Any, most: Any
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, Any, Any]:
    """The rows of ``held`` (whose thresholds are between ``smallest`` and ``most``) that
    ``frontier`` lets out, and those it keeps (None: none), with the smallest and largest
    threshold of the kept ones."""
    largest = frontier.largest()
    if held is None or smallest is None or largest is None or smallest > largest:
        return None, held, smallest, most
    held = frontier.attach(held)
    due = _at_or_below(pl.col(THRESHOLD), pl.col(FRONTIER))
    released = held.filter(due).drop(FRONTIER)
    kept = held.filter(~due).drop(FRONTIER)
    if kept.height == 0:
        return released, None, None, None
    return released, kept, *_bounds(kept)


def _joined(first: pl.DataFrame | None, second: pl.DataFrame | None) -> pl.DataFrame | None:
    """The rows of both frames (None: none)."""
    if first is None or first.height == 0:
        return second
    if second is None or second.height == 0:
        return first
    return pl.concat([first, second], how="vertical_relaxed")


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
