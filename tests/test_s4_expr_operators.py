"""Column operators: their types, their values (checked against Python) and their errors."""

from __future__ import annotations

import datetime
import math
import operator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._util import snapshot, stream
from tests.test_stateful_properties import Event, check, update_streams

import deltaflow as pw

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)
INTS = st.integers(-(2**40), 2**40)


def _values(table: pw.Table, column: str) -> list[Any]:
    """The column's values in the order of the ``n`` column (the input position)."""
    _, columns = pw.debug.table_to_dicts(table)
    by_position = {columns["n"][key]: columns[column][key] for key in columns["n"]}
    return [by_position[i] for i in range(len(by_position))]


def _same_float(got: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(got)
    return got == expected and math.copysign(1, got) == math.copysign(1, expected)


def _pairs_table(pairs: list[tuple[Any, Any]], left: type, right: type) -> pw.Table:
    schema = pw.schema_from_types(n=int, a=left, b=right)
    return pw.debug.table_from_rows(schema, [(i, a, b) for i, (a, b) in enumerate(pairs)])


# --- values against Python ---------------------------------------------------------------


def _quotient(a: float, b: float) -> float:
    with np.errstate(over="ignore"):  # may overflow to inf, as ours does
        return float(np.float64(a) / np.float64(b))


@SETTINGS
@given(st.lists(st.tuples(FLOATS, FLOATS.filter(lambda x: x != 0)), min_size=1, max_size=12))
def test_float_arithmetic_matches_python(pairs: list[tuple[float, float]]) -> None:
    t = _pairs_table(pairs, float, float)
    result = t.select(
        t.n, div=t.a / t.b, mod=t.a % t.b, floordiv=t.a // t.b, lit=t.a / 1e9, mul=t.a * t.b
    )
    checks: dict[str, Any] = {
        "div": _quotient,
        "mod": operator.mod,
        "mul": operator.mul,
        # floor of the exact quotient (Pathway's rule; Python's // can be one less)
        "floordiv": lambda a, b: float(np.floor(_quotient(a, b))),
        "lit": lambda a, _: a / 1e9,
    }
    for name, expected in checks.items():
        got = _values(result, name)
        for (a, b), value in zip(pairs, got, strict=True):
            assert _same_float(value, expected(a, b)), (name, a, b, value)


@SETTINGS
@given(st.lists(st.tuples(INTS, FLOATS.filter(lambda x: x != 0)), min_size=1, max_size=12))
def test_mixed_int_float_arithmetic_matches_python(pairs: list[tuple[int, float]]) -> None:
    t = _pairs_table(pairs, int, float)
    result = t.select(t.n, mod=t.a % t.b, rmod=t.b % (t.a + 2**41), div=t.a / t.b)
    for (a, b), mod, rmod, div in zip(
        pairs, _values(result, "mod"), _values(result, "rmod"), _values(result, "div"), strict=True
    ):
        assert _same_float(mod, float(a) % b)
        assert _same_float(rmod, b % float(a + 2**41))
        assert _same_float(div, float(a) / b)


@SETTINGS
@given(st.lists(st.tuples(INTS, INTS.filter(lambda x: x != 0)), min_size=1, max_size=12))
def test_int_arithmetic_matches_python(pairs: list[tuple[int, int]]) -> None:
    t = _pairs_table(pairs, int, int)
    result = t.select(t.n, floordiv=t.a // t.b, mod=t.a % t.b, div=t.a / t.b)
    assert result.typehints()["floordiv"] is int and result.typehints()["div"] is float
    for (a, b), q, m, d in zip(
        pairs,
        _values(result, "floordiv"),
        _values(result, "mod"),
        _values(result, "div"),
        strict=True,
    ):
        assert (q, m) == (a // b, a % b)
        assert d == float(a) / float(b)


def _wrap64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-200, 200)), min_size=1, max_size=12
    )
)
def test_shifts_wrap_like_64_bit_ints(pairs: list[tuple[int, int]]) -> None:
    t = _pairs_table(pairs, int, int)
    result = t.select(t.n, left=t.a << t.b, right=t.a >> t.b)
    for (a, b), left, right in zip(
        pairs, _values(result, "left"), _values(result, "right"), strict=True
    ):
        count = b % 64  # the shift count is taken modulo 64
        assert left == _wrap64(a << count)
        assert right == a >> count


def _saturated(nanos: float) -> int:
    if math.isnan(nanos):
        return 0
    return max(
        -(2**63),
        min(2**63 - 1, int(nanos) if math.isfinite(nanos) else (2**63 if nanos > 0 else -(2**64))),
    )


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(-(10**15), 10**15),
            st.floats(-1e6, 1e6, allow_nan=False).filter(lambda x: x != 0),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_duration_times_and_over_float_truncate(pairs: list[tuple[int, float]]) -> None:
    t = _pairs_table([(pd.Timedelta(nanoseconds=a), b) for a, b in pairs], pw.Duration, float)
    result = t.select(t.n, mul=t.a * t.b, rmul=t.b * t.a, div=t.a / t.b)
    assert result.typehints()["mul"] is pw.Duration
    for (a, b), mul, rmul, div in zip(
        pairs, _values(result, "mul"), _values(result, "rmul"), _values(result, "div"), strict=True
    ):
        assert mul.value == rmul.value == _saturated(float(a) * b)  # toward zero
        assert div.value == _saturated(float(a) / b)


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(-(10**15), 10**15), st.integers(-1000, 1000).filter(lambda x: x != 0)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_duration_and_int_division(pairs: list[tuple[int, int]]) -> None:
    t = _pairs_table([(pd.Timedelta(nanoseconds=a), b) for a, b in pairs], pw.Duration, int)
    result = t.select(t.n, div=t.a / t.b, floordiv=t.a // t.b)
    for (a, b), div, floordiv in zip(
        pairs, _values(result, "div"), _values(result, "floordiv"), strict=True
    ):
        truncated = abs(a) // abs(b) * (1 if (a >= 0) == (b > 0) else -1)
        assert div.value == truncated
        assert floordiv.value == a // b


def test_duration_times_float_saturates_and_nan_is_zero() -> None:
    t = _pairs_table(
        [(pd.Timedelta(5), 1e30), (pd.Timedelta(5), -1e30), (pd.Timedelta(5), float("nan"))],
        pw.Duration,
        float,
    )
    assert [d.value for d in _values(t.select(t.n, x=t.a * t.b), "x")] == [2**63 - 1, -(2**63), 0]


def test_int_power_with_negative_exponent_truncates() -> None:
    t = _pairs_table([(2, -1), (1, -3), (-1, -3), (-1, -2), (3, 2)], int, int)
    assert _values(t.select(t.n, x=t.a**t.b), "x") == [0, 1, -1, 1, 9]


def test_string_times_negative_count_is_empty() -> None:
    t = _pairs_table([("ab", 3), ("ab", 0), ("ab", -2), ("", 5)], str, int)
    result = t.select(t.n, x=t.a * t.b, y=t.b * t.a)
    assert _values(result, "x") == _values(result, "y") == ["ababab", "", "", ""]


# --- None in comparisons -----------------------------------------------------------------


def test_equality_with_none_is_python_equality() -> None:
    t = pw.debug.table_from_markdown("""
    n | a | b
    0 | 1 | 1.0
    1 |   | 2.0
    2 | 3 | 3.5
    3 |   |
    """)
    result = t.select(t.n, eq=t.a == t.b, ne=t.a != t.b)
    assert result.typehints()["eq"] is bool
    assert _values(result, "eq") == [True, False, False, True]
    assert _values(result, "ne") == [False, True, True, False]


# --- laziness of & and | ---------------------------------------------------------------------


def test_and_or_skip_the_right_side_where_the_left_decides() -> None:
    t = pw.debug.table_from_markdown("""
    n | a | b
    0 | 1 | 0
    1 | 3 | 2
    2 | 6 | 3
    """)
    result = t.select(t.n, x=(t.b != 0) & (t.a // t.b > 1), y=(t.b == 0) | (t.a // t.b > 1))
    assert _values(result, "x") == [False, False, True]
    assert _values(result, "y") == [True, False, True]


def test_and_still_fails_where_the_right_side_is_needed() -> None:
    t = pw.debug.table_from_markdown("""
    a | b
    1 | 0
    """)
    result = t.select(x=(t.a > 0) & (t.a // t.b > 1))
    with pytest.raises(ZeroDivisionError):
        pw.debug.table_to_dicts(result)


def test_lazy_and_on_an_update_stream() -> None:
    t = pw.debug.table_from_markdown("""
    id | a | b | __time__ | __diff__
    1  | 1 | 0 |     2    |    1
    2  | 4 | 2 |     2    |    1
    1  | 1 | 0 |     4    |   -1
    1  | 5 | 0 |     4    |    1
    2  | 4 | 2 |     6    |   -1
    """)
    result = t.select(t.a, x=(t.b != 0) & (t.a // t.b > 1))
    assert stream(result) == [
        (2, 1, False, 1),
        (2, 4, True, 1),
        (4, 1, False, -1),
        (4, 5, False, 1),
        (6, 4, True, -1),
    ]
    assert snapshot(result) == [(5, False)]


def test_lazy_and_with_errors_kept_as_values() -> None:
    t = pw.debug.table_from_markdown("""
    n | a | b
    0 | 1 | 0
    1 | 6 | 3
    """)
    result = t.select(t.n, x=(t.b != 0) & (t.a // t.b > 1))
    assert _values(result, "x") == [False, True]
    pw.debug.compute_and_print(result, terminate_on_error=False)


# --- division by zero ----------------------------------------------------------------------


@pytest.mark.parametrize("op", [operator.truediv, operator.floordiv, operator.mod])
def test_duration_division_by_zero_duration_raises(op: Any) -> None:
    t = _pairs_table([(pd.Timedelta(5), pd.Timedelta(0))], pw.Duration, pw.Duration)
    result = t.select(x=op(t.a, t.b))
    with pytest.raises(ZeroDivisionError):
        pw.debug.table_to_dicts(result)


# --- types and errors when the pipeline is defined -----------------------------------------


def _typed_table() -> pw.Table:
    schema = pw.schema_from_types(
        i=int,
        f=float,
        s=str,
        d=pw.Duration,
        b=bool,
        tii=tuple[int, int],
        tis=tuple[int, str],
        toi=tuple[int | None, int],
    )
    return pw.debug.table_from_rows(schema, [])


@pytest.mark.parametrize(
    "expression, expected",
    [
        (lambda t: t.d * t.f, pw.Duration),
        (lambda t: t.f * t.d, pw.Duration),
        (lambda t: t.d / t.f, pw.Duration),
        (lambda t: t.d // t.d, int),
        (lambda t: t.d / t.d, float),
        (lambda t: t.i << t.i, int),
        (lambda t: t.i >> 2, int),
        (lambda t: t.i**t.i, int),
        (lambda t: t.i**t.f, float),
        (lambda t: t.tii < t.tii, bool),
        (lambda t: t.toi == t.toi, bool),
    ],
)
def test_result_types(expression: Any, expected: Any) -> None:
    t = _typed_table()
    assert t.select(x=expression(t)).typehints()["x"] == expected


@pytest.mark.parametrize(
    "expression",
    [
        lambda t: t.tii == t.tis,
        lambda t: t.tii < t.tis,
        lambda t: t.toi < t.toi,
        lambda t: t.f << t.i,
        lambda t: t.b << t.b,
        lambda t: ~t.i,
        lambda t: t.d // t.f,
        lambda t: t.d % t.i,
    ],
)
def test_operators_refused_when_defined(expression: Any) -> None:
    t = _typed_table()
    with pytest.raises(TypeError):
        t.select(x=expression(t))


@pytest.mark.parametrize("column", ["s", "d", "b", "tii"])
def test_abs_of_a_non_number_is_an_attribute_error(column: str) -> None:
    t = _typed_table()
    with pytest.raises(AttributeError, match="abs"):
        t.select(x=abs(t[column]))


# --- matrix product --------------------------------------------------------------------------


def test_matmul_of_vectors_is_a_0d_array() -> None:
    frame = pd.DataFrame(
        {"n": [0, 1], "a": [np.ones(3), np.array([1, 2])], "b": [np.ones(3), np.array([3, 4])]}
    )
    t = pw.debug.table_from_pandas(frame)
    result = t.select(t.n, c=t.a @ t.b)
    assert result.typehints()["c"] == np.ndarray[tuple[int, ...], np.dtype[Any]]
    values = _values(result, "c")
    assert [v.shape for v in values] == [(), ()]
    assert [float(v) for v in values] == [3.0, 11.0]


@pytest.mark.parametrize(
    "a, b",
    [
        (np.zeros((2, 3)), np.zeros((4, 2))),
        (np.zeros(3), np.zeros(())),
        (np.zeros(()), np.zeros(1)),
    ],
)
def test_matmul_shape_mismatch_fails_at_run(a: np.ndarray, b: np.ndarray) -> None:
    t = pw.debug.table_from_pandas(pd.DataFrame({"a": [a], "b": [b]}))
    result = t.select(c=t.a @ t.b)  # defined fine: shapes are only known per row
    with pytest.raises(ValueError):
        pw.debug.table_to_dicts(result)


def test_datetime_minus_datetime_and_plus_duration() -> None:
    start = datetime.datetime(2024, 1, 1)
    t = _pairs_table([(start, pd.Timedelta(hours=1))], pw.DateTimeNaive, pw.Duration)
    result = t.select(t.n, later=t.a + t.b, back=(t.a + t.b) - t.a, first=t.b + t.a)
    assert _values(result, "back") == [pd.Timedelta(hours=1)]
    assert _values(result, "later") == _values(result, "first") == [pd.Timestamp(2024, 1, 1, 1)]


def test_the_examples_of_docs_expressions_run() -> None:
    """The code blocks of docs/expressions.md run and their assertions hold."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "docs" / "expressions.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    namespace: dict[str, Any] = {}
    for block in blocks:
        pw.clear_graph()
        exec(compile(block, "docs/expressions.md", "exec"), namespace)  # noqa: S102


def _operators_program(table: pw.Table) -> pw.Table:
    return table.select(
        shift=table.v << (table.k + 60),
        back=table.v >> table.k,
        mod=(table.v * 0.7) % 1.3,
        lazy=(table.k != 0) & (table.v // table.k > 0),
        either=(table.k == 0) | (table.v > 1),
        text=table.v.to_string(),
        rep="ab" * table.v,
        div=table.v / 3,
        period=pw.Duration(1, "s") * (table.v * 0.5),
    )


@SETTINGS
@given(update_streams(max_key=3))
def test_operators_on_update_streams_match_recomputation(events: list[Event]) -> None:
    check(_operators_program, events)
