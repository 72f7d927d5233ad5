"""reduce: which arguments a reducer and a grouped reduce accept, and reducers over row ids.

Pathway refuses ``pw.reducers.ndarray`` over values that make no numeric array (strings,
booleans, None, values of unknown type) and refuses the ids of the grouped rows outside a
reducer; both are definition-time errors. Counting ids is fine, also on a stream with
deletions.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests._util import snapshot, stream

import deltaflow as pw


def _shop() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | shop | item  | qty | price | paid
        1 | A    | pen   | 2   | 1.5   | true
        2 | A    | ink   |     | 4.0   | false
        3 | B    | pad   | 7   | 2.25  | true
    """)


@pytest.mark.parametrize("column", ["item", "paid"])
def test_ndarray_refuses_values_that_make_no_numeric_array(column: str) -> None:
    t = _shop()
    with pytest.raises(TypeError, match="ndarray"):
        t.groupby(t.shop).reduce(arr=pw.reducers.ndarray(t[column]))


def test_ndarray_refuses_optional_values_unless_nones_are_skipped() -> None:
    t = _shop()
    with pytest.raises(TypeError, match="skip_nones=True"):
        t.groupby(t.shop).reduce(arr=pw.reducers.ndarray(t.qty))
    r = t.groupby(t.shop).reduce(t.shop, arr=pw.reducers.ndarray(t.qty, skip_nones=True))
    got = {shop: sorted(arr.tolist()) for shop, arr in snapshot(r)}
    assert got == {"A": [2], "B": [7]}


def test_ndarray_refuses_a_column_of_unknown_type() -> None:
    t = _shop().select(anything=pw.declare_type(object, pw.this.qty))
    with pytest.raises(TypeError, match="ndarray"):
        t.reduce(arr=pw.reducers.ndarray(t.anything))


def test_ndarray_accepts_numbers_and_tuples() -> None:
    t = _shop().select(pw.this.shop, pw.this.price, pair=pw.make_tuple(pw.this.price, 1))
    r = t.groupby(t.shop).reduce(
        t.shop, prices=pw.reducers.ndarray(t.price), pairs=pw.reducers.ndarray(t.pair)
    )
    rows = {shop: (prices, pairs) for shop, prices, pairs in snapshot(r)}
    assert sorted(rows["A"][0].tolist()) == [1.5, 4.0]
    assert rows["B"][1].shape == (1, 2)
    assert isinstance(rows["B"][0], np.ndarray)


def test_ids_of_grouped_rows_outside_a_reducer_are_refused() -> None:
    t = _shop()
    with pytest.raises(ValueError, match="grouping"):
        t.groupby(t.shop).reduce(t.shop, first=pw.this.id)
    with pytest.raises(ValueError, match="grouping"):
        t.reduce(first=t.id)


def test_grouping_by_the_id_still_gives_it_back() -> None:
    t = _shop()
    r = t.groupby(t.shop, pw.this.id).reduce(t.shop, row=pw.this.id)
    assert sorted(row for _, row in snapshot_rows(r)) == sorted(pw.debug.table_to_dicts(t)[0])


def snapshot_rows(table: pw.Table) -> list[tuple]:
    keys, columns = pw.debug.table_to_dicts(table)
    return [(columns["shop"][k], columns["row"][k]) for k in keys]


def test_counting_ids_follows_deletions() -> None:
    t = pw.debug.table_from_markdown("""
          | shop | __time__ | __diff__
        1 | A    | 2        | 1
        2 | B    | 2        | 1
        3 | B    | 2        | 1
        2 | B    | 4        | -1
    """)
    r = t.groupby(t.shop).reduce(t.shop, n=pw.reducers.count(pw.this.id))
    assert stream(r) == [(2, "A", 1, 1), (2, "B", 2, 1), (4, "B", 1, 1), (4, "B", 2, -1)]
    both = t.groupby(t.shop).reduce(
        t.shop,
        n=pw.reducers.count(pw.this.id),
        distinct=pw.reducers.count_distinct(pw.this.id),
    )
    assert snapshot(both) == [("A", 1, 1), ("B", 1, 1)]
