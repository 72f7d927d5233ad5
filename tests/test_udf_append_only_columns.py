"""Non-deterministic UDFs over append-only columns: a row id's value is computed once.

A schema may declare some columns append-only (``pw.column_definition(append_only=True)``) in
a table whose rows are still deleted and updated. A non-deterministic UDF reading only such
columns then keeps each row's value for good: deleting the row retracts that value, and an
update of another column or a later reinsertion serves it again without a call.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests._util import stream

import deltaflow as pw
from deltaflow import plan
from deltaflow.column_properties import append_only_columns, declared_append_only


class _Schema(pw.Schema):
    a: int = pw.column_definition(append_only=True)
    b: int


_UPDATES = """
  | a | b | __time__ | __diff__
1 | 1 | 2 |     2    |     1
2 | 2 | 3 |     4    |     1
1 | 1 | 2 |     6    |    -1
1 | 1 | 4 |     6    |     1
1 | 1 | 4 |     8    |    -1
1 | 1 | 7 |    10    |     1
"""


def _counting() -> tuple[Any, Counter[int]]:
    calls: Counter[int] = Counter()

    @pw.udf
    def tag(a: int) -> int:
        calls[a] += 1
        return 100 * a + calls[a]

    return tag, calls


def test_value_survives_updates_and_reinsertion() -> None:
    t = pw.debug.table_from_markdown(_UPDATES, schema=_Schema)
    tag, calls = _counting()
    result = t.select(x=tag(pw.this.a), b=pw.this.b)
    assert stream(result) == [
        (2, 101, 2, 1),
        (4, 201, 3, 1),
        (6, 101, 2, -1),
        (6, 101, 4, 1),
        (8, 101, 4, -1),
        (10, 101, 7, 1),
    ]
    assert calls == {1: 1, 2: 1}  # one call per row id, never again


def test_expression_of_append_only_columns_and_with_columns_keep_it() -> None:
    t = pw.debug.table_from_markdown(_UPDATES, schema=_Schema)
    tag, calls = _counting()
    derived = t.with_columns(c=pw.this.a * 10)
    result = derived.select(x=tag(pw.this.c + pw.this.a), b=pw.this.b)
    values = {row[1] for row in stream(result)}
    assert values == {1101, 2201}
    assert calls == {11: 1, 22: 1}


def test_other_arguments_make_the_udf_recompute() -> None:
    t = pw.debug.table_from_markdown(_UPDATES, schema=_Schema)
    calls: Counter[int] = Counter()

    @pw.udf
    def tag2(a: int, b: int) -> int:
        calls[a] += 1
        return 100 * a + calls[a]

    result = t.select(x=tag2(pw.this.a, pw.this.b))
    # b changes, so row 1 is computed at each insertion; deletions retract the kept value.
    assert stream(result) == [
        (2, 101, 1),
        (4, 201, 1),
        (6, 101, -1),
        (6, 102, 1),
        (8, 102, -1),
        (10, 103, 1),
    ]


def test_filter_on_a_changing_column_forgets_the_property() -> None:
    t = pw.debug.table_from_markdown(_UPDATES, schema=_Schema)
    tag, calls = _counting()
    kept = t.filter(pw.this.a > 0).select(x=tag(pw.this.a))
    assert calls == {}
    assert {row[1] for row in stream(kept)} == {101, 201}
    tag2, calls2 = _counting()
    forgot = t.filter(pw.this.b > 0).select(x=tag2(pw.this.a))
    assert {row[1] for row in stream(forgot)} == {101, 102, 103, 201}
    assert calls2 == {1: 3, 2: 1}


def test_a_whole_append_only_schema_is_a_table_promise() -> None:
    class AllAppendOnly(pw.Schema, append_only=True):
        a: int
        b: int

    assert declared_append_only(AllAppendOnly) == frozenset()
    assert declared_append_only(_Schema) == frozenset({"a"})
    assert declared_append_only(None) == frozenset()


def test_plan_knowledge() -> None:
    t = pw.debug.table_from_markdown(_UPDATES, schema=_Schema)
    assert append_only_columns(t._node) == {"a", "_id"}
    selected = t.select(pw.this.a, c=pw.this.a + 1, d=pw.this.a + pw.this.b, b=pw.this.b)
    assert append_only_columns(selected._node) == {"a", "c", "_id"}
    assert append_only_columns(t.filter(pw.this.a > 0)._node) == {"a", "_id"}
    assert append_only_columns(t.filter(pw.this.b > 0)._node) == {"_id"}
    grouped = t.groupby(pw.this.a).reduce(pw.this.a)
    assert append_only_columns(grouped._node) == {"_id"}
    assert isinstance(t._node, plan.InputNode)


def test_deterministic_udf_is_unchanged() -> None:
    t = pw.debug.table_from_markdown(_UPDATES, schema=_Schema)
    calls: Counter[int] = Counter()

    @pw.udf(deterministic=True)
    def double(a: int) -> int:
        calls[a] += 1
        return 2 * a

    result = t.select(x=double(pw.this.a), b=pw.this.b)
    assert {(row[1], row[2]) for row in stream(result) if row[-1] > 0} == {
        (2, 2),
        (4, 3),
        (2, 4),
        (2, 7),
    }


def test_connector_schema_declares_it(tmp_path: Any) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1, "b": 2}\n{"a": 2, "b": 3}\n')
    t = pw.io.jsonlines.read(path, schema=_Schema, mode="static")
    assert append_only_columns(t._node) == {"a", "_id"}


@st.composite
def _histories(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    """(time, id, b, diff) changes of rows whose ``a`` is fixed per id (a = 10 * id)."""
    live: dict[int, int] = {}
    changes = []
    for time in range(2, 2 + 2 * draw(st.integers(1, 6)), 2):
        for row in draw(st.lists(st.integers(1, 4), max_size=4, unique=True)):
            if row in live:
                changes.append((time, row, live.pop(row), -1))
                if draw(st.booleans()):  # an update: reinsert with another b
                    live[row] = draw(st.integers(0, 9))
                    changes.append((time, row, live[row], 1))
            else:
                live[row] = draw(st.integers(0, 9))
                changes.append((time, row, live[row], 1))
    return changes


@settings(max_examples=25, deadline=None)
@given(_histories())
def test_stream_matches_one_value_per_id(changes: list[tuple[int, int, int, int]]) -> None:
    lines = "\n".join(
        f"{row} | {10 * row} | {b} | {time} | {diff}" for time, row, b, diff in changes
    )
    t = pw.debug.table_from_markdown(f"  | a | b | __time__ | __diff__\n{lines}\n", schema=_Schema)
    tag, calls = _counting()
    result = t.select(a=pw.this.a, x=tag(pw.this.a), b=pw.this.b)
    got = stream(result)
    # Every change carries the id's first value; each id was computed once.
    assert all(x == 100 * a + 1 for _, a, x, _, _ in got)
    assert calls == {10 * row: 1 for row in {row for _, row, _, _ in changes}}
    # Consolidated per time, the stream is the input's changes with x added.
    net: Counter[tuple[int, int, int, int]] = Counter()
    for time, row, b, diff in changes:
        net[(time, 10 * row, 1000 * row + 1, b)] += diff
    expected = sorted((*key, diff) for key, diff in net.items() if diff)
    assert sorted(got) == expected


def test_docs_example(capsys: Any) -> None:
    import pathlib

    text = (pathlib.Path(__file__).parent.parent / "docs" / "udfs.md").read_text()
    section = text.split("### Append-only arguments", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/udfs.md append-only example", "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out
    assert [line.split() for line in printed.strip().splitlines()] == [
        line.split() for line in shown.strip().splitlines()
    ]
