"""Ordered neighbours: for every row, the ids of the rows around it in key order.

This is the engine part of ``pw.stdlib.ordered.diff`` and ``pw.stdlib.statistical.interpolate``.
Rows are ordered by ``(key, id)`` within their instance. Two questions are answered:

* ``ADJACENT``: the row just before and just after (what ``Table.sort`` gives as ``prev`` and
  ``next``), used by ``diff``;
* ``NEAREST_ANCHOR``: the nearest *anchor* row at or before, and at or after, each row (an anchor
  is a row whose ``__anchor`` column is true; an anchor is its own neighbour), used by
  ``interpolate``, where the anchors are the rows holding a value.

Two paths give identical results. Big deltas (static data, large commits) recompute the links
of the whole state with a few Polars calls (a sort and shifts or forward fills) and emit the
rows whose links changed. Small deltas update per-instance sorted Python lists and touch only
the rows between the anchors around each change. The state lives in whichever form the last
path used and is converted when the path changes, so a static run never builds Python
structures at all.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow._small_frames import NUMBER_TYPES
from deltaflow.engine.batch import DIFF, ID, consolidate, mark_distinct_ids
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.runtime import register_operator
from deltaflow.engine.stateful.ordering import links_delta
from deltaflow.plan import Node

KEY = "__key"
INSTANCE = "__inst"
ANCHOR = "__anchor"
PREV = "prev"
NEXT = "next"
#: Deltas of at least this many rows take the Polars path.
BIG_DELTA = 2_000
#: Polars types the Polars path can sort and compare exactly as the Python path does.
_SORTABLE = frozenset(
    [
        *NUMBER_TYPES,
        pl.UInt128,
        pl.String,
        pl.Boolean,
        pl.Binary,
        pl.Null,
    ]
)

Entry = tuple[Any, int]  # (sortable key, row id)


class NeighbourMode(enum.Enum):
    """Which neighbours a :class:`NeighboursNode` links each row to."""

    ADJACENT = "adjacent"
    NEAREST_ANCHOR = "nearest_anchor"


@dataclass(eq=False)
class NeighboursNode(Node):
    """``prev``/``next`` pointers of every row (same ids as the input)."""

    pre: Any = None  # CompiledProjection: __key, optional __inst, optional __anchor
    mode: NeighbourMode = NeighbourMode.ADJACENT


def _physical_dtype(dtype: t.DType) -> pl.DataType:
    """The Polars type of a key column as the state keeps it (see :func:`_physical`)."""
    polars_type = dtype.to_polars()
    if isinstance(polars_type, pl.Datetime | pl.Duration):
        return pl.Int64()
    return polars_type


def _physical(series: pl.Series, dtype: pl.DataType) -> pl.Series:
    """A column in a form that sorts like the values and survives Python round trips:
    datetimes and durations as their integer nanoseconds."""
    if isinstance(series.dtype, pl.Datetime):
        return series.dt.epoch("ns")
    if isinstance(series.dtype, pl.Duration):
        return series.cast(pl.Int64)
    if series.dtype != dtype and dtype != pl.Object:
        return series.cast(dtype)
    return series


class _PythonState:
    """Sorted entries per instance, the anchors among them and every row's current links."""

    def __init__(self, mode: NeighbourMode, optional_key: bool) -> None:
        self.mode = mode
        self.optional_key = optional_key
        self.entries: dict[Any, list[Entry]] = {}
        self.anchors: dict[Any, list[Entry]] = {}
        # id -> (instance key, raw instance value, entry, is anchor)
        self.where: dict[int, tuple[Any, Any, Entry, bool]] = {}
        self.links: dict[int, tuple[int | None, int | None]] = {}

    def wrap_key(self, key: Any) -> Any:
        if not self.optional_key:
            return key
        return (0, 0) if key is None else (1, key)

    def unwrap_key(self, key: Any) -> Any:
        if not self.optional_key:
            return key
        return None if key[0] == 0 else key[1]

    def _anchor_list(self, instance: Any) -> list[Entry]:
        if self.mode is NeighbourMode.ADJACENT:
            return self.entries.get(instance, [])
        return self.anchors.get(instance, [])

    def links_of(self, row_id: int) -> tuple[int | None, int | None]:
        instance, _, entry, is_anchor = self.where[row_id]
        anchors = self._anchor_list(instance)
        if self.mode is NeighbourMode.NEAREST_ANCHOR and is_anchor:
            return row_id, row_id
        low = bisect.bisect_left(anchors, entry)
        high = bisect.bisect_right(anchors, entry)
        prev = anchors[low - 1][1] if low > 0 else None
        nxt = anchors[high][1] if high < len(anchors) else None
        return prev, nxt

    def span(self, instance: Any, entry: Entry) -> list[int]:
        """Ids of the rows from the anchor before ``entry`` to the anchor after it (both
        included): the rows whose links a change of an anchor at ``entry`` can move."""
        anchors = self._anchor_list(instance)
        entries = self.entries.get(instance, [])
        low = bisect.bisect_left(anchors, entry)
        high = bisect.bisect_right(anchors, entry)
        start = bisect.bisect_left(entries, anchors[low - 1]) if low > 0 else 0
        stop = bisect.bisect_right(entries, anchors[high]) if high < len(anchors) else len(entries)
        return [row_id for _, row_id in entries[start:stop]]

    def remove(self, row_id: int, affected: set[int]) -> None:
        placed = self.where.get(row_id)
        if placed is None:
            return
        instance, _, entry, is_anchor = placed
        affected.add(row_id)
        if is_anchor:
            affected.update(self.span(instance, entry))
        entries = self.entries[instance]
        del entries[bisect.bisect_left(entries, entry)]
        if is_anchor and self.mode is NeighbourMode.NEAREST_ANCHOR:
            anchors = self.anchors[instance]
            del anchors[bisect.bisect_left(anchors, entry)]
            if not anchors:
                del self.anchors[instance]
        if not entries:
            del self.entries[instance]
        del self.where[row_id]

    def insert(
        self,
        row_id: int,
        instance: Any,
        raw_instance: Any,
        key: Any,
        is_anchor: bool,
        affected: set[int],
    ) -> None:
        entry = (key, row_id)
        bisect.insort(self.entries.setdefault(instance, []), entry)
        if is_anchor and self.mode is NeighbourMode.NEAREST_ANCHOR:
            bisect.insort(self.anchors.setdefault(instance, []), entry)
        self.where[row_id] = (instance, raw_instance, entry, is_anchor)
        affected.add(row_id)
        if is_anchor:
            affected.update(self.span(instance, entry))


class NeighboursOperator(Operator[NeighboursNode]):
    """Runs a :class:`NeighboursNode`; see the module docstring for the two paths."""

    def __init__(self, node: NeighboursNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.mode = node.mode
        self.has_instance = INSTANCE in node.pre.types
        self.has_anchor = ANCHOR in node.pre.types
        key_type = node.pre.types[KEY]
        self.optional_key = isinstance(key_type, t.Optional) or key_type == t.ANY
        self.frame: pl.DataFrame | None = None  # the Polars form of the state
        self.python: _PythonState | None = None  # the Python form of the state
        self._key_dtype = _physical_dtype(key_type)
        self._instance_dtype = (
            _physical_dtype(node.pre.types[INSTANCE]) if self.has_instance else pl.Null()
        )
        # Whether the key/instance types allow the Polars path at all.
        self._columnar = self._key_dtype.base_type() in _SORTABLE and (
            not self.has_instance or self._instance_dtype.base_type() in _SORTABLE
        )

    # --- the step ------------------------------------------------------------------------
    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        frame = self._prepare(delta)
        if self._columnar and frame.height >= BIG_DELTA:
            return self._step_columnar(frame)
        return self._step_python(frame)

    def _prepare(self, delta: pl.DataFrame) -> pl.DataFrame:
        frame = self.pre.run(delta, keep=[ID, DIFF])
        columns = [frame[ID], _physical(frame[KEY], self._key_dtype)]
        if self.has_instance:
            columns.append(_physical(frame[INSTANCE], self._instance_dtype))
        if self.has_anchor:
            columns.append(frame[ANCHOR].fill_null(False))
        columns.append(frame[DIFF])
        return pl.DataFrame(columns)

    # --- Polars path ---------------------------------------------------------------------
    def _rows_frame(self) -> pl.DataFrame | None:
        """The state as a frame of rows with their current links (converted if needed)."""
        if self.python is not None:
            self.frame = self._frame_from_python(self.python)
            self.python = None
        return self.frame

    def _step_columnar(self, frame: pl.DataFrame) -> Delta:
        old = self._rows_frame()
        row_columns = [c for c in frame.columns if c != DIFF]
        removed = frame.filter(pl.col(DIFF) < 0).select(ID)
        added = frame.filter(pl.col(DIFF) > 0).select(row_columns)
        if old is None:
            rows = added
        else:
            kept = old.select(row_columns).join(removed, on=ID, how="anti")
            rows = pl.concat([kept, added], how="vertical_relaxed") if added.height else kept
        new = self._links(rows)
        self.frame = new if new.height else None
        if old is None:
            out = new.select(ID, PREV, NEXT).with_columns(pl.lit(1, pl.Int64).alias(DIFF))
            return mark_distinct_ids(out) if out.height else None
        old_links = old.select(ID, PREV, NEXT, pl.lit(True).alias("__old"))
        new_links = new.select(ID, PREV, NEXT, pl.lit(True).alias("__new"))
        both = old_links.join(new_links, on=ID, how="full", suffix="_new", coalesce=True)
        changed = both.filter(
            pl.col("__old").is_null()
            | pl.col("__new").is_null()
            | pl.col(PREV).ne_missing(pl.col(PREV + "_new"))
            | pl.col(NEXT).ne_missing(pl.col(NEXT + "_new"))
        )
        if changed.height == 0:
            return None
        retract = changed.filter(pl.col("__old").is_not_null()).select(
            ID, PREV, NEXT, pl.lit(-1, pl.Int64).alias(DIFF)
        )
        insert = changed.filter(pl.col("__new").is_not_null()).select(
            ID,
            pl.col(PREV + "_new").alias(PREV),
            pl.col(NEXT + "_new").alias(NEXT),
            pl.lit(1, pl.Int64).alias(DIFF),
        )
        return consolidate(pl.concat([retract, insert]))

    def _links(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Every row of ``rows`` with its ``prev``/``next`` links, computed from scratch."""
        order = [INSTANCE, KEY, ID] if self.has_instance else [KEY, ID]
        ordered = rows.sort(order, nulls_last=False)
        same_as_before = (
            pl.col(INSTANCE).eq_missing(pl.col(INSTANCE).shift(1))
            if self.has_instance
            else pl.lit(True)
        )
        same_as_after = (
            pl.col(INSTANCE).eq_missing(pl.col(INSTANCE).shift(-1))
            if self.has_instance
            else pl.lit(True)
        )
        if self.mode is NeighbourMode.ADJACENT:
            return ordered.with_columns(
                pl.when(same_as_before).then(pl.col(ID).shift(1)).alias(PREV),
                pl.when(same_as_after).then(pl.col(ID).shift(-1)).alias(NEXT),
            )
        anchor_id = pl.when(pl.col(ANCHOR)).then(pl.col(ID))
        if not self.has_instance:
            return ordered.with_columns(
                anchor_id.forward_fill().alias(PREV), anchor_id.backward_fill().alias(NEXT)
            )
        group = (~same_as_before).cum_sum().alias("__group")
        return (
            ordered.with_columns(group)
            .with_columns(
                anchor_id.forward_fill().over("__group").alias(PREV),
                anchor_id.backward_fill().over("__group").alias(NEXT),
            )
            .drop("__group")
        )

    def _frame_from_python(self, state: _PythonState) -> pl.DataFrame | None:
        if not state.where:
            return None
        ids = list(state.where)
        placed = [state.where[i] for i in ids]
        links = [state.links[i] for i in ids]
        data: dict[str, pl.Series] = {
            ID: pl.Series(ID, ids, dtype=pl.UInt128),
            KEY: pl.Series(KEY, [state.unwrap_key(p[2][0]) for p in placed], dtype=self._key_dtype),
        }
        if self.has_instance:
            data[INSTANCE] = pl.Series(INSTANCE, [p[1] for p in placed], dtype=self._instance_dtype)
        if self.has_anchor:
            data[ANCHOR] = pl.Series(ANCHOR, [p[3] for p in placed], dtype=pl.Boolean)
        data[PREV] = pl.Series(PREV, [link[0] for link in links], dtype=pl.UInt128)
        data[NEXT] = pl.Series(NEXT, [link[1] for link in links], dtype=pl.UInt128)
        return pl.DataFrame(data)

    # --- Python path ---------------------------------------------------------------------
    def _python_state(self) -> _PythonState:
        if self.python is None:
            self.python = _PythonState(self.mode, self.optional_key)
            if self.frame is not None:
                self._fill_python(self.python, self.frame)
                self.frame = None
        return self.python

    def _fill_python(self, state: _PythonState, frame: pl.DataFrame) -> None:
        order = [INSTANCE, KEY, ID] if self.has_instance else [KEY, ID]
        frame = frame.sort(order, nulls_last=False)
        ids = frame[ID].to_list()
        keys = [state.wrap_key(k) for k in frame[KEY].to_list()]
        raw = frame[INSTANCE].to_list() if self.has_instance else [None] * len(ids)
        anchors = frame[ANCHOR].to_list() if self.has_anchor else [True] * len(ids)
        for row_id, key, instance, is_anchor, prev, nxt in zip(
            ids, keys, raw, anchors, frame[PREV].to_list(), frame[NEXT].to_list(), strict=True
        ):
            entry = (key, row_id)
            # Rows come in (instance, key, id) order, so appending keeps every list sorted.
            state.entries.setdefault(instance, []).append(entry)
            if is_anchor and self.mode is NeighbourMode.NEAREST_ANCHOR:
                state.anchors.setdefault(instance, []).append(entry)
            state.where[row_id] = (instance, instance, entry, is_anchor)
            state.links[row_id] = (prev, nxt)

    def _step_python(self, frame: pl.DataFrame) -> Delta:
        state = self._python_state()
        ids = frame[ID].to_list()
        keys = (
            frame[KEY].to_list()
            if frame[KEY].dtype != pl.Object
            else t.values_from_series(frame[KEY])
        )
        raw = (
            (
                t.values_from_series(frame[INSTANCE])
                if frame[INSTANCE].dtype == pl.Object
                else frame[INSTANCE].to_list()
            )
            if self.has_instance
            else [None] * len(ids)
        )
        anchors = frame[ANCHOR].to_list() if self.has_anchor else [True] * len(ids)
        diffs = frame[DIFF].to_list()
        affected: set[int] = set()
        # Deletions first, so that an update (delete + insert of one id) moves the row.
        for i in sorted(range(len(ids)), key=lambda i: diffs[i] > 0):
            if diffs[i] < 0:
                state.remove(ids[i], affected)
            else:
                state.insert(
                    ids[i],
                    t.canonical_key(raw[i]),
                    raw[i],
                    state.wrap_key(keys[i]),
                    bool(anchors[i]),
                    affected,
                )
        return links_delta(
            affected,
            state.links,
            lambda row_id: state.links_of(row_id) if row_id in state.where else None,
        )


register_operator(NeighboursNode, NeighboursOperator)
