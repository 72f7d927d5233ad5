"""Slices of ``pw.this``/``pw.left``/``pw.right``: ``*slice`` and ``**slice`` in select."""

from __future__ import annotations

import pytest
from tests._util import snapshot, stream

import deltaflow as pw


def _sides() -> tuple[pw.Table, pw.Table]:
    left = pw.debug.table_from_markdown("""
    col | on
    a   | 11
    b   | 12
    """)
    right = pw.debug.table_from_markdown("""
    col | on
    d   | 12
    e   | 14
    """)
    return left, right


def test_prefix_and_suffix_of_both_sides_of_a_join() -> None:
    left, right = _sides()
    result = left.join(right, left.on == right.on).select(
        **pw.left.with_suffix("_l").with_prefix("t"), **pw.right.with_suffix("_r")
    )
    assert result.column_names() == ["tcol_l", "ton_l", "col_r", "on_r"]
    assert snapshot(result) == [("b", 12, "d", 12)]


def test_without_and_rename_merge_like_a_dict() -> None:
    left, right = _sides()
    joined = left.join(right, left.on == right.on)
    result = joined.select(
        **pw.left.without(left.col), **pw.right.rename({right.col: pw.this.col2})[["col2"]]
    )
    assert result.column_names() == ["on", "col2"]
    assert snapshot(result) == [(12, "d")]
    both = joined.select(**pw.left.without("col"), **pw.right.rename({"col": "col2"}))
    assert both.column_names() == ["on", "col2"]  # "on" of the right side wins


def test_star_of_a_this_slice_and_a_list_of_columns() -> None:
    t = pw.debug.table_from_markdown("""
    a | b | c | d
    1 | 2 | 3 | 4
    """)
    picked = t.select(*pw.this[["a", "b", pw.this.c]].without(pw.this.a))
    assert picked.column_names() == ["b", "c"]
    assert snapshot(picked) == [(2, 3)]
    renamed = t.select(*pw.this.rename({"a": "x"})[["x", "d"]], e=pw.this.a + 1)
    assert snapshot(renamed) == [(1, 4, 2)]
    with pytest.raises(KeyError):
        pw.this.without("a")["a"]


def test_slices_on_an_update_stream() -> None:
    t = pw.debug.table_from_markdown("""
    id | a | b | __time__ | __diff__
    1  | 1 | 2 |     2    |    1
    1  | 1 | 2 |     4    |   -1
    1  | 5 | 2 |     4    |    1
    """)
    result = t.select(**pw.this.with_prefix("p_"))
    assert result.column_names() == ["p_a", "p_b"]
    assert stream(result) == [(2, 1, 2, 1), (4, 1, 2, -1), (4, 5, 2, 1)]


def test_this_without_in_reduce_leaves_the_column_out() -> None:
    t = pw.debug.table_from_markdown("""
    k | v
    1 | 2
    1 | 3
    """)
    grouped = t.groupby(t.k, t.v).reduce(*pw.this.without("v"), n=pw.reducers.count())
    assert grouped.column_names() == ["k", "n"]
