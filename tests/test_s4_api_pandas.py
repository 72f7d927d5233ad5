"""``pw.pandas_transformer``: whole-table pandas functions, kept up to date as inputs change."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests._util import snapshot, stream

import deltaflow as pw


class Total(pw.Schema):
    total: int


class Share(pw.Schema):
    share: float


def test_row_wise_result_keeps_the_input_ids() -> None:
    table = pw.debug.table_from_markdown("""
        | a  | b
      1 | 10 | 1
      2 | 20 | 2
    """)

    @pw.pandas_transformer(output_schema=Total)
    def add(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(frame["a"] + frame["b"])

    result = add(table)
    assert result.column_names() == ["total"]
    assert snapshot(result.with_universe_of(table).with_columns(a=table.a)) == [(11, 10), (22, 20)]


def test_whole_table_result_follows_every_change() -> None:
    table = pw.debug.table_from_markdown("""
        | v | __time__ | __diff__
      1 | 2 | 2        | 1
      2 | 6 | 2        | 1
      2 | 6 | 4        | -1
      2 | 8 | 4        | 1
      1 | 2 | 6        | -1
    """)

    @pw.pandas_transformer(output_schema=Share)
    def shares(frame: pd.DataFrame) -> pd.Series:
        return frame["v"] / frame["v"].sum()

    assert stream(shares(table)) == [
        (2, 0.25, 1),
        (2, 0.75, 1),
        (4, 0.2, 1),
        (4, 0.25, -1),
        (4, 0.75, -1),
        (4, 0.8, 1),
        (6, 0.2, -1),
        (6, 0.8, -1),
        (6, 1.0, 1),
    ]


def test_output_universe_gives_the_rows_of_the_chosen_argument() -> None:
    left = pw.debug.table_from_markdown("  | x\n1 | 5\n2 | 6\n3 | 7")
    right = pw.debug.table_from_markdown("  | y\n1 | 50\n3 | 70")

    class X(pw.Schema):
        x: int

    @pw.pandas_transformer(output_schema=X, output_universe="keys")
    def keep(values: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
        return values[values.index.isin(keys.index)]

    result = keep(left, right)
    assert snapshot(result + right) == [(5, 50), (7, 70)]

    @pw.pandas_transformer(output_schema=X, output_universe=0)
    def drop_one(values: pd.DataFrame) -> pd.DataFrame:
        return values.iloc[1:]

    dropped = drop_one(left)
    with pytest.raises(ValueError, match="output_universe"):
        pw.debug.table_to_dicts(dropped)


@pytest.mark.parametrize("bad", [-1, 1, "nope"])
def test_output_universe_must_name_an_argument(bad: int | str) -> None:
    class X(pw.Schema):
        x: int

    @pw.pandas_transformer(output_schema=X, output_universe=bad)
    def same(values: pd.DataFrame) -> pd.DataFrame:
        return values

    with pytest.raises(ValueError, match="output_universe"):
        same(pw.Table.empty(x=int))


def test_functions_without_tables_run_when_called() -> None:
    @pw.pandas_transformer(output_schema=Total)
    def numbers() -> pd.Series:
        return pd.Series([4, 5])

    labelled = pw.debug.table_from_markdown("  | total\n0 | 4\n1 | 5")
    result = numbers()
    assert snapshot(result) == [(4,), (5,)]
    assert sorted(pw.debug.table_to_dicts(result)[0]) == sorted(
        pw.debug.table_to_dicts(labelled)[0]
    )

    @pw.pandas_transformer(output_schema=Total)
    def repeated() -> pd.DataFrame:
        return pd.DataFrame({"total": [1, 2]}, index=[7, 7])

    with pytest.raises(ValueError, match="repeated"):
        repeated()


def test_wrong_output_width_and_schema_fail() -> None:
    with pytest.raises(TypeError, match="output_schema"):
        pw.pandas_transformer(output_schema=int)  # type: ignore[arg-type]

    @pw.pandas_transformer(output_schema=Total)
    def two_columns() -> pd.DataFrame:
        return pd.DataFrame({"a": [1], "b": [2]})

    with pytest.raises(ValueError, match="columns"):
        two_columns()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-3, 3), st.integers(1, 4)), max_size=10))
def test_update_stream_equals_recomputation_at_every_time(
    events: list[tuple[int, int, int]],
) -> None:
    """Each event sets key k to value v at time 2*slot (the last one per key and slot wins)."""
    final: dict[tuple[int, int], int] = {}
    for key, value, slot in events:
        final[(key, slot)] = value
    rows, state = [], {}
    for (key, slot), value in sorted(final.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if key in state:
            rows.append((key, state[key], 2 * slot, -1))
        rows.append((key, value, 2 * slot, 1))
        state[key] = value
    table = pw.debug.table_from_rows(
        pw.schema_from_types(k=int, v=int), rows, is_stream=True
    ).with_id_from(pw.this.k)

    @pw.pandas_transformer(output_schema=Total)
    def running(frame: pd.DataFrame) -> pd.Series:
        return frame["v"] * len(frame) + frame["k"]

    expected: list[tuple] = []
    before: dict[int, int] = {}
    current: dict[int, int] = {}
    for time in sorted({time for _, _, time, _ in rows}):
        for key, value, row_time, diff in rows:
            if row_time == time and diff > 0:
                current[key] = value
        after = {k: v * len(current) + k for k, v in current.items()}
        for key in set(before) | set(after):
            if before.get(key) != after.get(key):
                if key in before:
                    expected.append((time, before[key], -1))
                if key in after:
                    expected.append((time, after[key], 1))
        before = after
    assert stream(running(table)) == sorted(expected)
