"""Arrangement runs merged on the background thread: lookups during and after a merge see
exactly the consolidated rows, whatever the merges' timing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.stateful import arrangement as arr
from deltaflow.engine.stateful.arrangement import Arrangement
from deltaflow.engine.stateful.keys import KH


def frame(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    """Rows (key, value, diff) with the key as hash and the value as id."""
    return pl.DataFrame(
        {
            KH: pl.Series([k for k, _, _ in rows], dtype=pl.UInt64),
            ID: pl.Series([v for _, v, _ in rows], dtype=pl.UInt128),
            "v": pl.Series([v for _, v, _ in rows], dtype=pl.Int64),
            DIFF: pl.Series([d for _, _, d in rows], dtype=pl.Int64),
        }
    )


def expected(state: Counter, keys: set[int]) -> Counter:
    return Counter({(k, v): d for (k, v), d in state.items() if d and k in keys})


def found(arrangement: Arrangement, keys: set[int]) -> Counter:
    out: Counter = Counter()
    for row in arrangement.lookup_rows(keys):
        out[(row[0], row[2])] += row[3]
    return out


batches = st.lists(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 5), st.sampled_from([1, 1, -1])),
        min_size=1,
        max_size=200,
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches, slow=st.booleans(), eager=st.booleans())
def test_lookups_see_the_same_rows_while_big_merges_run_in_the_background(
    batches: list[list[tuple[int, int, int]]], slow: bool, eager: bool
) -> None:
    old = arr.BACKGROUND_MERGE_ROWS, arr._merge_runs, arr.SMALL_INSERT, arr.TAIL_ROWS
    arr.BACKGROUND_MERGE_ROWS = 64  # nearly every merge goes to the merge thread
    arr.SMALL_INSERT, arr.TAIL_ROWS = 8, 32  # and runs form after a few rows
    if slow:  # merges that finish late: lookups must read the unmerged runs meanwhile
        import time

        def late(*args: Any) -> pl.DataFrame:
            time.sleep(0.002)
            return old[1](*args)

        arr._merge_runs = late  # type: ignore[assignment]
    started = arr.Arrangement._start_merge
    try:
        # index_eagerly also sorts big new runs on the merge thread.
        arrangement = Arrangement(index_eagerly=eager)
        state: Counter = Counter()
        for rows in batches:
            arrangement.insert(frame(rows))
            for k, v, d in rows:
                state[(k, v)] += d
            keys = {k for k, _, _ in rows} | {0, 7}
            assert found(arrangement, keys) == expected(state, keys)
        everything = arrangement.contents()
        got = (
            Counter()
            if everything is None
            else Counter(
                {
                    (k, v): d
                    for k, v, d in zip(
                        everything[KH].to_list(),
                        everything["v"].to_list(),
                        everything[DIFF].to_list(),
                        strict=True,
                    )
                }
            )
        )
        assert got == Counter({key: d for key, d in state.items() if d})
        assert arrangement._merging is None
    finally:
        arr.BACKGROUND_MERGE_ROWS, arr._merge_runs, arr.SMALL_INSERT, arr.TAIL_ROWS = old
        assert arr.Arrangement._start_merge is started


def test_a_big_merge_does_not_block_the_insert_that_starts_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    release, started = threading.Event(), threading.Event()
    merges: list[int] = []
    real = arr._merge_runs

    def held(older: pl.DataFrame, newer: pl.DataFrame, *rest: Any) -> pl.DataFrame:
        merges.append(older.height + newer.height)
        started.set()
        release.wait(60)
        return real(older, newer, *rest)

    monkeypatch.setattr(arr, "BACKGROUND_MERGE_ROWS", 1000)
    monkeypatch.setattr(arr, "_merge_runs", held)
    arrangement = Arrangement()
    big = frame([(i % 100, i, 1) for i in range(600)])
    arrangement.insert(big)
    arrangement.insert(frame([(i % 100, 1000 + i, 1) for i in range(600)]))
    # The second insert returned although the merge it started is held back.
    assert started.wait(60) and merges == [1200] and arrangement._merging is not None
    assert len(arrangement.lookup_rows({5})) == 12  # both runs are read meanwhile
    release.set()
    assert arrangement.contents().height == 1200  # type: ignore[union-attr]
    assert len(arrangement.runs) == 1


def test_the_property_above_reaches_background_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings of the property make merges go to the merge thread (else it would
    only test the synchronous merges)."""
    monkeypatch.setattr(arr, "BACKGROUND_MERGE_ROWS", 64)
    monkeypatch.setattr(arr, "SMALL_INSERT", 8)
    monkeypatch.setattr(arr, "TAIL_ROWS", 32)
    count = [0]
    real = arr.Arrangement._start_merge

    def counting(self: Arrangement, older: int) -> None:
        count[0] += 1
        real(self, older)

    monkeypatch.setattr(arr.Arrangement, "_start_merge", counting)
    arrangement = Arrangement()
    for step in range(20):
        arrangement.insert(frame([(k, step, 1) for k in range(40)]))
        assert len(arrangement.lookup_rows({3})) == step + 1
    assert count[0] >= 1  # more when merges finish before the next one is due
    assert arrangement.contents().height == 800  # type: ignore[union-attr]


def test_a_big_run_of_group_state_is_sorted_off_the_engine_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big run added to an eagerly indexed arrangement (a reduce's groups, after a load)
    is sorted on the merge thread; the first point lookup then finds it sorted."""
    monkeypatch.setattr(arr, "BACKGROUND_MERGE_ROWS", 100)
    arrangement = Arrangement(index_eagerly=True)
    keys = [(i * 7919) % 5000 for i in range(5000)]  # not in key order
    arrangement.insert(frame([(k, k, 1) for k in keys]))
    assert len(arrangement.runs) == 1 and not arrangement.sorted[0]
    assert len(arrangement._sorting) == 1
    arrangement._sorting[0][1].result(60)  # the sort finished on the merge thread
    assert arrangement.lookup_rows({17, 4999}) == [(17, 17, 17, 1), (4999, 4999, 4999, 1)]
    assert arrangement.sorted == [True] and arrangement._sorting == []
    assert arrangement.runs[0][KH].is_sorted()
