"""Result column types: tuple items, ``.get`` on tuples, ``declare_type`` from ``Any``."""

from __future__ import annotations

from typing import Any

import pytest

import deltaflow as pw


def _tuples() -> pw.Table:
    table = pw.debug.table_from_markdown("""
        a | b | c | s
        4 | 1 | 0 | x
        3 | 2 | 1 | y
    """)
    return table.select(
        pair=pw.make_tuple(pw.this.a, pw.this.b),
        mixed=pw.make_tuple(pw.this.a, pw.this.s),
        c=pw.this.c,
        s=pw.this.s,
    )


def _values(table: pw.Table, column: str) -> list[Any]:
    return sorted(pw.debug.table_to_dicts(table)[1][column].values())


def test_items_at_constant_indexes_have_the_element_type() -> None:
    table = _tuples()
    result = table.select(first=pw.this.mixed[0], last=pw.this.mixed[-1], got=pw.this.mixed.get(1))
    assert result.schema.typehints() == {"first": int, "last": str, "got": str}
    assert _values(result, "last") == ["x", "y"]


def test_items_at_computed_indexes() -> None:
    table = _tuples()
    same = table.select(
        r=pw.this.pair[pw.this.c],
        g=pw.this.pair.get(pw.this.c, default=0),
        o=pw.this.pair.get(pw.this.c),
    )
    assert same.schema.typehints() == {"r": int, "g": int, "o": int | None}
    assert _values(same, "r") == [2, 4]
    mixed = table.select(r=pw.this.mixed[pw.this.c], g=pw.this.pair.get(pw.this.c, default="none"))
    assert mixed.schema.typehints() == {"r": Any, "g": Any}


def test_constant_index_out_of_range() -> None:
    table = _tuples()
    with pytest.raises(IndexError, match="index 2"):
        table.select(r=pw.this.pair[2])
    with pytest.raises(IndexError):
        table.select(r=pw.this.pair[-3])
    with pytest.warns(UserWarning, match="default"):
        result = table.select(r=pw.this.pair.get(2, default=pw.this.s))
    assert result.schema.typehints() == {"r": str}
    assert _values(result, "r") == ["x", "y"]


def test_tuples_of_expressions_in_if_else_and_comparisons() -> None:
    table = pw.debug.table_from_markdown("""
        a | b
        1 | 2
        4 | 3
    """)
    result = table.select(
        z=pw.if_else(pw.this.a == 1, (pw.this.a, pw.this.b), (pw.this.b, pw.this.a)).get(0),
        lt=(pw.this.a, pw.this.b) < pw.make_tuple(pw.this.b, pw.this.a),
    )
    assert result.schema.typehints() == {"z": int, "lt": bool}
    _, columns = pw.debug.table_to_dicts(result)
    assert sorted(zip(columns["z"].values(), columns["lt"].values(), strict=True)) == [
        (1, True),
        (3, False),
    ]


def test_declare_type_from_any() -> None:
    table = pw.debug.table_from_markdown("""
          | a | __time__ | __diff__
        1 | 1 |        2 |        1
        2 | 2 |        2 |        1
        1 | 1 |        4 |       -1
        1 | 5 |        4 |        1
    """)

    @pw.udf
    def double(x):  # noqa: ANN001, ANN202 (no annotation: the result is Any)
        return x * 2

    raw = table.select(v=double(table.a))
    assert raw.schema.typehints() == {"v": Any}
    typed = raw.update_types(v=int)
    assert typed.schema.typehints() == {"v": int}
    assert _values(typed.select(w=pw.this.v + 1), "w") == [5, 11]
    optional = raw.select(v=pw.declare_type(int | None, pw.this.v))
    assert optional.schema.typehints() == {"v": int | None}
    empty = pw.debug.table_from_markdown("a").update_types(a=int)
    assert empty.schema.typehints() == {"a": int}


def test_declare_json_and_lists_from_any() -> None:
    table = pw.debug.table_from_markdown("""
        a
        1
        2
    """)

    @pw.udf
    def as_dict(x):  # noqa: ANN001, ANN202
        return {"a": x}

    @pw.udf
    def as_list(x):  # noqa: ANN001, ANN202
        return [x, x]

    declared = table.select(d=as_dict(table.a), l=as_list(table.a)).update_types(
        d=dict, l=list[int]
    )
    assert declared.schema.typehints() == {"d": pw.Json, "l": list[int]}
    _, columns = pw.debug.table_to_dicts(declared)
    assert sorted(v.value["a"] for v in columns["d"].values()) == [1, 2]
    assert all(type(v) is pw.Json for v in columns["d"].values())
    assert sorted(columns["l"].values()) == [(1, 1), (2, 2)]


def test_sequences_of_different_lengths_merge_into_lists() -> None:
    import pandas as pd

    table = pw.debug.table_from_pandas(pd.DataFrame({"col": [[1, 1, 3], [1]]}))
    assert table.schema.typehints() == {"col": list[int]}
    flat = table.flatten(pw.this.col)
    assert flat.schema.typehints() == {"col": int}
    assert sorted(pw.debug.table_to_dicts(flat)[1]["col"].values()) == [1, 1, 1, 3]


def test_declare_type_from_any_rejects_values_of_another_type() -> None:
    table = pw.debug.table_from_markdown("""
        a
        1
    """)

    @pw.udf
    def word(x):  # noqa: ANN001, ANN202
        return "not a number"

    declared = table.select(v=word(table.a)).update_types(v=int)
    with pytest.raises(TypeError, match="not a number"):
        pw.debug.table_to_dicts(declared)


def test_declare_type_between_other_types_still_fails() -> None:
    with pytest.raises(TypeError):
        pw.Table.empty(a=int).update_types(a=str)
