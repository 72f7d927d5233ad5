"""Row ids as user code sees them: ``pw.Pointer`` values (not integers)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from tests.test_stateful_properties import SETTINGS, check, update_streams

import deltaflow as pw
from deltaflow import _types as t


def _table() -> pw.Table:
    return pw.debug.table_from_markdown("""
          | a | b
        1 | 1 | x
        2 | 2 | y
        3 | 2 | z
    """)


def test_pointer_is_an_opaque_value_not_an_int() -> None:
    keys, _ = pw.debug.table_to_dicts(_table())
    p, q = sorted(keys)[:2]
    assert type(p) is pw.Pointer and not isinstance(p, int)
    assert p == pw.Pointer(int(p)) and p != q and hash(p) == hash(pw.Pointer(int(p)))
    assert p != int(p) and int(p) != p  # never equal to an integer
    assert p < q and q > p and p <= p and sorted([q, p]) == [p, q]
    assert bool(p)
    for misuse in (
        lambda: p + 1,
        lambda: p < 5,
        lambda: [0, 1][p],
        lambda: hex(p),  # type: ignore[index]
        lambda: -p,
    ):  # type: ignore[operator]
        with pytest.raises(TypeError):
            misuse()


def test_pointer_text_forms_and_copies() -> None:
    p = pw.Pointer(2**127 + 5)
    text = str(p)
    assert text.startswith("^") and len(text) == 27 and f"{p}" == text
    assert repr(p) == f'Pointer("{text}")'
    assert p.short() == text[:8] + "..."
    assert pickle.loads(pickle.dumps(p)) == p and copy.deepcopy(p) == p
    assert repr((p, 1)) == f'(Pointer("{text}"), 1)'


def test_udfs_and_table_to_dicts_see_pointers() -> None:
    table = _table()
    seen: list[Any] = []

    @pw.udf
    def kind(p: pw.Pointer) -> str:
        seen.append(p)
        return type(p).__name__

    result = table.select(k=kind(table.id), p=table.id, tp=pw.make_tuple(table.id, table.a))
    keys, columns = pw.debug.table_to_dicts(result)
    assert set(columns["k"].values()) == {"Pointer"}
    assert all(type(k) is pw.Pointer for k in keys)
    assert all(columns["p"][k] == k for k in keys)
    assert all(type(columns["tp"][k][0]) is pw.Pointer for k in keys)
    assert sorted(seen) == sorted(keys)


def test_pointers_returned_by_udfs_are_stored_and_looked_up() -> None:
    table = _table()
    first = table.groupby(table.a).reduce(table.a, b=pw.reducers.min(table.b))

    @pw.udf
    def same(p: pw.Pointer) -> pw.Pointer:
        return p

    looked = table.select(table.a, b=first.ix(same(first.pointer_from(table.a))).b)
    _, columns = pw.debug.table_to_dicts(looked)
    assert sorted(zip(columns["a"].values(), columns["b"].values(), strict=True)) == [
        (1, "x"),
        (2, "y"),
        (2, "y"),
    ]


def test_printing_shows_pointer_text() -> None:
    table = _table().select(p=pw.this.id)
    keys, _ = pw.debug.table_to_dicts(table)
    full = pw.debug.table_to_pandas(table)
    assert set(full["p"]) == set(keys)
    assert all(type(v) is pw.Pointer for v in full["p"])


def test_pointer_column_written_as_text(tmp_path: Any) -> None:
    table = _table().select(p=pw.this.id)
    pw.io.csv.write(table, str(tmp_path / "out.csv"))
    pw.run()
    written = pl.read_csv(tmp_path / "out.csv")["p"].to_list()
    keys, _ = pw.debug.table_to_dicts(table)
    assert sorted(written) == sorted(str(k) for k in keys)


def test_subscribe_gets_pointer_keys_and_values_on_updates() -> None:
    table = pw.debug.table_from_markdown("""
          | a | __time__ | __diff__
        1 | 1 |        2 |        1
        2 | 2 |        2 |        1
        1 | 1 |        4 |       -1
        1 | 5 |        4 |        1
    """).select(pw.this.a, p=pw.this.id)
    events: list[tuple[Any, Any, bool]] = []
    pw.io.subscribe(
        table,
        on_change=lambda key, row, time, is_addition: events.append((key, row["p"], is_addition)),
    )
    pw.run()
    assert len(events) == 4
    assert all(type(key) is pw.Pointer and key == p for key, p, _ in events)
    assert sorted(flag for _, _, flag in events) == [False, True, True, True]


def test_python_reducers_return_pointers_on_both_paths() -> None:
    # argmin/argmax give Pointers to Python code and store them back as ids.
    table = pw.debug.table_from_markdown("""
          | g | v | __time__ | __diff__
        1 | 1 | 5 |        2 |        1
        2 | 1 | 3 |        2 |        1
        3 | 2 | 7 |        2 |        1
        2 | 1 | 3 |        4 |       -1
    """)
    result = table.groupby(table.g).reduce(
        table.g, low=pw.reducers.argmin(table.v), ids=pw.reducers.tuple(table.id)
    )
    keys, columns = pw.debug.table_to_dicts(result)
    by_group = {columns["g"][k]: k for k in keys}
    source_keys, source = pw.debug.table_to_dicts(table)
    label_of = {source["v"][k]: k for k in source_keys}
    assert columns["low"][by_group[1]] == label_of[5]
    assert columns["low"][by_group[2]] == label_of[7]
    assert all(type(p) is pw.Pointer for k in keys for p in columns["ids"][k])


def test_values_and_storage_convert_both_ways() -> None:
    values = [pw.Pointer(2**127 + 1), None, pw.Pointer(3)]
    series = t.series_from_values("p", values, t.Optional(t.POINTER))
    assert series.dtype == pl.UInt128
    assert t.values_from_series(series) == values


@SETTINGS
@given(stream=update_streams())
def test_pointer_reducers_match_recomputation(stream: list[Any]) -> None:
    def program(table: pw.Table) -> pw.Table:
        return table.groupby(table.k).reduce(
            table.k, low=pw.reducers.argmin(table.v), high=pw.reducers.max(table.id)
        )

    check(program, stream)


def test_compute_and_print_shows_pointer_text(capsys: pytest.CaptureFixture[str]) -> None:
    table = _table().select(p=pw.this.id)
    keys, _ = pw.debug.table_to_dicts(table)
    pw.debug.compute_and_print(table, short_pointers=False)
    printed = capsys.readouterr().out
    assert all(str(k) in printed for k in keys) and "Pointer(" not in printed
    pw.debug.compute_and_print(table)
    shortened = capsys.readouterr().out
    assert all(k.short() in shortened for k in keys) and str(keys[0]) not in shortened


def test_typed_pointer_columns_written_as_text_by_json_and_sqlite(tmp_path: Any) -> None:
    import json
    import sqlite3

    table = _table()
    grouped = (
        table.groupby(table.a)
        .reduce(table.a)
        .select(pw.this.a, me=pw.this.id, pair=pw.make_tuple(pw.this.id, pw.this.a))
    )
    assert grouped.schema.typehints()["me"] == pw.Pointer[int]
    pw.io.jsonlines.write(grouped, str(tmp_path / "out.jsonl"))
    pw.io.sqlite.write(
        grouped.select(pw.this.a, pw.this.me),
        str(tmp_path / "db.sqlite"),
        "ids",
        init_mode="create_if_not_exists",
    )
    pw.run()
    keys, _columns = pw.debug.table_to_dicts(grouped)
    expected = sorted(str(k) for k in keys)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["me"] for r in rows) == expected
    assert sorted(r["pair"][0] for r in rows) == expected
    with sqlite3.connect(tmp_path / "db.sqlite") as connection:
        stored = [row[0] for row in connection.execute("select me from ids")]
    assert sorted(stored) == expected
