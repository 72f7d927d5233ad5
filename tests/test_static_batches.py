"""Big static batches: batches known to hold every id once skip the uniqueness check, and the
frame paths of join and reduce (taken by big deltas) give the results a plain computation does.
"""

from __future__ import annotations

import gc
import random
from collections import Counter
from typing import Any

import pandas as pd
import polars as pl
import pytest

import deltaflow as pw
from deltaflow._ids import ID_DTYPE
from deltaflow.engine.batch import DIFF, ID, consolidate, has_distinct_ids, mark_distinct_ids
from deltaflow.engine.boundary import SourceHandle


def batch(ids: list[int], values: list[Any], diffs: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {ID: pl.Series(ids, dtype=ID_DTYPE), "v": values, DIFF: pl.Series(diffs, dtype=pl.Int64)}
    )


def test_consolidate_trusts_marked_batches_and_marks_checked_ones() -> None:
    rows = 200  # above the size consolidated in Python
    plain = batch(list(range(rows)), list(range(rows)), [1] * rows)
    assert not has_distinct_ids(plain)
    out = consolidate(plain)
    assert out is plain and has_distinct_ids(out)
    # A marked batch is only cleaned of zero diffs (its ids are not counted again).
    zeros = mark_distinct_ids(batch(list(range(rows)), list(range(rows)), [0, 1] * (rows // 2)))
    cleaned = consolidate(zeros)
    assert cleaned.height == rows // 2 and has_distinct_ids(cleaned)
    # Repeated ids are still merged in an unmarked batch.
    repeated = batch([1] * rows, [5] * rows, [1] * rows)
    merged = consolidate(repeated)
    assert merged.to_dicts() == [{ID: 1, "v": 5, DIFF: rows}]
    assert not has_distinct_ids(merged)


def test_marks_belong_to_one_frame_and_go_with_it() -> None:
    frame = mark_distinct_ids(batch([1, 2], [1, 2], [1, 1]))
    derived = frame.filter(pl.col("v") > 0)
    assert has_distinct_ids(frame) and not has_distinct_ids(derived)
    from deltaflow.engine import batch as batch_module

    key = id(frame)
    assert key in batch_module._DISTINCT
    del frame
    gc.collect()
    assert key not in batch_module._DISTINCT  # the mark does not keep the frame alive


def pushed(table: pw.Table) -> list[pl.DataFrame]:
    handle = SourceHandle("test", lambda: None)
    table._node.source.start(handle)
    return [b for b, *_ in handle.take()]


def test_static_tables_numbered_by_position_push_consolidated_batches() -> None:
    frame = pd.DataFrame({"v": [1, 1, 2]})
    assert all(has_distinct_ids(b) for b in pushed(pw.debug.table_from_pandas(frame)))
    assert all(
        has_distinct_ids(b) for b in pushed(pw.debug.table_from_polars(pl.DataFrame({"v": [1, 1]})))
    )

    class S(pw.Schema):
        v: int

    assert all(has_distinct_ids(b) for b in pushed(pw.debug.table_from_rows(S, [(1,), (1,)])))
    # Labels, keys and given diffs may repeat ids or cancel rows: the engine checks those.
    repeated_labels = pd.DataFrame({"v": [1, 1]}, index=[4, 4])
    with_diffs = pd.DataFrame({"v": [1, 1], "__time__": [2, 2], "__diff__": [1, -1]})
    keyed = pl.DataFrame({"v": [1, 1]})
    for table in (
        pw.debug.table_from_pandas(repeated_labels),
        pw.debug.table_from_pandas(with_diffs),
        pw.debug.table_from_polars(keyed, id_from=["v"]),
        pw.debug.table_from_markdown("""
                        | v
                      1 | 1
                  """),
    ):
        assert not any(has_distinct_ids(b) for b in pushed(table))


def test_repeated_labels_are_still_consolidated() -> None:
    frame = pd.DataFrame({"v": [7] * 300}, index=[3] * 300)
    changes = pw.debug.table_to_stream(pw.debug.table_from_pandas(frame))
    # One id; the rows are equal, so they merge into one row inserted 300 times.
    assert [(row["v"], diff) for _, row, diff in changes] == [(7, 300)]
    # A final table cannot hold one id 300 times (Pathway's helpers refuse it too).
    with pytest.raises(KeyError, match="several rows"):
        pw.debug.table_to_pandas(pw.debug.table_from_pandas(frame))


def naive_join(
    left: list[tuple[int, Any, int]], right: list[tuple[int, Any, int]], how: str
) -> Counter:
    """(left value, right value) pairs of a join on the key, Nones matching each other."""
    out: Counter = Counter()
    for _, lk, lv in left:
        partners = [rv for _, rk, rv in right if rk == lk]
        for rv in partners:
            out[(lv, rv)] += 1
        if not partners and how in ("left", "outer"):
            out[(lv, None)] += 1
    if how == "outer":
        for _, rk, rv in right:
            if not any(lk == rk for _, lk, _ in left):
                out[(None, rv)] += 1
    return out


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
def test_big_static_join_matches_a_plain_join(how: str) -> None:
    rng = random.Random(5)
    keys = [None, *range(40)]
    left = [(i, rng.choice(keys), i) for i in range(600)]
    right = [(i, rng.choice(keys[:30]), 1000 + i) for i in range(300)]
    a = pw.debug.table_from_pandas(
        pd.DataFrame({"k": [r[1] for r in left], "lv": [r[2] for r in left]})
    )
    b = pw.debug.table_from_pandas(
        pd.DataFrame({"k": [r[1] for r in right], "rv": [r[2] for r in right]})
    )
    method = {"inner": a.join, "left": a.join_left, "outer": a.join_outer}[how]
    joined = method(b, a.k == b.k).select(a.lv, b.rv)
    out = pw.debug.table_to_pandas(joined)
    got = Counter(
        zip(
            [None if pd.isna(v) else int(v) for v in out["lv"]],
            [None if pd.isna(v) else int(v) for v in out["rv"]],
            strict=True,
        )
    )
    assert got == naive_join(left, right, how)
    assert out.index.is_unique


def test_big_update_dropping_a_selected_column_cancels_after_a_join() -> None:
    # Time 2 updates column w of every left row; the select drops w, so the joined rows keep
    # their ids and values: the update must cancel out, not reach the output.
    rows = 400
    left = pd.DataFrame(
        {
            "k": list(range(rows)) * 3,
            "v": list(range(rows)) * 3,
            "w": [0] * rows + [0] * rows + [1] * rows,
            "__time__": [0] * rows + [2] * rows * 2,
            "__diff__": [1] * rows + [-1] * rows + [1] * rows,
        },
        index=list(range(rows)) * 3,
    )
    right = pd.DataFrame({"k": list(range(rows)), "r": list(range(rows))})
    a = pw.debug.table_from_pandas(left)
    b = pw.debug.table_from_pandas(right)
    selected = a.join(b, a.k == b.k).select(a.v, b.r)
    stream = pw.debug.table_to_stream(selected)
    assert {time for time, _, _ in stream} == {0}
    assert len(stream) == rows
    counts = a.groupby(a.v).reduce(a.v, n=pw.reducers.count())
    later = [event for event in pw.debug.table_to_stream(counts) if event[0] == 2]
    assert later == []  # the groups' counts did not change either


def test_big_word_count_matches_value_counts() -> None:
    rng = random.Random(3)
    words = [f"w{min(int(rng.paretovariate(1.2)), 50)}" for _ in range(5000)]
    table = pw.debug.table_from_pandas(pd.DataFrame({"word": words}))
    counts = table.groupby(table.word).reduce(table.word, count=pw.reducers.count())
    out = pw.debug.table_to_pandas(counts)
    assert dict(zip(out["word"], out["count"], strict=True)) == dict(Counter(words))
    assert out.index.is_unique


def test_big_and_small_joins_give_rows_the_same_ids() -> None:
    from deltaflow._ids import combine_id_values, pointer_from_values

    rows = 500  # the frame path; single rows take the Python path (test_ids covers those)
    a = pw.debug.table_from_pandas(pd.DataFrame({"k": [i % 50 for i in range(rows)]}))
    b = pw.debug.table_from_pandas(pd.DataFrame({"k": list(range(50)), "w": list(range(50))}))
    joined = a.join_left(b, a.k == b.k).select(b.w)
    ids = set(pw.debug.table_to_pandas(joined).index)
    assert ids == {
        pw.Pointer(
            combine_id_values(pointer_from_values(i), pointer_from_values(i % 50), salt="join")
        )
        for i in range(rows)
    }
