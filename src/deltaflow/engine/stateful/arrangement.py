"""Arrangements: the current contents of an operator's input, indexed by a key.

An :class:`Arrangement` stores delta rows (with ``_diff``) in *runs*: Polars frames sorted by a
64-bit key hash ``_kh``. New deltas become small runs; two neighbouring runs of similar size are
merged (and their cancelling rows dropped), so there are O(log n) runs and a row is re-merged
O(log n) times, like the spine of Differential Dataflow. Looking up a few keys is a binary search
in each run, so it costs what the delta costs, not what the state holds; looking up many keys
(a big batch) is a semi-join.

How keys hash is in :mod:`.keys`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import polars as pl

from deltaflow.engine.batch import (
    DIFF,
    ID,
    consolidate_rows,
    python_exact,
    row_key_function,
    stack,
)
from deltaflow.engine.stateful.keys import KH

SMALL_INSERT = 512  # inserts of at most this many rows go to the Python tail first
TAIL_ROWS = 4096  # the tail becomes a run when it holds this many rows
#: Pending frames are stacked into one whenever this many wait: the work of turning the
#: pending frames into a run is spread over the inserts instead of landing on one of them.
PENDING_FRAMES = 8
_SCAN_ROWS = 2048  # unsorted runs up to this size are scanned rather than sorted
#: A run of at most this many rows that keeps being looked up (the static side of a lookup
#: join, a group state) keeps its rows as Python tuples too: taking a few rows is then a list
#: index instead of a Polars gather and conversion (hundreds of microseconds on a cold cache).
_TUPLE_RUN_ROWS = 32_768
#: Up to this many rows are taken from a run one ``row()`` at a time: a gather builds an index
#: Series and a frame first (~35 us at 3 rows, against ~2 us row by row; even at ~64 rows).
_ROW_BY_ROW = 64
#: Lookups of a run before its tuples are kept: at least 4, and one per 512 rows, so that a run
#: replaced soon (by a merge) is never converted, and a conversion (about a microsecond a row)
#: costs less than the gathers it saves.
_TUPLES_AFTER_LOOKUPS = 4
#: Merges of at least this many rows run on a background thread (Polars releases the GIL while
#: it concatenates and consolidates), so a small update never waits for a big merge.
BACKGROUND_MERGE_ROWS = 16_384
_MERGER: ThreadPoolExecutor | None = None
_MERGER_LOCK = threading.Lock()


def _merger() -> ThreadPoolExecutor:
    """The one thread that runs big merges, started on first need."""
    global _MERGER
    with _MERGER_LOCK:
        if _MERGER is None:
            _MERGER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deltaflow-merge")
        return _MERGER


def _forget_merger() -> None:
    """A forked child has no merge thread: it starts its own when needed."""
    global _MERGER
    _MERGER = None


os.register_at_fork(after_in_child=_forget_merger)


class Arrangement:
    """Delta rows indexed by ``_kh``; ``lookup`` returns the consolidated rows of some keys.

    Small inserts (the per-time deltas of a stream) do not become runs at once: their rows go
    to a Python *tail*, a dict from key hash to (consolidated) row tuples, so that
    :meth:`lookup_rows` can answer for a few keys without any Polars call, and a retraction of
    a row still in the tail cancels it there. The tail becomes one run when it holds
    ``TAIL_ROWS`` rows or when a big-batch operation (:meth:`lookup`, :meth:`contents`, a big
    insert) needs every row in runs.
    """

    def __init__(
        self, ignore: Sequence[str] = (), *, index_eagerly: bool = False, id_column: str = ID
    ) -> None:
        """``index_eagerly``: put small inserts in the tail at once (for state whose rows are
        mostly replaced, such as one row per group: retractions then cancel in the tail
        instead of piling up until a flush consolidates them). ``id_column``: the column of
        the rows' ids (see :func:`consolidate_rows`)."""
        self.index_eagerly = index_eagerly
        self.id_column = id_column
        self.runs: list[pl.DataFrame] = []
        self.sorted: list[bool] = []  # runs are sorted on first binary search (static runs never)
        self._keys: list[np.ndarray | None] = []  # the ``_kh`` values of a run, once needed
        self._inserts_only: list[bool] = []  # a run without deletions
        self._clean: list[bool] = []  # a consolidated run (each row once)
        self.ignore = tuple(ignore)
        self.columns: list[str] | None = None
        self._schema: dict[str, pl.DataType] = {}
        # key hash -> {row key -> row}: rows of one key hash, consolidated as they arrive.
        self._tail: dict[int, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
        # The frames the tail's rows came from, while they are still exactly its rows (a flush
        # then concatenates them); None once rows merged in the tail (a flush rebuilds).
        self._tail_frames: list[pl.DataFrame] | None = []
        self._tail_count = 0
        # Small frames inserted but not yet indexed in the tail: indexing waits for the next
        # lookup_rows (an insert-only stream that is never looked up never pays for it).
        self._pending: list[tuple[pl.DataFrame, list[tuple[Any, ...]] | None]] = []
        self._pending_rows = 0
        self._layout: _RowLayout | None = None
        # A big merge of runs ``[i]`` and ``[i + 1]`` in progress on the merge thread: (i, the
        # merge's result). Lookups meanwhile read both runs, which hold the same rows.
        self._merging: tuple[int, Future[tuple[pl.DataFrame, bool]]] | None = None
        # Big runs being sorted on the merge thread (index_eagerly only): (the run, its
        # sorted copy). A point lookup would otherwise sort a run of a big load on the
        # latency path of the first update after it.
        self._sorting: list[tuple[pl.DataFrame, Future[pl.DataFrame]]] = []
        # id(run) -> (the run, its rows as tuples once kept, lookups so far); see _take_rows.
        self._run_tuples: dict[int, tuple[pl.DataFrame, list[tuple[Any, ...]] | None, int]] = {}

    @property
    def size(self) -> int:
        return sum(run.height for run in self.runs) + self._tail_count + self._pending_rows

    def insert(self, frame: pl.DataFrame, rows: list[tuple[Any, ...]] | None = None) -> None:
        """Add delta rows (which must carry ``_kh`` and ``_diff``).

        ``rows`` may give the frame's rows as tuples when the caller has them already.
        """
        if frame.height == 0:
            return
        if self.columns is None:
            self.columns = list(frame.columns)
            self._schema = dict(frame.schema)
            self._layout = _RowLayout(frame.schema, self.ignore)
        elif frame.columns != self.columns:
            frame = frame.select(self.columns)
            rows = None
        layout = self._layout
        assert layout is not None
        if frame.height <= SMALL_INSERT and layout.exact:
            self._pending.append((frame, rows))
            self._pending_rows += frame.height
            if len(self._pending) >= PENDING_FRAMES and not self.index_eagerly:
                self._stack_pending()
            if self.index_eagerly:
                self._index_pending()
            if self._tail_count + self._pending_rows >= TAIL_ROWS:
                self._flush()
            return
        self._flush()
        self._add_run(frame)

    def _to_tail(
        self, frame: pl.DataFrame, rows: list[tuple[Any, ...]], layout: _RowLayout
    ) -> None:
        tail = self._tail
        kh = layout.kh
        key_of = layout.key
        merged = False
        for row in rows:
            bucket = tail.get(row[kh])
            if bucket is None:
                tail[row[kh]] = {key_of(row): row}
                self._tail_count += 1
                continue
            key = key_of(row)
            other = bucket.get(key)
            if other is None:
                bucket[key] = row
                self._tail_count += 1
                continue
            merged = True
            combined = layout.combine(other, row)
            if combined is not None:
                bucket[key] = combined
                continue
            del bucket[key]
            self._tail_count -= 1
            if not bucket:
                del tail[row[kh]]
        if merged:
            self._tail_frames = None
        elif self._tail_frames is not None:
            self._tail_frames.append(frame)

    def _stack_pending(self) -> None:
        """Make the pending frames one (their rows, when known, in the same order)."""
        pending = self._pending
        known = [rows for _, rows in pending]
        combined = (
            None
            if any(rows is None for rows in known)
            else [row for rows in known for row in cast("list[tuple[Any, ...]]", rows)]
        )
        self._pending = [(stack([frame for frame, _ in pending]), combined)]

    def _index_pending(self) -> None:
        layout = self._layout
        assert layout is not None
        pending, self._pending = self._pending, []
        self._pending_rows = 0
        for frame, rows in pending:
            self._to_tail(frame, frame.rows() if rows is None else rows, layout)

    def _flush(self) -> None:
        """Turn the tail into a run."""
        if self._pending:
            if not self._tail:
                # Nothing indexed: the pending frames are the whole tail.
                frames = [frame for frame, _ in self._pending]
                self._pending = []
                self._pending_rows = 0
                self._tail_frames = []
                if len(frames) == 1:
                    self._add_run(frames[0])
                    return
                stacked = stack(frames)
                if not _has_deletions(stacked):
                    self._add_run(stacked, clean=False)
                else:  # frames may cancel each other: a run holds consolidated rows
                    merged = consolidate_rows(stacked, self.ignore, self.id_column)
                    if merged.height:
                        self._add_run(merged)
                return
            self._index_pending()
        if not self._tail:
            self._tail_frames = []
            return
        tail_frames, self._tail_frames = self._tail_frames, []
        tail, self._tail = self._tail, {}
        self._tail_count = 0
        if tail_frames:
            frame = tail_frames[0] if len(tail_frames) == 1 else stack(tail_frames)
        else:
            rows = [row for bucket in tail.values() for row in bucket.values()]
            assert self.columns is not None
            frame = pl.DataFrame(
                [
                    pl.Series(name, list(values), dtype=self._schema[name])
                    for name, values in zip(self.columns, zip(*rows, strict=True), strict=True)
                ]
            )
        self._add_run(frame)

    def _add_run(self, frame: pl.DataFrame, clean: bool = True) -> None:
        """Add a run and merge neighbours of similar size.

        Two runs without deletions cannot cancel each other: their merge is a plain
        concatenation (no consolidation, which costs a pass over both), marked *unclean*
        (equal rows could repeat if a source repeated a row); lookups consolidate what they
        find in unclean runs. Merges of ``BACKGROUND_MERGE_ROWS`` rows or more go to the merge
        thread (one at a time per arrangement): the step that triggered one does not wait.
        """
        self._adopt_merge()
        self.runs.append(frame)
        self.sorted.append(False)
        self._keys.append(None)
        self._inserts_only.append(not _has_deletions(frame))
        self._clean.append(clean)
        if self.index_eagerly and frame.height >= BACKGROUND_MERGE_ROWS:
            self._sorting.append((frame, _merger().submit(frame.sort, KH)))
        self._merge_tail()

    def _adopt_sorts(self, run: pl.DataFrame | None = None) -> None:
        """Put the finished background sorts (and the one of ``run``, waited for unless it
        has not started) in place of their runs; forget those of runs merged meanwhile."""
        waiting = []
        for unsorted, future in self._sorting:
            if unsorted is run and not future.done() and not future.cancel():
                future.result()  # running: it is done sooner than a sort started now
            if future.cancelled():
                continue
            if not future.done():
                waiting.append((unsorted, future))
                continue
            for index, current in enumerate(self.runs):
                if current is unsorted and not self.sorted[index]:
                    self.runs[index] = future.result()
                    self.sorted[index] = True
                    self._keys[index] = None
        self._sorting = [
            (unsorted, future)
            for unsorted, future in waiting
            if any(current is unsorted for current in self.runs)
        ]

    def _merge_tail(self) -> None:
        """Merge the newest runs while the older of the last two is at most twice as big."""
        while len(self.runs) >= 2 and self.runs[-2].height <= 2 * self.runs[-1].height:
            older = len(self.runs) - 2
            if self._merging is not None and self._merging[0] + 1 >= older:
                break  # one of the two is in a merge already: wait for it
            if self.runs[-2].height + self.runs[-1].height >= BACKGROUND_MERGE_ROWS:
                if self._merging is None:
                    self._start_merge(older)
                break
            inserts_only = self._inserts_only[-2] and self._inserts_only[-1]
            merged = _merge_runs(
                self.runs[-2], self.runs[-1], inserts_only, self.ignore, self.id_column
            )
            self._replace_pair(older, merged, inserts_only)

    def _start_merge(self, older: int) -> None:
        inserts_only = self._inserts_only[older] and self._inserts_only[older + 1]
        first, second = self.runs[older], self.runs[older + 1]
        ignore, id_column = self.ignore, self.id_column

        def merge() -> tuple[pl.DataFrame, bool]:
            # Sorted here, off the engine thread: the first lookup would sort it otherwise.
            merged = _merge_runs(first, second, inserts_only, ignore, id_column).sort(KH)
            return merged, inserts_only

        self._merging = (older, _merger().submit(merge))

    def _adopt_merge(self, wait: bool = False) -> None:
        """Put a finished background merge in place of its two runs (``wait``: finish it
        first); then merge further if the sizes ask for it."""
        if self._merging is None:
            return
        older, future = self._merging
        if not wait and not future.done():
            return
        self._merging = None
        merged, inserts_only = future.result()
        self._replace_pair(older, merged, inserts_only, is_sorted=True)
        if (
            older >= 1
            and self.runs
            and older < len(self.runs)
            and self.runs[older - 1].height <= 2 * self.runs[older].height
        ):
            self._start_merge(older - 1)
        else:
            self._merge_tail()

    def _replace_pair(
        self, older: int, merged: pl.DataFrame, inserts_only: bool, is_sorted: bool = False
    ) -> None:
        """Runs ``[older]`` and ``[older + 1]`` become ``merged`` (nothing when it is empty)."""
        pair = slice(older, older + 2)
        if merged.height:
            self.runs[pair] = [merged]
            self.sorted[pair] = [is_sorted]
            self._keys[pair] = [None]
            self._inserts_only[pair] = [inserts_only or not _has_deletions(merged)]
            self._clean[pair] = [not inserts_only]
        else:
            for column in (self.runs, self.sorted, self._keys, self._inserts_only, self._clean):
                del column[pair]

    def lookup(self, keys: pl.Series) -> pl.DataFrame | None:
        """Consolidated rows whose ``_kh`` is in ``keys`` (None when there are none)."""
        self._flush()
        self._adopt_merge()
        if not self.runs or keys.len() == 0:
            return None
        keys = keys.unique().sort()
        parts: list[pl.DataFrame] = []
        key_frame: pl.DataFrame | None = None
        clean = True
        for index, run in enumerate(self.runs):
            if keys.len() * 32 < run.height:
                run = self._sorted_run(index)
                part = _ranges(run, keys)
            else:
                if key_frame is None:
                    key_frame = keys.alias(KH).to_frame()
                part = run.join(key_frame, on=KH, how="semi")
            if part.height:
                parts.append(part)
                clean = clean and self._clean[index]
        if not parts:
            return None
        found = parts[0] if len(parts) == 1 else stack(parts)
        if len(parts) > 1 or not clean:
            found = consolidate_rows(found, self.ignore, self.id_column)
        return found if found.height else None

    def _sorted_run(self, index: int) -> pl.DataFrame:
        if not self.sorted[index] and self._sorting:
            self._adopt_sorts(self.runs[index])
        if not self.sorted[index]:
            self.runs[index] = self.runs[index].sort(KH)
            self.sorted[index] = True
            self._keys[index] = None
        return self.runs[index]

    def lookup_rows(self, keys: Collection[int]) -> list[tuple[Any, ...]]:
        """The consolidated rows (tuples in :attr:`columns` order) whose ``_kh`` is in ``keys``.

        For a few keys: a binary search per run (in NumPy), one gather per run that has any,
        and dict lookups in the tail. Only for arrangements whose columns convert exactly to
        Python values (see :func:`~deltaflow.engine.batch.python_exact`).
        """
        layout = self._layout
        if layout is None or not keys:
            return []
        if self._pending:
            self._index_pending()
        self._adopt_merge()
        if self._sorting:
            self._adopt_sorts()
        found: list[tuple[Any, ...]] = []
        if self.runs:
            wanted = np.fromiter(keys, dtype=np.uint64, count=len(keys))
            for index in range(len(self.runs)):
                found.extend(self._run_rows(index, wanted))
        from_runs = len(found)
        tail = self._tail
        for key in keys:
            bucket = tail.get(key)
            if bucket is not None:
                found.extend(bucket.values())
        if not from_runs:
            return found  # the tail is consolidated already
        return layout.consolidate(found)

    def _run_rows(self, index: int, wanted: np.ndarray) -> list[tuple[Any, ...]]:
        run = self.runs[index]
        column = self._keys[index]
        if run.height <= _SCAN_ROWS and not self.sorted[index]:
            if column is None:
                column = self._keys[index] = run[KH].to_numpy()
            positions = np.flatnonzero(np.isin(column, wanted))
            if len(positions) == 0:
                return []
            return self._take_rows(run, positions)
        if column is None:
            run = self._sorted_run(index)
            column = self._keys[index] = run[KH].to_numpy()
        lo = column.searchsorted(wanted, side="left")  # (the method: no dispatch wrapper)
        hi = column.searchsorted(wanted, side="right")
        if len(wanted) <= _ROW_BY_ROW:  # a few keys (a live update): the ranges in Python
            found = [p for a, b in zip(lo.tolist(), hi.tolist(), strict=True) for p in range(a, b)]
            return self._take_rows(run, found) if found else []
        lengths = hi - lo
        hits = np.flatnonzero(lengths)
        if len(hits) == 0:
            return []
        lo, lengths = lo[hits], lengths[hits]
        starts = np.repeat(lo, lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self._take_rows(run, starts + offsets)

    def _take_rows(
        self, run: pl.DataFrame, positions: np.ndarray | list[int]
    ) -> list[tuple[Any, ...]]:
        """The rows of ``run`` at ``positions``, as tuples."""
        if isinstance(positions, np.ndarray):
            positions = positions.tolist()
        entry = self._run_tuples.get(id(run))
        if entry is None or entry[0] is not run:
            entry = (run, None, 0)
            if len(self._run_tuples) > 2 * len(self.runs) + 8:  # forget replaced runs
                live = {id(r) for r in self.runs}
                self._run_tuples = {k: v for k, v in self._run_tuples.items() if k in live}
        kept, lookups = entry[1], entry[2] + 1
        if (
            kept is None
            and run.height <= _TUPLE_RUN_ROWS
            and lookups >= max(_TUPLES_AFTER_LOOKUPS, run.height // 512)
        ):
            kept = run.rows()
        self._run_tuples[id(run)] = (run, kept, lookups)
        if kept is not None:
            return [kept[i] for i in positions]
        if len(positions) <= _ROW_BY_ROW:
            row = run.row
            return [row(position) for position in positions]
        return run[pl.Series(positions, dtype=pl.Int64)].rows()

    def plus_rows(
        self, old: list[tuple[Any, ...]], delta: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """Consolidated rows of ``old`` (rows :meth:`lookup_rows` gave) with ``delta``'s rows
        added: the rows of the same keys after the delta."""
        if not delta:
            return old
        if not old:
            return delta
        layout = self._layout
        assert layout is not None
        return layout.consolidate(old + delta)

    def contents(self) -> pl.DataFrame | None:
        """Every row (consolidated); for tests and debugging."""
        self._flush()
        while self._merging is not None:
            self._adopt_merge(wait=True)
        if not self.runs:
            return None
        return consolidate_rows(stack(self.runs), self.ignore, self.id_column)


class _RowLayout:
    """Where the key hash, the diff and the ignored columns are in an arrangement's rows, and
    how to consolidate row tuples in Python."""

    def __init__(self, schema: Mapping[str, pl.DataType], ignore: Sequence[str]) -> None:
        names = list(schema)
        self.exact = all(python_exact(dtype) for dtype in schema.values())
        self.kh = names.index(KH) if KH in names else -1
        self.diff = names.index(DIFF)
        self.ignored = [names.index(c) for c in ignore if c in names]
        skip = {self.diff, *self.ignored}
        self.keep = [i for i in range(len(names)) if i not in skip]
        self.objects = [i for i in self.keep if schema[names[i]] == pl.Object]
        self.floats = [i for i in self.keep if schema[names[i]] in (pl.Float64, pl.Float32)]
        self.key = row_key_function(self.keep, self.objects, self.floats)

    def combine(self, old: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row standing for two equal rows (None when their diffs cancel)."""
        total = old[self.diff] + new[self.diff]
        if total == 0:
            return None
        merged = list(old)
        merged[self.diff] = total
        for i in self.ignored:
            if new[i] is not None and (merged[i] is None or new[i] < merged[i]):
                merged[i] = new[i]
        return tuple(merged)

    def consolidate(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Sum the diffs of equal rows, drop those that cancel (ignored columns: the minimum).

        Only rows sharing a key hash can be equal, so rows with a key hash of their own are
        kept as they are.
        """
        diff = self.diff
        if len(rows) <= 1:
            return [r for r in rows if r[diff] != 0]
        kh = self.kh
        seen: dict[Any, int] = {}
        for row in rows:
            seen[row[kh]] = seen.get(row[kh], 0) + 1
        if len(seen) == len(rows):
            return [r for r in rows if r[diff] != 0]
        out: list[tuple[Any, ...]] = []
        first: dict[tuple[Any, ...], int] = {}
        for row in rows:
            if seen[row[kh]] == 1:
                if row[diff] != 0:
                    out.append(row)
                continue
            key = self.key(row)
            slot = first.get(key)
            if slot is None:
                first[key] = len(out)
                out.append(row)
            elif out[slot] is _CANCELLED:
                out[slot] = row
            else:
                out[slot] = self.combine(out[slot], row) or _CANCELLED
        return [r for r in out if r is not _CANCELLED and r[diff] != 0]


_CANCELLED: tuple[Any, ...] = ()


def _merge_runs(
    older: pl.DataFrame,
    newer: pl.DataFrame,
    inserts_only: bool,
    ignore: Sequence[str],
    id_column: str,
) -> pl.DataFrame:
    """One run holding the rows of two (consolidated unless both only insert)."""
    merged = stack([older, newer])
    return merged if inserts_only else consolidate_rows(merged, ignore, id_column)


def _has_deletions(frame: pl.DataFrame) -> bool:
    smallest = cast("int | None", frame[DIFF].min())  # diffs are integers
    return smallest is not None and smallest < 0


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
