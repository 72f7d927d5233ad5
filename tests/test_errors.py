"""Errors as values: terminate_on_error=False, fill_error, remove_errors, the error logs."""

from __future__ import annotations

import json
from typing import Any

import pytest

import deltaflow as pw
from deltaflow import debug
from deltaflow.errors import ERROR


def rows(*tables: pw.Table, terminate_on_error: bool | None = False) -> list[list[tuple[Any, ...]]]:
    """The final rows of each table (sorted by their text), computed in one run."""
    sinks = debug.capture(*tables, terminate_on_error=terminate_on_error)
    out = []
    for table, sink in zip(tables, sinks, strict=True):
        state = debug._snapshot(sink, table._columns)
        names = list(table._columns)
        values = [tuple(row[n] for n in names) for row in state.iter_rows(named=True)]
        out.append(sorted(values, key=repr))
    return out


def messages(log_rows: list[tuple[Any, ...]]) -> list[str]:
    return sorted(row[1] for row in log_rows)


@pytest.fixture
def numbers() -> pw.Table:
    return pw.debug.table_from_markdown("""
        a | b
        1 | 0
        6 | 2
        3 | 3
    """)


def test_division_by_zero_is_an_error_value(numbers: pw.Table) -> None:
    result = numbers.select(numbers.a, q=numbers.a // numbers.b, f=numbers.a / numbers.b)
    table, log = rows(result, pw.global_error_log())
    assert table == sorted([(1, ERROR, ERROR), (6, 3, 3.0), (3, 1, 1.0)], key=repr)
    assert messages(log) == ["division by zero", "division by zero"]
    assert all("Line: result = numbers.select(" in row[2] for row in log)


def test_terminate_on_error_default_raises(numbers: pw.Table) -> None:
    result = numbers.select(q=numbers.a // numbers.b)
    with pytest.raises(ZeroDivisionError):
        pw.debug.table_to_dicts(result)
    with pytest.raises(ZeroDivisionError):
        rows(result, terminate_on_error=True)


def test_errors_propagate_except_where_handled(numbers: pw.Table) -> None:
    q = numbers.select(numbers.a, q=numbers.a // numbers.b)
    result = q.select(
        plus=q.q + 1,
        filled=pw.fill_error(q.q, -1),
        taken=pw.if_else(q.a > 1, q.q, 100),  # the error branch is not taken for a=1
        cond=pw.if_else(q.q > 1, 1, 2),
        isnone=q.q.is_none(),
        coalesced=pw.coalesce(q.q, 5),
        chained=pw.fill_error(q.q * 2 + 1, q.a),
    )
    (table,) = rows(result)
    assert table == sorted(
        [
            (ERROR, -1, 100, ERROR, ERROR, ERROR, 1),
            (4, 3, 3, 1, False, 3, 7),
            (2, 1, 1, 2, False, 1, 3),
        ],
        key=repr,
    )


def test_fill_error_within_one_select(numbers: pw.Table) -> None:
    result = numbers.select(x=pw.fill_error(numbers.a // numbers.b, -1))
    (table,) = rows(result)
    assert table == sorted([(-1,), (3,), (1,)], key=repr)


def test_filter_drops_rows_whose_condition_is_an_error(numbers: pw.Table) -> None:
    q = numbers.select(numbers.a, q=numbers.a // numbers.b)
    kept = q.filter(q.q > 0)
    other = q.filter(q.a > 2)  # an error in another column stays
    table, other_rows, log = rows(kept, other, pw.global_error_log())
    assert table == [(3, 1), (6, 3)]
    assert other_rows == sorted([(6, 3), (3, 1)], key=repr)
    assert messages(log) == [
        "division by zero",
        "row skipped: an Error value in the filter condition",
    ]


def test_remove_errors(numbers: pw.Table) -> None:
    q = numbers.select(numbers.a, q=numbers.a // numbers.b)
    (table,) = rows(q.remove_errors())
    assert table == [(3, 1), (6, 3)]
    (clean,) = rows(numbers.remove_errors())
    assert len(clean) == 3


def test_columns_cleared_of_errors_compute_as_ordinary_columns(numbers: pw.Table) -> None:
    # remove_errors leaves the column that held an error with none: arithmetic on it, a
    # reducer over it and a join on it see plain integers again.
    q = numbers.select(numbers.a, q=numbers.a // numbers.b).remove_errors()
    plus = q.select(q.q, r=q.q + 1, s=q.q * 2.5)
    total = q.reduce(total=pw.reducers.sum(q.q), n=pw.reducers.count())
    joined = q.join(numbers, q.q == numbers.a).select(q.q, numbers.b)
    table, sums, pairs, log = rows(plus, total, joined, pw.global_error_log())
    assert table == [(1, 2, 2.5), (3, 4, 7.5)]
    assert sums == [(4, 2)]
    assert pairs == [(1, 0), (3, 3)]
    assert messages(log) == ["division by zero"]


def test_udf_failures_and_wrong_return_types() -> None:
    table = pw.debug.table_from_markdown("""
        a
        1
        2
    """)

    @pw.udf
    def inverse(a: int) -> float:
        return 1 / (a - 1)

    @pw.udf
    def text(a: int) -> str:
        return "x" if a == 1 else a  # type: ignore[return-value]

    result = table.select(table.a, inv=inverse(table.a), s=text(table.a))
    out, log = rows(result, pw.global_error_log())
    assert out == sorted([(1, ERROR, "x"), (2, 1.0, ERROR)], key=repr)
    assert messages(log) == [
        "TypeError: an int is not a value of type String",
        "ZeroDivisionError: division by zero",
    ]


def test_unwrap_of_none_is_an_error() -> None:
    table = pw.debug.table_from_markdown("""
        a
        1
        2
    """)
    result = table.select(u=pw.unwrap(pw.if_else(table.a == 1, None, table.a)))
    out, log = rows(result, pw.global_error_log())
    assert out == sorted([(ERROR,), (2,)], key=repr)
    assert len(log) == 1 and "unwrap" in log[0][1]


def test_groupby_skips_error_keys_and_arguments() -> None:
    table = pw.debug.table_from_markdown("""
        a | b | k
        1 | 0 | 1
        2 | 1 | 1
        3 | 0 | 2
        4 | 2 | 2
    """)
    q = table.select(table.k, q=table.a // table.b)
    by_key = q.groupby(q.k).reduce(q.k, s=pw.reducers.sum(q.q))
    by_error = q.groupby(q.q).reduce(q.q, c=pw.reducers.count())
    sums, counts, log = rows(by_key, by_error, pw.global_error_log())
    assert sums == [(1, 2), (2, 2)]
    assert counts == [(2, 2)]
    assert messages(log).count("row skipped: an Error value in the grouping columns") == 2


def test_join_skips_rows_with_error_keys() -> None:
    left = pw.debug.table_from_markdown("""
        a | c
        1 | 1
        2 | 0
    """)
    right = pw.debug.table_from_markdown("""
        b
        1
    """)
    keyed = left.select(a=left.a // left.c)
    joined = keyed.join(right, keyed.a == right.b).select(keyed.a, right.b)
    out, log = rows(joined, pw.global_error_log())
    assert out == [(1, 1)]
    assert "row skipped: an Error value in the join condition" in messages(log)


def test_concat_keeps_errors(numbers: pw.Table) -> None:
    q = numbers.select(q=numbers.a // numbers.b)
    ok = numbers.select(q=numbers.a)
    (out,) = rows(q.concat_reindex(ok))
    assert out.count((ERROR,)) == 1 and len(out) == 6


def test_with_id_from_an_error_skips_the_row(numbers: pw.Table) -> None:
    out, log = rows(numbers.with_id_from(numbers.a // numbers.b), pw.global_error_log())
    assert sorted(out) == [(3, 3), (6, 2)]
    assert "row skipped: an Error value in the expression of its new id" in messages(log)


def test_local_error_log_takes_errors_of_its_block(numbers: pw.Table) -> None:
    with pw.local_error_log() as local:
        inside = numbers.select(x=numbers.a // numbers.b)
    outside = numbers.select(y=numbers.b // numbers.b)
    _, _, local_rows, global_rows = rows(inside, outside, local, pw.global_error_log())
    assert len(local_rows) == 1 and len(global_rows) == 1
    assert "inside = numbers.select" in local_rows[0][2]
    assert "outside = numbers.select" in global_rows[0][2]


def test_errors_of_the_log_are_not_fed_back(numbers: pw.Table) -> None:
    result = numbers.select(x=pw.fill_error(numbers.a // numbers.b, -1))
    parsed = pw.global_error_log().select(m=pw.fill_error(pw.this.message.str.parse_int(), -1))
    _, parsed_rows = rows(result, parsed)
    assert parsed_rows == [(-1,)]


def test_sinks_skip_rows_with_errors(numbers: pw.Table, tmp_path: Any) -> None:
    q = numbers.select(numbers.a, q=numbers.a // numbers.b)
    seen: list[dict[str, Any]] = []
    pw.io.subscribe(q, on_change=lambda key, row, time, is_addition: seen.append(row))
    pw.io.jsonlines.write(q, tmp_path / "out.jsonl")
    pw.io.csv.write(q, tmp_path / "out.csv")
    log: list[str] = []
    pw.io.subscribe(
        pw.global_error_log(),
        on_change=lambda key, row, time, is_addition: log.append(row["message"]),
    )
    pw.run(terminate_on_error=False)
    assert sorted(r["a"] for r in seen) == [3, 6]
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted((x["a"], x["q"]) for x in lines) == [(3, 1), (6, 3)]
    csv_lines = (tmp_path / "out.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and "Error" not in "".join(csv_lines)
    assert log.count("row skipped: an Error value cannot be written to an output") == 3
    assert log.count("division by zero") == 1


def test_update_stream_error_row_deleted_later() -> None:
    table = pw.debug.table_from_markdown("""
          | a | b | __time__ | __diff__
        1 | 6 | 2 |     2    |     1
        2 | 5 | 0 |     4    |     1
        2 | 5 | 0 |     8    |    -1
    """)
    q = table.select(table.a, c=table.a // table.b)
    out, log = rows(q, pw.global_error_log())
    assert out == [(6, 3)]
    # the deletion is computed again: the log, append-only, has both failures
    assert messages(log) == ["division by zero", "division by zero"]


def test_compute_and_print_shows_error(numbers: pw.Table, capsys: Any) -> None:
    pw.debug.compute_and_print(
        numbers.select(q=numbers.a // numbers.b), include_id=False, terminate_on_error=False
    )
    assert "Error" in capsys.readouterr().out


def test_no_errors_costs_no_object_columns(numbers: pw.Table) -> None:
    result = numbers.select(x=pw.fill_error(numbers.a + 1, 0))
    sinks = debug.capture(result, terminate_on_error=False)
    assert all(batch.schema["x"] != pw.Json for _, batch in sinks[0].batches)
    assert str(sinks[0].batches[0][1].schema["x"]) == "Int64"


class Numbers(pw.Schema):
    a: int
    b: int


class KeyedNumbers(pw.Schema):
    a: int
    b: int = pw.column_definition(primary_key=True)


def test_csv_bad_values_are_errors_and_logged(tmp_path: Any) -> None:
    path = tmp_path / "in.csv"
    path.write_text("a,b\n1,2\nx,3\n4,y\n")
    plain = pw.io.csv.read(path, schema=Numbers, mode="static")
    out, log = rows(
        plain.select(a=pw.fill_error(plain.a, -1), b=pw.fill_error(plain.b, -2)),
        pw.global_error_log(),
    )
    assert out == sorted([(1, 2), (-1, 3), (4, -2)], key=repr)
    assert messages(log) == [
        'text "x" does not parse as field "a" of type int: invalid digit found in string',
        'text "y" does not parse as field "b" of type int: invalid digit found in string',
    ]
    pw.clear_graph()
    keyed = pw.io.csv.read(path, schema=KeyedNumbers, mode="static")
    out, log = rows(keyed.select(a=pw.fill_error(keyed.a, -1), b=keyed.b), pw.global_error_log())
    assert out == sorted([(1, 2), (-1, 3)], key=repr)
    assert messages(log)[0].startswith("row skipped: its primary key has no value (")


def test_csv_bad_values_stop_the_default_run_as_before(tmp_path: Any) -> None:
    path = tmp_path / "in.csv"
    path.write_text("a,b\n1,2\nx,3\n")
    table = pw.io.csv.read(path, schema=Numbers, mode="static")
    # terminate_on_error=True: the bad line is skipped and reported, as without this feature
    assert pw.debug.table_to_dicts(table)[0] and len(pw.debug.table_to_dicts(table)[0]) == 1


def test_jsonlines_and_python_bad_values(tmp_path: Any) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1, "b": 2}\n{"a": "x", "b": 3}\n')
    table = pw.io.jsonlines.read(path, schema=Numbers, mode="static")
    out, log = rows(table.select(a=pw.fill_error(table.a, -1), b=table.b), pw.global_error_log())
    assert out == sorted([(1, 2), (-1, 3)], key=repr)
    assert messages(log) == ['JSON value "x" does not fit field "a" of type int']

    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(a=1, b=2)
            self.next(a=2.5, b=3)
            self.next(a=3)

    pw.clear_graph()
    table = pw.io.python.read(Subject(), schema=Numbers)
    out, log = rows(
        table.select(a=pw.fill_error(table.a, -1), b=pw.fill_error(table.b, -2)),
        pw.global_error_log(),
    )
    assert out == sorted([(1, 2), (-1, 3), (3, -2)], key=repr)
    assert messages(log) == [
        'field "b" is missing and has no default value',
        'value 2.5 does not fit field "a" of type int: TypeError: a float is not a value of '
        "type Int",
    ]


def test_ix_miss_is_an_error_not_none() -> None:
    pointers = pw.debug.table_from_markdown("""
        a
        1
        3
    """).with_columns(p=pw.this.pointer_from(pw.this.a))
    target = pw.debug.table_from_markdown("""
        c
        10
    """)
    keyed = target.with_id_from(pw.this.c // 10)
    result = pointers.select(pointers.a, c=keyed.ix(pointers.p).c)
    out, log = rows(result, pw.global_error_log())
    assert out == sorted([(1, 10), (3, ERROR)], key=repr)
    assert len(log) == 1 and log[0][1].startswith("ix: no row with id")


def test_docs_example_prints_as_documented(capsys: Any) -> None:
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "errors.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "errors.md", "exec"), {})  # noqa: S102 - our own documentation
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    documented = [line[2:].rstrip() for line in block.splitlines() if line.startswith("# ")]
    assert printed == documented


def test_operators_without_error_handling_leave_error_rows_out(numbers: pw.Table) -> None:
    q = numbers.select(numbers.a, q=numbers.a // numbers.b)
    update = pw.debug.table_from_markdown("""
        a | q
        7 | 7
    """)
    flat = q.select(items=pw.make_tuple(q.a, q.q)).flatten(pw.this.items)
    updated = q.update_rows(update)
    flat_rows, updated_rows, log = rows(flat, updated, pw.global_error_log())
    assert sorted(flat_rows) == [(1,), (3,), (3,), (6,)]
    assert sorted(updated_rows) == [(3, 1), (6, 3), (7, 7)]
    skipped = [
        m
        for m in messages(log)
        if m.startswith("row skipped: ") and m.endswith("cannot take its Error value")
    ]
    assert len(skipped) == 2  # one row left out by flatten, one by update_rows


def test_branches_computed_in_python_take_errors_only_from_the_taken_branch() -> None:
    table = pw.debug.table_from_markdown("""
        a | b
        1 | 0
        6 | 2
    """)
    result = table.select(
        kept=pw.if_else(table.b == 0, pw.make_tuple(table.a), pw.make_tuple(table.a // table.b)),
        failed=pw.if_else(table.b != 0, pw.make_tuple(table.a), pw.make_tuple(table.a // table.b)),
        first=pw.coalesce(pw.make_tuple(table.a), pw.make_tuple(table.a // table.b)),
    )
    out, log = rows(result, pw.global_error_log())
    assert out == sorted([((1,), ERROR, (1,)), ((3,), (6,), (6,))], key=repr)
    assert messages(log) == ["division by zero"]  # only where a taken branch divides by 0


def test_environment_gives_the_default(numbers: pw.Table, monkeypatch: Any) -> None:
    monkeypatch.setenv("PATHWAY_TERMINATE_ON_ERROR", "false")
    (out,) = rows(numbers.select(q=numbers.a // numbers.b), terminate_on_error=None)
    assert (ERROR,) in out
    with pytest.raises(ZeroDivisionError):
        rows(numbers.select(q=numbers.a // numbers.b), terminate_on_error=True)


def test_casting_text_that_is_not_a_number() -> None:
    texts = pw.debug.table_from_markdown("""
        s
        12
        x
        1.5
    """)
    # Whitespace around a number is ignored; a text that is not one fails its own row only.
    spaced = texts.select(s=pw.this.s + " ")
    result = spaced.select(i=pw.cast(int, pw.this.s), f=pw.cast(float, pw.this.s))
    table, log = rows(result, pw.global_error_log())
    assert table == sorted([(12, 12.0), (ERROR, ERROR), (ERROR, 1.5)], key=repr)
    assert len(log) == 3
    assert all("pw.cast" in message for message in messages(log))
    with pytest.raises(ValueError, match=r"pw\.cast"):
        pw.debug.table_to_dicts(texts.select(i=pw.cast(int, pw.this.s)))
