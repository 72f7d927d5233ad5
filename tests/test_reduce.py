"""groupby/reduce: reducers, ids, expressions over reducers, and definition-time errors."""

from __future__ import annotations

import numpy as np
import pytest
from tests._util import stream

import deltaflow as pw
from deltaflow.expressions.base import ExpressionError


def _table() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | g | v | w    | __time__
        1 | a | 3 | 1.5  | 2
        2 | a | 1 | 2.5  | 2
        3 | b | 2 | 0.5  | 4
        4 | a | 5 | None | 4
    """)


def _rows(table: pw.Table) -> dict[str, dict]:
    _, columns = pw.debug.table_to_dicts(table)
    ids = list(next(iter(columns.values())).keys())
    return {columns["g"][i]: {c: columns[c][i] for c in columns} for i in ids}


def test_every_reducer_value_and_type() -> None:
    t = _table()
    r = t.groupby(t.g).reduce(
        t.g,
        c=pw.reducers.count(),
        s=pw.reducers.sum(t.v),
        av=pw.reducers.avg(t.v),
        mn=pw.reducers.min(t.v),
        mx=pw.reducers.max(t.v),
        an=pw.reducers.any(t.v),
        st=pw.reducers.sorted_tuple(t.v),
        cd=pw.reducers.count_distinct(t.v),
        e=pw.reducers.earliest(t.v),
        la=pw.reducers.latest(t.v),
        mw=pw.reducers.max(t.w),
        tw=pw.reducers.tuple(t.w, skip_nones=True),
        nd=pw.reducers.ndarray(t.v),
        ug=pw.reducers.unique(t.g),
        ratio=pw.reducers.sum(t.v) / pw.reducers.count(),
    )
    hints = r.typehints()
    assert hints["c"] is int and hints["av"] is float and hints["ug"] is str
    rows = _rows(r)
    a = rows["a"]
    assert (a["c"], a["s"], a["av"], a["mn"], a["mx"]) == (3, 9, 3.0, 1, 5)
    assert a["st"] == (1, 3, 5) and a["cd"] == 3 and a["mw"] == 2.5
    assert sorted(a["tw"]) == [1.5, 2.5]
    assert a["e"] in (1, 3) and a["la"] == 5  # row 4 arrived last
    assert isinstance(a["nd"], np.ndarray) and sorted(a["nd"].tolist()) == [1, 3, 5]
    assert a["ratio"] == 3.0 and a["an"] in (1, 3, 5)
    assert rows["b"]["c"] == 1 and rows["b"]["st"] == (2,)


def test_argmin_argmax_return_row_ids() -> None:
    t = _table()
    r = t.groupby(t.g).reduce(t.g, lo=pw.reducers.argmin(t.v), hi=pw.reducers.argmax(t.v))
    rows = _rows(r)
    _, values = pw.debug.table_to_dicts(t)
    by_id = values["v"]
    assert by_id[rows["a"]["lo"]] == 1 and by_id[rows["a"]["hi"]] == 5


def test_group_ids_are_pointer_from_the_key() -> None:
    t = _table()
    r = t.groupby(t.g).reduce(t.g, c=pw.reducers.count())
    check = r.select(same=r.id == t.pointer_from(r.g))
    _, columns = pw.debug.table_to_dicts(check)
    assert set(columns["same"].values()) == {True}


def test_groupby_id_and_instance() -> None:
    t = _table()
    keyed = t.select(t.v, p=t.pointer_from(t.g))
    r = keyed.groupby(id=keyed.p).reduce(n=pw.reducers.count())
    ids, columns = pw.debug.table_to_dicts(r)
    expected_ids, _ = pw.debug.table_to_dicts(t.groupby(t.g).reduce(t.g))
    assert set(ids) == set(expected_ids)
    assert sorted(columns["n"].values()) == [1, 3]
    inst = t.groupby(t.v, instance=t.g).reduce(t.v, n=pw.reducers.count())
    ids, columns = pw.debug.table_to_dicts(inst)
    assert len(ids) == 4


def test_whole_table_reduce_and_update_stream() -> None:
    t = _table()
    r = t.reduce(n=pw.reducers.count(), s=pw.reducers.sum(t.v))
    stream = [(time, row["n"], row["s"], diff) for time, row, diff in pw.debug.table_to_stream(r)]
    assert sorted(stream) == [(2, 2, 4, 1), (4, 2, 4, -1), (4, 4, 11, 1)]


def test_group_disappears_when_emptied() -> None:
    t = pw.debug.table_from_markdown("""
          | g | v | __time__ | __diff__
        1 | a | 1 | 2        | 1
        2 | b | 2 | 2        | 1
        1 | a | 1 | 4        | -1
        2 | b | 2 | 6        | -1
        2 | a | 2 | 6        | 1
    """)
    r = t.groupby(t.g).reduce(t.g, m=pw.reducers.max(t.v), c=pw.reducers.count())
    stream = sorted(
        (time, row["g"], row["m"], diff) for time, row, diff in pw.debug.table_to_stream(r)
    )
    assert stream == [
        (2, "a", 1, 1),
        (2, "b", 2, 1),
        (4, "a", 1, -1),
        (6, "a", 2, 1),
        (6, "b", 2, -1),
    ]


def test_stateful_reducers() -> None:
    t = _table()

    @pw.reducers.stateful_single
    def total(state: int | None, value: int) -> int:
        return (state or 0) + value

    r = t.groupby(t.g).reduce(t.g, s=total(t.v))
    assert _rows(r)["a"]["s"] == 9


def test_unique_fails_on_different_values() -> None:
    t = _table()
    with pytest.raises(ValueError, match="more than one distinct value"):
        pw.debug.table_to_dicts(t.reduce(u=pw.reducers.unique(t.g)))


def test_definition_time_errors() -> None:
    t = _table()
    with pytest.raises(ExpressionError, match="not a grouping column"):
        t.groupby(t.g).reduce(t.v)
    with pytest.raises(ExpressionError, match="Optional"):
        t.groupby(t.g).reduce(s=pw.reducers.sum(t.w))
    with pytest.raises(ExpressionError, match="int or float"):
        t.reduce(s=pw.reducers.sum(t.g))
    with pytest.raises(TypeError, match="column references"):
        t.groupby(t.v + 1)
    with pytest.raises(ExpressionError, match="only be used in reduce"):
        t.select(x=pw.reducers.count())
    with pytest.raises(ValueError, match="precision"):
        pw.reducers.count_distinct_approximate(t.v, precision=3)


def test_reducers_without_arguments() -> None:
    t = pw.debug.table_from_markdown(
        """
        a | b
        1 | 2
        3 | 4
        3 | 5
        """
    )

    @pw.reducers.stateful_many
    def rows_seen(state: int | None, rows: list) -> int | None:
        total = (state or 0) + sum(count for _, count in rows)
        return total or None

    class Counter(pw.BaseCustomAccumulator):
        def __init__(self, count: int) -> None:
            self.count = count

        @classmethod
        def from_row(cls, row: list) -> Counter:
            return cls(1)

        def update(self, other: Counter) -> None:
            self.count += other.count

        def compute_result(self) -> int:
            return self.count

    counter = pw.reducers.udf_reducer(Counter)
    r = t.groupby(t.a).reduce(
        t.a, distinct=pw.reducers.count_distinct(), many=rows_seen(), custom=counter()
    )
    assert sorted(pw.debug.table_to_pandas(r, include_id=False).itertuples(index=False)) == [
        (1, 1, 1, 1),
        (3, 1, 2, 2),
    ]


def test_min_treats_none_as_the_smallest_value_incrementally() -> None:
    t = pw.debug.table_from_markdown(
        """
          | g | v    | __time__ | __diff__
        1 | a | 1    | 2        | 1
        2 | a | None | 4        | 1
        3 | b | 2    | 4        | 1
        2 | a | None | 6        | -1
        """
    )
    r = t.groupby(t.g).reduce(t.g, mn=pw.reducers.min(t.v), mx=pw.reducers.max(t.v))
    changes = {row for row in stream(r) if row[1] == "a"}
    assert changes == {
        (2, "a", 1, 1, 1),
        (4, "a", 1, 1, -1),
        (4, "a", None, 1, 1),
        (6, "a", None, 1, -1),
        (6, "a", 1, 1, 1),
    }
