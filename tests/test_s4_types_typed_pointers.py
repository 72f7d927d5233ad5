"""Typed pointers: ``pw.Pointer[int]``, the id type of tables and ``Schema.id``."""

from __future__ import annotations

from typing import Any

import pytest

import deltaflow as pw
from deltaflow import _types as t


def _table() -> pw.Table:
    return pw.debug.table_from_markdown("""
        a | b | c
        1 | x | 1.5
        2 | y | 2.5
        2 | y | 3.5
    """)


def test_annotations_give_typed_pointer_columns() -> None:
    class Keyed(pw.Schema):
        a: int = pw.column_definition(primary_key=True)

    class Plain(pw.Schema):
        a: int

    table = pw.Table.empty(
        p=pw.Pointer[int],
        q=pw.Pointer[int, str],
        r=pw.Pointer,
        s=pw.Pointer[Keyed],
        u=pw.Pointer[Plain],
        v=pw.Pointer[Any],
        w=pw.Pointer[int] | None,
    )
    hints = table.schema.typehints()
    assert hints["p"] == pw.Pointer[int] and hints["q"] == pw.Pointer[int, str]
    assert hints["r"] is pw.Pointer and hints["s"] == pw.Pointer[int]
    assert hints["u"] is pw.Pointer and hints["v"] == pw.Pointer[Any]
    assert t.describe(table._columns["w"]) == "Optional[Pointer[int]]"
    # Every pointer type is stored alike: as DTypes they are one type.
    assert table._columns["p"] == table._columns["q"] == t.POINTER


def test_schema_id_and_printing() -> None:
    class Keyed(pw.Schema):
        a: int = pw.column_definition(primary_key=True)
        b: str

    assert Keyed.id.dtype.typehint == pw.Pointer[int]
    assert str(Keyed).splitlines()[1].split("|")[0].strip() == "Pointer(INT)"
    assert _table().schema.id.dtype.typehint is pw.Pointer
    assert "ANY_POINTER" in str(_table().schema)


def test_ids_of_operations_say_whose_ids_they_are() -> None:
    table = _table()
    grouped = table.groupby(table.a, table.b).reduce(table.a, n=pw.reducers.count())
    assert grouped.schema.id.dtype.typehint == pw.Pointer[int, str]
    assert grouped.select(i=pw.this.id).schema.typehints()["i"] == pw.Pointer[int, str]
    assert grouped.filter(pw.this.n > 1).schema.id.dtype.typehint == pw.Pointer[int, str]
    assert table.reduce(n=pw.reducers.count()).schema.id.dtype.typehint == pw.Pointer[()]
    assert table.groupby(id=table.id).reduce().schema.id.dtype.typehint is pw.Pointer
    assert table.with_id_from(table.a).schema.id.dtype.typehint == pw.Pointer[int]
    assert (
        table.with_id_from(table.a, instance=table.b).schema.id.dtype.typehint
        == pw.Pointer[int, str]
    )
    pointers = table.select(
        p=table.pointer_from(table.a), q=table.pointer_from(table.a, table.b)
    ).schema.typehints()
    assert pointers == {"p": pw.Pointer[int], "q": pw.Pointer[int, str]}
    assert table.update_id_type(pw.Pointer[str]).schema.id.dtype.typehint == pw.Pointer[str]
    assert table.concat_reindex(table).schema.id.dtype.typehint is pw.Pointer


def test_primary_key_gives_the_id_type() -> None:
    class Keyed(pw.Schema):
        a: int = pw.column_definition(primary_key=True)
        b: str

    table = pw.debug.table_from_markdown(
        """
        a | b
        1 | x
    """,
        schema=Keyed,
    )
    assert table.schema.id.dtype.typehint == pw.Pointer[int]
    # ids of rows keyed by an int: pointer_from with an int finds them.
    found = table.select(same=table.pointer_from(table.a) == table.id)
    assert list(pw.debug.table_to_dicts(found)[1]["same"].values()) == [True]


def test_mismatched_pointer_types_fail_at_definition() -> None:
    a = pw.Table.empty(col=pw.Pointer[int])
    b = pw.Table.empty(col=pw.Pointer[str]).with_universe_of(a)
    c = pw.Table.empty(col=pw.Pointer[float]).with_universe_of(a)
    d = pw.Table.empty(col=pw.Pointer[Any]).with_universe_of(a)
    with pytest.raises(TypeError, match="Pointer\\[int\\].*Pointer\\[str\\]"):
        a.filter(a.col == b.col)
    with pytest.raises(TypeError):
        a.filter(a.col == c.col)  # int and float keys are different keys
    assert a.filter(a.col == d.col).column_names() == ["col"]
    with pytest.raises(TypeError):
        pw.Table.concat(
            pw.Table.empty().update_id_type(pw.Pointer[int]),
            pw.Table.empty().update_id_type(pw.Pointer[str]),
        )
    merged = pw.Table.concat(
        pw.Table.empty().update_id_type(pw.Pointer[int]),
        pw.Table.empty().update_id_type(pw.Pointer[Any]),
    )
    assert merged.schema.id.dtype.typehint == pw.Pointer[Any]
    with pytest.raises(TypeError):
        pw.Table.empty().update_id_type(int)


def test_ix_ref_with_a_key_of_another_shape_fails_at_definition() -> None:
    table = pw.Table.empty(a=int)
    index = table.groupby(pw.this.a).reduce(*pw.this)
    with pytest.raises(TypeError, match="Pointer\\[int, int\\]"):
        index.ix_ref(table.a, table.a)
    assert table.select(v=index.ix_ref(table.a).a).column_names() == ["v"]


def test_typed_ids_look_up_rows_on_update_streams() -> None:
    rows = pw.debug.table_from_markdown("""
          | k | v | __time__ | __diff__
        1 | 1 | 5 |        2 |        1
        2 | 2 | 7 |        2 |        1
        3 | 1 | 1 |        4 |        1
        2 | 2 | 7 |        6 |       -1
    """)
    totals = rows.groupby(rows.k).reduce(rows.k, total=pw.reducers.sum(rows.v))
    assert totals.schema.id.dtype.typehint == pw.Pointer[int]
    looked = rows.select(rows.k, total=totals.ix_ref(rows.k).total)
    _, columns = pw.debug.table_to_dicts(looked)
    assert sorted(zip(columns["k"].values(), columns["total"].values(), strict=True)) == [
        (1, 6),
        (1, 6),
    ]
