"""Column expressions: every kind, on static data and on update streams, plus bad input."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

import deltaflow as pw

STREAM = """
      | a  | b   | s   | __time__ | __diff__
    1 | 1  | 2.5 | foo | 2        | 1
    2 | 4  | 0.5 | bar | 2        | 1
    1 | 1  | 2.5 | foo | 4        | -1
    1 | 7  | -1.5| baz | 4        | 1
    3 | -3 | 8.0 | qux | 4        | 1
    2 | 4  | 0.5 | bar | 6        | -1
"""


def _norm(value: Any) -> Any:
    if isinstance(value, float) and not math.isnan(value):
        return round(value, 9)
    return value


def _changes(stream: list[tuple[int, dict[str, Any], int]], columns: list[str]) -> Counter:
    """The consolidated multiset of (time, id, values, diff) of a stream."""
    total: Counter = Counter()
    for time, row, diff in stream:
        total[(time, row["id"], tuple(_norm(row[c]) for c in columns))] += diff
    return Counter({key: diff for key, diff in total.items() if diff})


def check_stream(
    source: pw.Table, result: pw.Table, expected: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """``result`` (a row-wise projection of ``source``) must change exactly as ``expected``
    applied to every change of ``source`` implies (same ids, times and diffs)."""
    columns = result.column_names()
    implied: list[tuple[int, dict[str, Any], int]] = []
    for time, row, diff in pw.debug.table_to_stream(source):
        implied.append((time, {"id": row["id"], **expected(row)}, diff))
    got = pw.debug.table_to_stream(result)
    assert _changes(got, columns) == _changes(implied, columns)


def values(table: pw.Table) -> list[tuple]:
    """The final rows of a table as sorted tuples of column values."""
    (ids, columns) = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return sorted((tuple(_norm(columns[n][i]) for n in names) for i in ids), key=repr)


def stream_table() -> pw.Table:
    return pw.debug.table_from_markdown(STREAM)


# ------------------------------------------------------------------------------------------
# Column references
# ------------------------------------------------------------------------------------------


def test_column_references_all_spellings() -> None:
    t = stream_table()
    r = t.select(x=t.a, y=t["a"], z=pw.this.a, w=pw.this["s"], v=t["s"])
    check_stream(
        t,
        r,
        lambda row: {"x": row["a"], "y": row["a"], "z": row["a"], "w": row["s"], "v": row["s"]},
    )


def test_positional_references_keep_names_and_with_columns() -> None:
    t = stream_table()
    r = t.select(t.a, pw.this.s).with_columns(a=pw.this.a * 10, c=pw.this.s)
    assert r.column_names() == ["a", "s", "c"]
    check_stream(t, r, lambda row: {"a": row["a"] * 10, "s": row["s"], "c": row["s"]})


# ------------------------------------------------------------------------------------------
# Arithmetic
# ------------------------------------------------------------------------------------------


def test_int_arithmetic_on_stream() -> None:
    t = stream_table()
    r = t.select(
        add=t.a + 2,
        sub=10 - t.a,
        mul=t.a * t.a,
        div=t.a / 2,
        fdiv=t.a // 2,
        mod=t.a % 3,
        pw_=t.a**2,
        neg=-t.a,
        ab=abs(t.a),
    )
    assert r.schema.typehints() == {
        "add": int,
        "sub": int,
        "mul": int,
        "div": float,
        "fdiv": int,
        "mod": int,
        "pw_": int,
        "neg": int,
        "ab": int,
    }
    check_stream(
        t,
        r,
        lambda row: {
            "add": row["a"] + 2,
            "sub": 10 - row["a"],
            "mul": row["a"] ** 2,
            "div": row["a"] / 2,
            "fdiv": row["a"] // 2,
            "mod": row["a"] % 3,
            "pw_": row["a"] ** 2,
            "neg": -row["a"],
            "ab": abs(row["a"]),
        },
    )


def test_float_and_mixed_arithmetic_on_stream() -> None:
    t = stream_table()
    r = t.select(
        add=t.a + t.b, mul=t.b * 2, div=t.b / t.a, fdiv=t.b // 1, mod=t.b % 2, pw_=t.b**2, neg=-t.b
    )
    assert set(r.schema.typehints().values()) == {float}
    check_stream(
        t,
        r,
        lambda row: {
            "add": row["a"] + row["b"],
            "mul": row["b"] * 2,
            "div": row["b"] / row["a"],
            "fdiv": row["b"] // 1,
            "mod": row["b"] % 2,
            "pw_": row["b"] ** 2,
            "neg": -row["b"],
        },
    )


def test_floor_division_and_modulo_follow_python_signs() -> None:
    t = pw.debug.table_from_markdown("""
        a  | b
        -7 | 2
        7  | -2
        -7 | -2
    """)
    assert values(t.select(t.a, t.b, q=t.a // t.b, m=t.a % t.b)) == sorted(
        [(a, b, a // b, a % b) for a, b in [(-7, 2), (7, -2), (-7, -2)]], key=repr
    )


def test_string_concatenation_and_repetition() -> None:
    t = stream_table()
    r = t.select(c=t.s + "!", d="<" + t.s, e=t.s * 2)
    check_stream(t, r, lambda row: {"c": row["s"] + "!", "d": "<" + row["s"], "e": row["s"] * 2})


class _Times(pw.Schema):
    when: pw.DateTimeNaive
    utc: pw.DateTimeUtc
    span: pw.Duration


def _times_table() -> pw.Table:
    return pw.debug.table_from_rows(
        _Times,
        [
            (
                pd.Timestamp("2024-01-01 10:00"),
                pd.Timestamp("2024-01-01 10:00", tz="UTC"),
                pd.Timedelta("90min"),
            ),
            (
                pd.Timestamp("2023-12-31 23:59:59.5"),
                pd.Timestamp("2000-02-29", tz="UTC"),
                pd.Timedelta("-1s"),
            ),
        ],
    )


def test_datetime_and_duration_arithmetic() -> None:
    t = _times_table()
    r = t.select(
        later=t.when + t.span,
        earlier=t.when - t.span,
        utc_later=t.utc + t.span,
        gap=t.when - pd.Timestamp("2023-12-31"),
        utc_gap=t.utc - t.utc,
        double=t.span * 2,
        rdouble=3 * t.span,
        half=t.span // 2,
        ratio=t.span / t.span,
        whole=t.span // pd.Timedelta("30min"),
        rest=t.span % pd.Timedelta("1h"),
        total=t.span + t.span,
        shifted=t.span + t.when,
    )
    hints = r.schema.typehints()
    assert hints["later"] is pw.DateTimeNaive and hints["utc_later"] is pw.DateTimeUtc
    assert hints["gap"] is pw.Duration and hints["ratio"] is float and hints["whole"] is int
    rows = {row["later"]: row for row in _dict_rows(r)}
    first = rows[pd.Timestamp("2024-01-01 11:30")]
    assert first["earlier"] == pd.Timestamp("2024-01-01 08:30")
    assert first["utc_later"] == pd.Timestamp("2024-01-01 11:30", tz="UTC")
    assert first["gap"] == pd.Timedelta("1 days 10:00:00")
    assert first["utc_gap"] == pd.Timedelta(0)
    assert first["double"] == pd.Timedelta("3h") and first["rdouble"] == pd.Timedelta("270min")
    assert first["half"] == pd.Timedelta("45min") and first["ratio"] == 1.0
    assert first["whole"] == 3 and first["rest"] == pd.Timedelta("30min")
    assert first["total"] == pd.Timedelta("3h")
    assert first["shifted"] == pd.Timestamp("2024-01-01 11:30")
    second = rows[pd.Timestamp("2023-12-31 23:59:58.5")]
    assert second["gap"] == pd.Timedelta("23:59:59.5")
    assert second["whole"] == -1  # floor division of -1 s by 30 min


def _dict_rows(table: pw.Table) -> list[dict[str, Any]]:
    ids, columns = pw.debug.table_to_dicts(table)
    return [{name: columns[name][i] for name in table.column_names()} for i in ids]


def test_datetime_arithmetic_on_stream() -> None:
    t = pw.debug.table_from_markdown(
        """
          | when                | __time__ | __diff__
        1 | 2024-01-01T10:00:00 | 2        | 1
        1 | 2024-01-01T10:00:00 | 4        | -1
        1 | 2024-01-02T10:00:00 | 4        | 1
    """,
        schema=pw.schema_from_types(when=pw.DateTimeNaive),
    )
    r = t.select(next=t.when + pd.Timedelta("1D"))
    check_stream(t, r, lambda row: {"next": row["when"] + pd.Timedelta("1D")})


# ------------------------------------------------------------------------------------------
# Comparisons and boolean operators
# ------------------------------------------------------------------------------------------


def test_comparisons_on_stream() -> None:
    t = stream_table()
    r = t.select(
        eq=t.a == 4,
        ne=t.a != 4,
        lt=t.a < t.b,
        le=t.a <= 1,
        gt=t.b > 0,
        ge=t.b >= 2.5,
        seq=t.s == "baz",
        slt=t.s < "c",
    )
    assert set(r.schema.typehints().values()) == {bool}
    check_stream(
        t,
        r,
        lambda row: {
            "eq": row["a"] == 4,
            "ne": row["a"] != 4,
            "lt": row["a"] < row["b"],
            "le": row["a"] <= 1,
            "gt": row["b"] > 0,
            "ge": row["b"] >= 2.5,
            "seq": row["s"] == "baz",
            "slt": row["s"] < "c",
        },
    )


def test_boolean_operators_and_filter_on_stream() -> None:
    t = stream_table()
    r = t.select(
        both=(t.a > 0) & (t.b > 0),
        either=(t.a > 5) | (t.b > 5),
        one=(t.a > 0) ^ (t.b > 0),
        no=~(t.a > 0),
    )
    check_stream(
        t,
        r,
        lambda row: {
            "both": row["a"] > 0 and row["b"] > 0,
            "either": row["a"] > 5 or row["b"] > 5,
            "one": (row["a"] > 0) != (row["b"] > 0),
            "no": not row["a"] > 0,
        },
    )
    kept = t.filter((pw.this.a > 0) & (pw.this.s != "foo"))
    got = [(time, row["s"], diff) for time, row, diff in pw.debug.table_to_stream(kept)]
    assert sorted(got) == [(2, "bar", 1), (4, "baz", 1), (6, "bar", -1)]


def test_expression_without_truth_value() -> None:
    t = stream_table()
    with pytest.raises(TypeError, match="truth value"):
        bool(t.a > 1)


# ------------------------------------------------------------------------------------------
# None handling
# ------------------------------------------------------------------------------------------

OPTIONAL_STREAM = """
      | x    | y    | __time__ | __diff__
    1 | 1    | None | 2        | 1
    2 | None | 5    | 2        | 1
    3 | None | None | 2        | 1
    1 | 1    | None | 4        | -1
    1 | 2    | 3    | 4        | 1
    3 | None | None | 6        | -1
"""


def _first_not_none(*items: Any) -> Any:
    return next((v for v in items if v is not None), None)


def test_is_none_coalesce_require_on_stream() -> None:
    t = pw.debug.table_from_markdown(OPTIONAL_STREAM)
    r = t.select(
        xn=t.x.is_none(),
        yn=t.y.is_not_none(),
        eqn=t.x == None,  # noqa: E711
        c=pw.coalesce(t.x, t.y, 0),
        c2=pw.coalesce(t.x, t.y),
        req=pw.require(t.x + 100, t.y),
    )
    hints = r.schema.typehints()
    assert hints["c"] is int and hints["xn"] is bool
    assert hints["c2"] == int | None and hints["req"] == int | None
    check_stream(
        t,
        r,
        lambda row: {
            "xn": row["x"] is None,
            "yn": row["y"] is not None,
            "eqn": row["x"] is None,
            "c": _first_not_none(row["x"], row["y"], 0),
            "c2": _first_not_none(row["x"], row["y"]),
            "req": None if row["x"] is None or row["y"] is None else row["x"] + 100,
        },
    )


def test_arithmetic_propagates_none() -> None:
    t = pw.debug.table_from_markdown(OPTIONAL_STREAM)
    r = t.select(s=t.x + t.y)
    assert r.schema.typehints()["s"] == int | None
    check_stream(
        t,
        r,
        lambda row: {"s": None if row["x"] is None or row["y"] is None else row["x"] + row["y"]},
    )


def test_unwrap_on_stream_and_failure() -> None:
    t = pw.debug.table_from_markdown(OPTIONAL_STREAM)
    present = t.filter(t.x.is_not_none())
    r = present.select(v=pw.unwrap(pw.this.x) * 2)
    assert r.schema.typehints()["v"] is int
    check_stream(present, r, lambda row: {"v": row["x"] * 2})
    with pytest.raises(ValueError, match="unwrap"):
        pw.debug.table_to_stream(t.select(v=pw.unwrap(t.x)))


# ------------------------------------------------------------------------------------------
# if_else, cast, Json conversions
# ------------------------------------------------------------------------------------------


def test_if_else_on_stream() -> None:
    t = stream_table()
    r = t.select(v=pw.if_else(t.a > 2, t.a, t.b), w=pw.if_else(t.s == "foo", None, t.s))
    hints = r.schema.typehints()
    assert hints["v"] is float and hints["w"] == str | None
    check_stream(
        t,
        r,
        lambda row: {
            "v": float(row["a"] if row["a"] > 2 else row["b"]),
            "w": None if row["s"] == "foo" else row["s"],
        },
    )


def test_cast_on_stream() -> None:
    t = stream_table()
    r = t.select(
        f=pw.cast(float, t.a),
        i=pw.cast(int, t.b),
        s=pw.cast(str, t.a),
        fs=pw.cast(str, t.b),
        bs=pw.cast(str, t.a > 1),
        bi=pw.cast(bool, t.a),
        ts=t.a.to_string(),
    )
    assert r.schema.typehints() == {
        "f": float,
        "i": int,
        "s": str,
        "fs": str,
        "bs": str,
        "bi": bool,
        "ts": str,
    }
    check_stream(
        t,
        r,
        lambda row: {
            "f": float(row["a"]),
            "i": int(row["b"]),
            "s": str(row["a"]),
            "fs": repr(row["b"]),
            "bs": str(row["a"] > 1),
            "bi": bool(row["a"]),
            "ts": str(row["a"]),
        },
    )


def test_cast_str_to_numbers() -> None:
    t = pw.debug.table_from_markdown(
        """
        n   | f
        12  | 2.5
        -3  | 1e3
    """,
        schema=pw.schema_from_types(n=str, f=str),
    )
    assert values(t.select(n=pw.cast(int, t.n), f=pw.cast(float, t.f))) == [(-3, 1000.0), (12, 2.5)]


class _JsonRows(pw.Schema):
    j: pw.Json


def _json_table() -> pw.Table:
    return pw.debug.table_from_rows(
        _JsonRows,
        [
            (pw.Json({"i": 3, "f": 1.5, "s": "x", "b": True, "l": [10, 20], "n": None}),),
            (pw.Json({"i": -1, "f": 2, "s": "y", "b": False, "l": [30], "n": None}),),
        ],
    )


def test_json_indexing_and_as_conversions() -> None:
    t = _json_table()
    r = t.select(
        i=t.j["i"].as_int(),
        f=t.j["f"].as_float(),
        s=t.j["s"].as_str(),
        b=t.j["b"].as_bool(),
        first=t.j["l"][0].as_int(),
        n=t.j["n"].as_int(),
        missing=t.j.get("zzz"),
        raw=t.j["l"],
        iu=t.j["i"].as_int(unwrap=True),
    )
    hints = r.schema.typehints()
    assert hints["i"] == int | None and hints["iu"] is int and hints["raw"] is pw.Json
    assert values(
        r.select(pw.this.i, pw.this.f, pw.this.s, pw.this.b, pw.this.first, pw.this.n, pw.this.iu)
    ) == [(-1, 2.0, "y", False, 30, None, -1), (3, 1.5, "x", True, 10, None, 3)]
    rows = sorted(_dict_rows(r), key=lambda row: row["i"])
    assert rows[0]["raw"] == pw.Json([30]) and rows[1]["raw"] == pw.Json([10, 20])
    assert rows[0]["missing"] is None  # .get() of a missing key: None, as in Pathway


def test_json_conversion_of_wrong_kind_fails_at_run_time() -> None:
    t = _json_table()
    with pytest.raises(ValueError, match="cannot convert"):
        pw.debug.table_to_stream(t.select(v=t.j["s"].as_int()))


def test_json_as_int_on_non_json_column_fails_at_definition() -> None:
    t = stream_table()
    with pytest.raises(TypeError, match=r"can only be applied to JSON columns.*int"):
        t.select(v=t.a.as_int())


# ------------------------------------------------------------------------------------------
# apply, udf
# ------------------------------------------------------------------------------------------


def test_apply_and_apply_with_type_on_stream() -> None:
    t = stream_table()

    def describe(a: int, s: str) -> str:
        return f"{s}:{a}"

    r = t.select(
        d=pw.apply(describe, t.a, s=t.s),
        n=pw.apply_with_type(len, int, t.s),
        u=pw.apply(lambda x: x * 2, t.a),
    )
    hints = r.schema.typehints()
    assert hints["d"] is str and hints["n"] is int
    check_stream(
        t, r, lambda row: {"d": f"{row['s']}:{row['a']}", "n": len(row["s"]), "u": row["a"] * 2}
    )


def test_udf_decorators_on_stream() -> None:
    @pw.udf
    def plus(a: int, b: float) -> float:
        return a + b

    @pw.udf(return_type=str)
    def shout(s):  # noqa: ANN001, ANN202 - the type comes from return_type
        return s.upper() + "!"

    t = stream_table()
    r = t.select(p=plus(t.a, t.b), s=shout(t.s), k=plus(t.a, b=1.0))
    hints = r.schema.typehints()
    assert hints["p"] is float and hints["s"] is str
    check_stream(
        t,
        r,
        lambda row: {"p": row["a"] + row["b"], "s": row["s"].upper() + "!", "k": row["a"] + 1.0},
    )


def test_udf_propagate_none() -> None:
    calls: list[Any] = []

    @pw.udf(propagate_none=True)
    def inc(x: int) -> int:
        calls.append(x)
        return x + 1

    t = pw.debug.table_from_markdown(OPTIONAL_STREAM)
    r = t.select(v=inc(t.x))
    assert r.schema.typehints()["v"] == int | None
    check_stream(t, r, lambda row: {"v": None if row["x"] is None else row["x"] + 1})
    assert None not in calls


def test_udf_exception_names_function_and_row() -> None:
    @pw.udf
    def invert(a: int) -> float:
        return 1 / (a - 4)

    t = stream_table()
    with pytest.raises(pw.UdfError, match=r"invert.*\(4\).*ZeroDivisionError"):
        pw.debug.table_to_stream(t.select(v=invert(t.a)))


def test_apply_returning_wrong_type_fails_clearly() -> None:
    t = stream_table()
    r = t.select(v=pw.apply_with_type(lambda s: s, int, t.s))
    with pytest.raises(TypeError, match="returned 'foo', which is not of its declared type int"):
        pw.debug.table_to_stream(r)


# ------------------------------------------------------------------------------------------
# Tuples, pointers
# ------------------------------------------------------------------------------------------


def test_make_tuple_and_indexing_on_stream() -> None:
    t = stream_table()
    r = t.select(tup=pw.make_tuple(t.a, t.s, None)).select(
        tup=pw.this.tup,
        first=pw.this.tup[0],
        second=pw.this.tup[1],
        last=pw.this.tup[-1],
        got=pw.this.tup.get(5, "none"),
    )
    hints = r.schema.typehints()
    assert hints["first"] is int and hints["second"] is str
    check_stream(
        t,
        r,
        lambda row: {
            "tup": (row["a"], row["s"], None),
            "first": row["a"],
            "second": row["s"],
            "last": None,
            "got": "none",
        },
    )


def test_tuple_index_out_of_range_fails_at_definition() -> None:
    t = stream_table()
    pair = t.select(p=pw.make_tuple(t.a, t.s))
    with pytest.raises(IndexError, match="index 2 is out of range"):
        pair.select(v=pair.p[2])


def test_pointer_from_matches_ids_keyed_by_the_same_values() -> None:
    t = stream_table()
    keyed = t.with_id_from(t.s)
    r = t.select(p=t.pointer_from(t.s), s=t.s)
    assert r.schema.typehints()["p"] == pw.Pointer[str]
    by_value = {row["s"]: row["p"] for row in _dict_rows(r)}
    ids, columns = pw.debug.table_to_dicts(keyed)
    assert {columns["s"][i]: i for i in ids} == by_value
    pointers = {value: _pointer_of(value) for value in ("foo", "bar", "baz", "qux")}
    assert pointers["baz"] == by_value["baz"]
    check_stream(t, r, lambda row: {"p": pointers[row["s"]], "s": row["s"]})


def _pointer_of(value: str) -> pw.Pointer:
    single = pw.debug.table_from_markdown(f"s\n{value}")
    ((pointer,),) = [
        tuple(row.values()) for row in _dict_rows(single.select(p=single.pointer_from(single.s)))
    ]
    return pointer


def test_pointer_from_optional() -> None:
    t = pw.debug.table_from_markdown(OPTIONAL_STREAM)
    r = t.select(p=t.pointer_from(t.x, optional=True))
    assert r.schema.typehints()["p"] == pw.Pointer[int] | None
    rows = _dict_rows(t.select(t.x, p=t.pointer_from(t.x, optional=True)))
    assert all((row["p"] is None) == (row["x"] is None) for row in rows)


# ------------------------------------------------------------------------------------------
# Bad input is rejected where the pipeline is defined
# ------------------------------------------------------------------------------------------


def test_unknown_column_names_column_and_table() -> None:
    t = stream_table()
    with pytest.raises(KeyError, match=r"no column 'nope'.*columns are a, b, s"):
        t.nope  # noqa: B018
    with pytest.raises(KeyError, match=r"no column 'nope'"):
        t["nope"]
    with pytest.raises(
        (KeyError, TypeError),
        match=r"table_from_markdown.*'nope'|'nope'.*"
        r"table_from_markdown",
    ):
        t.select(v=pw.this.nope + 1)


def test_str_plus_int_names_columns_and_table() -> None:
    t = stream_table()
    with pytest.raises(TypeError, match=r"table_from_markdown.*\+.*str.*int.*s \+ a"):
        t.select(v=t.s + t.a)


def test_non_bool_filter_is_rejected() -> None:
    t = stream_table()
    with pytest.raises(TypeError, match=r"filter on table table_from_markdown.*bool.*int"):
        t.filter(t.a)


def test_if_else_needs_bool_condition() -> None:
    t = stream_table()
    with pytest.raises(TypeError, match="if_else needs a bool condition"):
        t.select(v=pw.if_else(t.a, 1, 2))


def test_incompatible_if_else_and_coalesce_branches() -> None:
    t = stream_table()
    with pytest.raises(TypeError, match="incompatible types"):
        t.select(v=pw.if_else(t.a > 1, t.s, t.a))
    with pytest.raises(TypeError, match="incompatible types"):
        t.select(v=pw.coalesce(t.s, t.a))


def test_bad_comparison_and_boolean_operator() -> None:
    t = stream_table()
    with pytest.raises(TypeError, match="cannot compare str with int"):
        t.select(v=t.s < t.a)
    with pytest.raises(TypeError, match="operator & needs two bool"):
        t.select(v=t.s & (t.a > 1))
    with pytest.raises(TypeError, match="operator ~ needs a bool"):
        t.select(v=~t.s)


def test_unsupported_cast_is_rejected() -> None:
    t = _times_table()
    with pytest.raises(TypeError, match=r"cannot cast Duration to int"):
        t.select(v=pw.cast(int, t.span))


def test_column_of_another_table_is_rejected() -> None:
    t = stream_table()
    other = pw.debug.table_from_markdown("z\n1")
    with pytest.raises((ValueError, TypeError), match=r"uses columns of table"):
        t.select(v=other.z)


def test_positional_non_reference_is_rejected() -> None:
    t = stream_table()
    with pytest.raises(TypeError, match="name computed columns with keywords"):
        t.select(t.a + 1)


def test_division_by_zero_stops_the_run_naming_the_expression() -> None:
    t = pw.debug.table_from_markdown("a | b | f\n1 | 0 | 0.0\n4 | 2 | 2.0")
    for expression in (t.a / t.b, t.a // t.b, t.a % t.b, t.a / t.f):
        with pytest.raises(ZeroDivisionError, match=r"division by zero in a .* b|a / f"):
            pw.debug.table_to_pandas(t.select(r=expression))


def test_branches_not_taken_are_not_evaluated() -> None:
    t = pw.debug.table_from_markdown("a | b\n1 | 0\n4 | 2")
    calls: list[int] = []

    def divide(a: int, b: int) -> int:
        calls.append(b)
        return a // b

    r = t.select(
        d=pw.if_else(t.b != 0, t.a // t.b, -1),
        u=pw.if_else(t.b == 0, -1, pw.apply(divide, t.a, t.b)),
        c=pw.coalesce(pw.if_else(t.b == 0, 7, None), pw.apply_with_type(divide, int, t.a, t.b)),
        o=pw.if_else(t.b != 0, pw.apply(lambda a: (a,), t.a), None),
    )
    assert sorted(pw.debug.table_to_pandas(r).itertuples(index=False, name=None)) == [
        (-1, -1, 7, None),
        (2, 2, 2, (4,)),
    ]
    assert calls == [2, 2]  # only the row with b == 2 reached the UDFs


def test_json_as_conversions_with_defaults() -> None:
    t = _json_table()
    r = t.select(
        x=t.j.get("zzz").as_int(default=7),
        y=t.j["n"].as_str(default="none"),
        z=t.j.get("i").as_int(default=0),
    )
    assert r.schema.typehints() == {"x": int, "y": str, "z": int}
    assert values(r) == [(7, "none", -1), (7, "none", 3)]
    with pytest.raises(TypeError, match="type of default .* is not compatible"):
        t.select(v=t.j["i"].as_int(default="seven"))


def test_json_indexing_a_missing_key_gives_json_null() -> None:
    t = _json_table()
    r = t.select(a=t.j["nope"], b=t.j["l"][5], c=t.j["l"]["key"])
    rows = _dict_rows(r)
    assert all(row[c] == pw.Json(None) for row in rows for c in "abc")


def test_expressions_print_like_pathway() -> None:
    t = pw.debug.table_from_markdown(
        """
        a | b
        1 | 2
        """
    )
    other = t.copy()
    assert repr(t.a) == "<table1>.a"
    assert repr(t.a + other.b * 2) == "(<table1>.a + (<table2>.b * 2))"
    assert repr(-t.a) == "(-<table1>.a)"
    assert (
        repr(pw.if_else(t.a == 1, other.a, t.b))
        == "pathway.if_else((<table1>.a == 1), <table2>.a, <table1>.b)"
    )
    assert repr(pw.cast(float, t.a)) == "pathway.cast(FLOAT, <table1>.a)"
    assert repr(pw.reducers.argmax(t.a)) == "pathway.reducers.argmax(<table1>.a, pathway.this.id)"
    assert repr(pw.reducers.tuple(t.a)) == "pathway.reducers.tuple(<table1>.a, skip_nones=False)"
    assert repr(t.a.get(2, "x")) == "(<table1>.a).get(2, 'x')"
    assert repr(t.pointer_from(t.a)) == "<table1>.pointer_from(<table1>.a)"
    assert repr(t.b.num.abs()) == "(<table1>.b).num.abs()"

    def twice(x: int) -> int:
        return 2 * x

    assert repr(pw.apply(twice, t.a)) == "pathway.apply(twice, <table1>.a)"


def test_json_values_follow_python_protocols() -> None:
    value = pw.Json({"items": [1, 2, 3], "n": 42, "f": 1.5})
    assert len(value["items"]) == 3
    assert list(reversed(value["items"])) == [pw.Json(3), pw.Json(2), pw.Json(1)]
    assert int(value["n"]) == 42 and float(value["f"]) == 1.5 and bin(value["n"]) == "0b101010"
    with pytest.raises(TypeError, match="has no len"):
        len(value["n"])


def test_matrix_product_of_array_columns() -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {
            "a": [np.ones((2, 3)), np.arange(3.0).reshape(1, 3)],
            "b": [np.ones((3, 2)), np.ones((3, 1))],
            "u": [np.array([1, 2]), np.array([3, 4])],
            "v": [np.array([3, 4]), np.array([1, 1])],
        }
    )
    t = pw.debug.table_from_pandas(frame)
    r = t.select(m=t.a @ t.b, d=t.u @ t.v)
    # as in Pathway: always an array (0-d here) of elements of unknown type
    assert r.typehints()["d"] == np.ndarray[tuple[int, ...], np.dtype[Any]]
    rows = pw.debug.table_to_pandas(r)
    assert sorted(int(value) for value in rows["d"]) == [7, 11]
    assert all(value.shape == () for value in rows["d"])
    shapes = sorted(value.shape for value in rows["m"])
    assert shapes == [(1, 1), (2, 2)]
    with pytest.raises(TypeError, match="operator @ needs two numpy array columns"):
        t.select(x=t.u @ 2)


def test_json_value_conversions_refuse_other_kinds() -> None:
    assert pw.Json(3).as_float() == 3.0 and pw.Json([1]).as_list() == [1]
    for value, method in [
        (None, "as_int"),
        (True, "as_int"),
        ("42", "as_int"),
        (1, "as_bool"),
        ({"a": 1}, "as_list"),
    ]:
        with pytest.raises(ValueError, match="Cannot convert Json"):
            getattr(pw.Json(value), method)()


def test_strptime_percent_f_needs_the_dot() -> None:
    import pandas as pd

    t = pw.debug.table_from_pandas(pd.DataFrame({"a": ["2023-03-26 16:43:21-12"]}))
    t.select(t=pw.this.a.dt.strptime("%Y-%m-%d %H:%M:%S-%f"))
    with pytest.raises(ValueError, match='using "%f" without the leading dot'):
        pw.run_all()


def test_json_get_default_must_be_json() -> None:
    t = _json_table()
    with pytest.raises(TypeError, match="Default must be of type"):
        t.select(r=t.j.get("i", 42))


def test_tuples_compare_lexicographically_and_concatenate() -> None:
    t = pw.debug.table_from_markdown(
        """
        a | b | c
        1 | 2 | 1
        3 | 4 | 5
        """
    )
    pairs = t.select(x=pw.make_tuple(t.a, t.b), y=pw.make_tuple(t.c, t.b))
    r = pairs.select(eq=pairs.x == pairs.y, lt=pairs.x < pairs.y, both=pairs.x + pairs.y)
    assert values(r) == [(False, True, (3, 4, 5, 4)), (True, False, (1, 2, 1, 2))]


def test_python_tuples_of_expressions_are_make_tuple() -> None:
    t = pw.debug.table_from_markdown(
        """
        a | b
        1 | 2
        """
    )
    r = t.select(c=(pw.this.a, pw.this.b), d=(pw.this.a, 2))
    assert r.typehints() == {"c": tuple[int, int], "d": tuple[int, int]}
    assert values(r) == [((1, 2), (1, 2))]
