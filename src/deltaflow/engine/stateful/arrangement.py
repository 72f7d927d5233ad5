"""Arrangements: the current contents of an operator's input, indexed by a key.

An :class:`Arrangement` stores delta rows (with ``_diff``) in *runs*: Polars frames sorted by a
64-bit key hash ``_kh``. New deltas become small runs; two neighbouring runs of similar size are
merged (and their cancelling rows dropped), so there are O(log n) runs and a row is re-merged
O(log n) times, like the spine of Differential Dataflow. Looking up a few keys is a binary search
in each run, so it costs what the delta costs, not what the state holds; looking up many keys
(a big batch) is a semi-join.

The key hash is Polars' row hash: it only has to agree within one process. Operators that need
exact key equality join on the key columns as well (see :func:`add_key_columns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID

KH = "_kh"
TIME = "__time"
_SEED = 0x5EED


def constant_ids(count: int) -> pl.Series:
    """``count`` copies of the id of the empty key (a reduce without groupby columns)."""
    from deltaflow._ids import hash_columns

    value = hash_columns(pl.DataFrame({"_": [0]}), [])[0]
    return pl.Series(ID, [value] * count, dtype=pl.UInt128)


def surrogate_name(column: str) -> str:
    return f"__ks_{column}"


def add_key_columns(frame: pl.DataFrame, keys: Sequence[str]) -> tuple[pl.DataFrame, list[str]]:
    """Add ``_kh`` (hash of the ``keys`` columns) and return the columns that identify a key.

    Python-object columns cannot be hashed or joined by Polars, so they get a text surrogate
    (the canonical repr of each value) which stands in for them in hashing and joins.
    """
    match: list[str] = []
    extra: list[pl.Series] = []
    for key in keys:
        if frame.schema[key] == pl.Object:
            name = surrogate_name(key)
            extra.append(pl.Series(name, [repr(t.canonical_key(v)) for v in frame[key].to_list()],
                                   dtype=pl.String))
            match.append(name)
        else:
            match.append(key)
    if extra:
        frame = frame.with_columns(extra)
    if match:
        hashed = pl.struct(match).hash(_SEED) if frame.height else pl.lit(0, dtype=pl.UInt64)
    else:
        hashed = pl.lit(0, dtype=pl.UInt64)
    frame = frame.with_columns(hashed.cast(pl.UInt64).alias(KH))
    return frame, [KH, *match]


def consolidate_rows(frame: pl.DataFrame, ignore: Sequence[str] = ()) -> pl.DataFrame:
    """Sum the diffs of equal rows and drop the ones that cancel out.

    Columns in ``ignore`` (e.g. the insertion time) do not take part in equality; the smallest
    of their values is kept.
    """
    if frame.height <= 1:
        return frame.filter(pl.col(DIFF) != 0) if frame.height else frame
    if ID in frame.columns and frame[ID].n_unique() == frame.height:
        return frame.filter(pl.col(DIFF) != 0)
    ignored = [c for c in ignore if c in frame.columns]
    if frame.height <= 64 and not ignored:
        return _consolidate_small(frame)
    names = [c for c in frame.columns if c != DIFF and c not in ignored]
    objects = [c for c in names if frame.schema[c] == pl.Object]
    work = frame.with_row_index("__row")
    keys = [c for c in names if c not in objects]
    if objects:
        work = work.with_columns([
            pl.Series(f"__obj_{c}", [repr(t.canonical_key(v)) for v in frame[c].to_list()],
                      dtype=pl.String) for c in objects
        ])
        keys += [f"__obj_{c}" for c in objects]
    aggs = [pl.col("__row").first(), pl.col(DIFF).sum()]
    aggs += [pl.col(c).min().alias(f"__min_{c}") for c in ignored]
    summed = work.group_by(keys, maintain_order=True).agg(aggs).filter(pl.col(DIFF) != 0)
    rows = frame.drop(DIFF)[summed["__row"]]
    rows = rows.with_columns(summed[DIFF].alias(DIFF),
                             *[summed[f"__min_{c}"].alias(c) for c in ignored])
    return rows.select(frame.columns)


def _consolidate_small(frame: pl.DataFrame) -> pl.DataFrame:
    """``consolidate_rows`` for a few rows: in Python, saving several Polars calls."""
    objects = any(dtype == pl.Object for dtype in frame.schema.values())
    diffs = frame[DIFF].to_list()
    first: dict[Any, int] = {}
    totals: list[int] = []
    keep: list[int] = []
    for index, row in enumerate(frame.drop(DIFF).iter_rows()):
        key = tuple(t.canonical_key(v) for v in row) if objects else row
        slot = first.get(key)
        if slot is None:
            first[key] = len(keep)
            keep.append(index)
            totals.append(diffs[index])
        else:
            totals[slot] += diffs[index]
    chosen = [i for i, total in zip(keep, totals, strict=True) if total != 0]
    sums = [total for total in totals if total != 0]
    if len(chosen) == frame.height:
        return frame
    return frame[chosen].with_columns(pl.Series(DIFF, sums, dtype=pl.Int64))


class Arrangement:
    """Delta rows indexed by ``_kh``; ``lookup`` returns the consolidated rows of some keys."""

    def __init__(self, ignore: Sequence[str] = ()) -> None:
        self.runs: list[pl.DataFrame] = []
        self.sorted: list[bool] = []  # runs are sorted on first binary search (static runs never)
        self.ignore = tuple(ignore)

    @property
    def size(self) -> int:
        return sum(run.height for run in self.runs)

    def insert(self, frame: pl.DataFrame) -> None:
        """Add delta rows (which must carry ``_kh`` and ``_diff``)."""
        if frame.height == 0:
            return
        self.runs.append(frame)
        self.sorted.append(False)
        while len(self.runs) >= 2 and self.runs[-2].height <= 2 * self.runs[-1].height:
            newer = self.runs.pop()
            older = self.runs.pop()
            del self.sorted[-2:]
            merged = consolidate_rows(pl.concat([older, newer], how="vertical_relaxed"),
                                      self.ignore)
            if merged.height:
                self.runs.append(merged)
                self.sorted.append(False)

    def lookup(self, keys: pl.Series) -> pl.DataFrame | None:
        """Consolidated rows whose ``_kh`` is in ``keys`` (None when there are none)."""
        if not self.runs or keys.len() == 0:
            return None
        keys = keys.unique().sort()
        parts: list[pl.DataFrame] = []
        key_frame: pl.DataFrame | None = None
        for index, run in enumerate(self.runs):
            if keys.len() * 32 < run.height:
                if not self.sorted[index]:
                    run = self.runs[index] = run.sort(KH)
                    self.sorted[index] = True
                part = _ranges(run, keys)
            else:
                if key_frame is None:
                    key_frame = keys.alias(KH).to_frame()
                part = run.join(key_frame, on=KH, how="semi")
            if part.height:
                parts.append(part)
        if not parts:
            return None
        found = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")
        if len(parts) > 1:
            found = consolidate_rows(found, self.ignore)
        return found if found.height else None

    def contents(self) -> pl.DataFrame | None:
        """Every row (consolidated); for tests and debugging."""
        if not self.runs:
            return None
        return consolidate_rows(pl.concat(self.runs, how="vertical_relaxed"), self.ignore)


def _ranges(run: pl.DataFrame, keys: pl.Series) -> pl.DataFrame:
    column = run[KH]
    lo = column.search_sorted(keys, side="left").to_numpy()
    hi = column.search_sorted(keys, side="right").to_numpy()
    if len(lo) == 1:
        return run.slice(int(lo[0]), int(hi[0] - lo[0]))
    lengths = hi - lo
    total = int(lengths.sum())
    if total == 0:
        return run.clear()
    starts = np.repeat(lo, lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return run[pl.Series(starts + offsets, dtype=pl.Int64)]
