"""User reducers keep a state per group (udf_reducer, stateful_many, stateful_single), groupby
sort_by, groupby(*pw.this), sums of arrays and the warning of ``latest``.

The expected values were observed on Pathway 0.33 for the same inputs.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import deltaflow as pw
from _util import snapshot, stream


class Listing(pw.BaseCustomAccumulator):
    """Concatenates its rows' values: shows the order rows are merged in."""

    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values

    @classmethod
    def from_row(cls, row: list[Any]) -> Listing:
        return cls(tuple(row))

    def update(self, other: Listing) -> None:
        self.values = self.values + other.values

    def compute_result(self) -> tuple:
        return self.values


class ListingWithRetract(Listing):
    def retract(self, other: Listing) -> None:
        values = list(self.values)
        values.remove(other.values[0])
        self.values = (*values, "retracted")


listing = pw.reducers.udf_reducer(Listing)
listing_with_retract = pw.reducers.udf_reducer(ListingWithRetract)

EVENTS = """
  | g | v | w | __time__ | __diff__
1 | 1 | 5 | a | 2 | 1
2 | 1 | 3 | b | 2 | 1
3 | 1 | 9 | a | 2 | 1
4 | 1 | 1 | c | 2 | 1
5 | 1 | 7 | a | 4 | 1
6 | 1 | 2 | b | 4 | 1
3 | 1 | 9 | a | 6 | -1
7 | 1 | 0 | z | 6 | 1
"""


def test_accumulator_merges_insertions_in_arrival_order() -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    result = t.groupby(t.g).reduce(l=listing(t.v), lw=listing(t.w, t.v))
    assert stream(result) == [
        (2, (1, 3, 5, 9), ("a", 5, "a", 9, "b", 3, "c", 1), 1),
        (4, (1, 3, 5, 9), ("a", 5, "a", 9, "b", 3, "c", 1), -1),
        (4, (1, 3, 5, 9, 2, 7), ("a", 5, "a", 9, "b", 3, "c", 1, "a", 7, "b", 2), 1),
        # a removal without retract(): rebuilt, the added values first
        (6, (0, 1, 3, 5, 2, 7), ("z", 0, "a", 5, "b", 3, "c", 1, "a", 7, "b", 2), 1),
        (6, (1, 3, 5, 9, 2, 7), ("a", 5, "a", 9, "b", 3, "c", 1, "a", 7, "b", 2), -1),
    ]


def test_accumulator_retract_takes_rows_back_in_order() -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    result = t.groupby(t.g).reduce(l=listing_with_retract(t.v))
    assert snapshot(result) == [((1, 3, 5, 2, 7, 0, "retracted"),)]


def test_stateful_many_sees_each_change() -> None:
    @pw.reducers.stateful_many
    def changes(state: tuple | None, rows: list[tuple[list[Any], int]]) -> tuple:
        return (*(state or ()), tuple((tuple(values), count) for values, count in rows))

    t = pw.debug.table_from_markdown(EVENTS)
    result = t.groupby(t.g).reduce(m=changes(t.v))
    assert snapshot(result) == [
        (
            (
                (((1,), 1), ((3,), 1), ((5,), 1), ((9,), 1)),
                (((2,), 1), ((7,), 1)),
                (((0,), 1), ((9,), -1)),
            ),
        )
    ]


def test_stateful_single_refuses_removals() -> None:
    @pw.reducers.stateful_single
    def total(state: int | None, value: int) -> int:
        return (state or 0) + value

    t = pw.debug.table_from_markdown(EVENTS)
    inserted_only = t.filter(t.id != t.pointer_from(3))
    assert snapshot(inserted_only.groupby(pw.this.g).reduce(s=total(pw.this.v))) == [(18,)]
    with pytest.raises(ValueError, match="stateful_single"):
        snapshot(t.groupby(t.g).reduce(s=total(t.v)))


def test_removal_of_equal_values_under_another_id() -> None:
    # Without an id column each markdown row has its own id: the removal at time 2 is of a
    # row never inserted, with the values of one that was. Counts and user reducers count
    # it against the equal values (as Pathway does).
    t = pw.debug.table_from_markdown("""
        pet | age | __time__ | __diff__
        dog | 10  | 0        | 1
        dog | 9   | 0        | 1
        dog | 7   | 0        | 1
        dog | 7   | 2        | -1
        dog | 2   | 4        | 1
        cat | 1   | 0        | 1
        cat | 1   | 2        | -1
    """)
    result = t.groupby(t.pet).reduce(
        t.pet, c=listing(t.age), n=pw.reducers.count(), s=pw.reducers.sum(t.age)
    )
    assert stream(result) == [
        (0, "cat", (1,), 1, 1, 1),
        (0, "dog", (7, 9, 10), 3, 26, 1),
        (2, "cat", (1,), 1, 1, -1),
        (2, "dog", (7, 9, 10), 3, 26, -1),
        (2, "dog", (9, 10), 2, 19, 1),
        (4, "dog", (9, 10), 2, 19, -1),
        (4, "dog", (9, 10, 2), 3, 21, 1),
    ]


class Timed(pw.BaseCustomAccumulator):
    """factor * previous + summand, merged in the order of the ``t`` column."""

    def __init__(self, factor: int, summand: int) -> None:
        self.factor = factor
        self.result = factor + summand

    @classmethod
    def from_row(cls, row: list[Any]) -> Timed:
        return cls(row[0], row[1])

    def update(self, other: Timed) -> None:
        self.result = self.result * other.factor + other.result - other.factor

    def compute_result(self) -> int:
        return self.result

    @classmethod
    def sort_by(cls, row: list[Any]) -> Any:
        return row[2]


def test_accumulator_sort_by_orders_rows_arriving_together() -> None:
    t = pw.debug.table_from_markdown("""
        a | b | t | __time__
        2 | 1 | 3 | 2
        3 | 0 | 1 | 2
        5 | 1 | 2 | 2
    """)
    result = t.reduce(r=pw.reducers.udf_reducer(Timed)(t.a, t.b, t.t))
    # t order: (3, 0) -> 3; (5, 1) -> 16; (2, 1) -> 33
    assert snapshot(result) == [(33,)]


def test_groupby_sort_by_orders_tuples_and_arrays() -> None:
    t = pw.debug.table_from_markdown("""
        a | b | val
        0 | 0 | 2
        0 | 0 | 1
        0 | 1 | 4
        0 | 1 | 3
        1 | 0 | 7
        1 | 0 | 5
        1 | 0 | 6
        1 | 1 | 0
        1 | 1 | 9
        1 | 1 | 8
    """)
    inner = t.groupby(t.a, t.b, sort_by=t.val).reduce(
        t.a, val=pw.reducers.ndarray(t.val), down=pw.reducers.tuple(-t.val)
    )
    outer = inner.groupby(pw.this.a, sort_by=pw.this.val).reduce(
        pw.this.a, val=pw.reducers.ndarray(pw.this.val)
    )
    rows = {a: v.tolist() for a, v in snapshot(outer)}
    assert rows == {0: [[1, 2], [3, 4]], 1: [[0, 8, 9], [5, 6, 7]]}
    downs = sorted(d for _, _, d in snapshot(inner))
    assert downs == [(-5, -6, -7), (-3, -4), (-1, -2), (0, -8, -9)]


def test_groupby_all_columns() -> None:
    t = pw.debug.table_from_markdown("""
           | A | B
        31 | x | y
        33 | x | y
        34 | x | z
    """)
    result = t.groupby(*pw.this).reduce(*pw.this, n=pw.reducers.count())
    assert snapshot(result) == [("x", "y", 2), ("x", "z", 1)]
    without_b = t.groupby(*pw.this.without(pw.this.B)).reduce(pw.this.A)
    assert snapshot(without_b) == [("x",)]


def test_sum_of_arrays_with_deletions() -> None:
    t = pw.debug.table_from_markdown("""
          | g | v | __time__ | __diff__
        1 | 1 | 1 | 2 | 1
        2 | 1 | 2 | 2 | 1
        2 | 1 | 2 | 4 | -1
    """)
    arrays = t.select(t.g, a=pw.apply_with_type(lambda v: np.array([v, 10 * v]), np.ndarray, t.v))
    result = arrays.groupby(arrays.g).reduce(
        s=pw.reducers.sum(arrays.a), st=pw.reducers.sum(arrays.a, strict=True)
    )
    changes = [(time, s.tolist(), st.tolist(), diff) for time, s, st, diff in stream(result)]
    assert sorted(changes) == [
        (2, [3, 30], [3, 30], 1),
        (4, [1, 10], [1, 10], 1),
        (4, [3, 30], [3, 30], -1),
    ]


def test_latest_warns_on_tables_with_deletions() -> None:
    t = pw.debug.table_from_markdown("""
        a | b | __time__ | __diff__
        1 | 2 |     2    |     1
        1 | 2 |     4    |    -1
    """)
    with pytest.warns(UserWarning, match="not append-only"):
        t.groupby(t.a).reduce(t.a, latest=pw.reducers.latest(t.b))
    appended = pw.debug.table_from_markdown("""
        a | b
        1 | 2
    """)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        appended.groupby(appended.a).reduce(appended.a, latest=pw.reducers.latest(appended.b))
        t.groupby(t.a).reduce(t.a, earliest=pw.reducers.earliest(t.b))


# --- the examples of docs/reducers.md -------------------------------------------------------


def _doc_examples() -> list[tuple[str, str]]:
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "reducers.md").read_text()
    return re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_doc_example(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, expected = _doc_examples()[index]
    exec(compile(code, f"docs/reducers.md example {index}", "exec"), {})  # noqa: S102
    printed = [line.rstrip() for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [line.rstrip() for line in expected.strip().splitlines()]


class Count(pw.BaseCustomAccumulator):
    def __init__(self, count: int) -> None:
        self.count = count

    @classmethod
    def from_row(cls, row: list[Any]) -> Count:
        return cls(1)

    def update(self, other: Count) -> None:
        self.count += other.count

    def compute_result(self) -> int:
        return self.count


def test_removal_under_another_id_on_both_reduce_paths() -> None:
    # Plain int results: small deltas take the Python path, big ones the frame path; both
    # count the removal of a never-inserted row against the equal values.
    counted = pw.reducers.udf_reducer(Count)
    lines = ["pet | age | __time__ | __diff__"]
    lines += [f"dog | {i} | 2 | 1" for i in range(400)]  # a big first delta
    lines += ["dog | 7 | 4 | -1", "dog | 1000 | 6 | 1", "cat | 1 | 6 | 1", "cat | 1 | 8 | -1"]
    t = pw.debug.table_from_markdown("\n".join(lines))
    result = t.groupby(t.pet).reduce(
        t.pet, c=counted(t.age), e=counted(), n=pw.reducers.count(), s=pw.reducers.sum(t.age)
    )
    total = sum(range(400))
    assert stream(result) == [
        (2, "dog", 400, 400, 400, total, 1),
        (4, "dog", 399, 399, 399, total - 7, 1),
        (4, "dog", 400, 400, 400, total, -1),
        (6, "cat", 1, 1, 1, 1, 1),
        (6, "dog", 399, 399, 399, total - 7, -1),
        (6, "dog", 400, 400, 400, total + 993, 1),
        (8, "cat", 1, 1, 1, 1, -1),
    ]
