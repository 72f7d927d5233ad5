"""``to_string()`` of every kind of value, and namespace methods on columns of a wrong type."""

from __future__ import annotations

from typing import Any

import pytest
from tests._util import snapshot, stream

import deltaflow as pw


def test_to_string_of_optional_values_writes_none() -> None:
    t = pw.debug.table_from_markdown("""
    a  | f   | b
    10 | 1.5 | True
       |     |
    -2 | 0.1 | False
    """)
    result = t.select(a=t.a.to_string(), f=t.f.to_string(), b=t.b.to_string())
    assert result.typehints() == {"a": str, "f": str, "b": str}
    assert snapshot(result) == [
        ("-2", "0.1", "False"),
        ("10", "1.5", "True"),
        ("None", "None", "None"),
    ]


def test_to_string_of_datetimes_is_iso_with_nanoseconds() -> None:
    t = pw.debug.table_from_markdown("""
    n | t
    1 | 2019-12-31T23:49:59.0001+0100
    2 | 2023-03-26T12:00:00.000000001+0100
    """)
    utc = t.select(t.n, t=t.t.dt.strptime("%Y-%m-%dT%H:%M:%S.%f%z"))
    naive = utc.select(utc.n, t=utc.t.dt.to_naive_in_timezone("UTC"))
    assert snapshot(utc.select(s=utc.t.to_string())) == [
        ("2019-12-31T22:49:59.000100000+0000",),
        ("2023-03-26T11:00:00.000000001+0000",),
    ]
    assert snapshot(naive.select(s=naive.t.to_string())) == [
        ("2019-12-31T22:49:59.000100000",),
        ("2023-03-26T11:00:00.000000001",),
    ]


def test_to_string_of_json_is_compact() -> None:
    t = pw.debug.table_from_markdown("""
    a
    1
    """)
    data = t.select(j=pw.apply_with_type(lambda a: pw.Json({"a": a, "l": [1, 2]}), pw.Json, t.a))
    assert snapshot(data.select(s=data.j.to_string())) == [('{"a":1,"l":[1,2]}',)]


def test_to_string_on_an_update_stream() -> None:
    t = pw.debug.table_from_markdown("""
    id | a | __time__ | __diff__
    1  | 1 |     2    |    1
    1  | 1 |     4    |   -1
    1  |   |     4    |    1
    """)
    assert stream(t.select(s=t.a.to_string())) == [(2, "1", 1), (4, "1", -1), (4, "None", 1)]


def test_to_string_prints_as_a_method() -> None:
    t = pw.debug.table_from_markdown("""
    a
    1
    """)
    assert repr(t.a.to_string()) == "(<table1>.a).to_string()"


@pytest.mark.parametrize(
    "method",
    [
        lambda c: c.dt.nanosecond(),
        lambda c: c.dt.seconds(),
        lambda c: c.dt.strftime("%Y"),
        lambda c: c.dt.strptime("%Y"),
        lambda c: c.str.lower(),
        lambda c: c.num.abs() + c.str.len(),
    ],
)
def test_a_method_missing_for_the_type_is_an_attribute_error(method: Any) -> None:
    t = pw.debug.table_from_markdown("""
    a
    1
    """)
    with pytest.raises(AttributeError):
        t.select(x=method(t.a))
    with pytest.raises(TypeError):  # also an ExpressionError, as before
        t.select(x=method(t.a))


def test_namespace_methods_print_their_arguments_as_given() -> None:
    t = pw.debug.table_from_markdown("""
    ts                  | n
    2024-01-01T00:00:00 | 1
    """).select(d=pw.this.ts.dt.strptime("%Y-%m-%dT%H:%M:%S"), n=pw.this.n)
    assert repr(t.d.dt.round("D")) == "(<table1>.d).dt.round('D')"
    assert repr(t.d.dt.timestamp(unit="s")) == "(<table1>.d).dt.timestamp('s')"
    assert repr(t.n.dt.from_timestamp("ms")) == "(<table1>.n).dt.from_timestamp('ms')"
    assert repr(t.d.dt.strftime("%Y")) == "(<table1>.d).dt.strftime('%Y')"
    with pytest.warns(DeprecationWarning) as caught:
        t.d.dt.timestamp()
    assert caught[0].filename == __file__  # the warning points at the caller's line
