"""Operators on columns: which operand types they accept, what they give, how they compute.

The typing follows Pathway 0.33 (``int + float`` is ``float``, ``Duration * float`` is a
``Duration``, ``<<`` only on ints ...), with deltaflow's extensions kept on purpose:
``Optional`` operands are accepted (a None gives None, which SQL over nullable columns
relies on), ``Any`` operands give ``Any``, and ``bytes``/``tuple`` concatenation works.

The values follow Pathway's engine, which is not always what a Polars operator does:

* ``/`` is an exact IEEE division (Polars divides by a constant through its reciprocal,
  one ulp off at times); ``//`` on floats is ``floor(a / b)``; ``%`` on floats is Python's
  modulo (the sign of the divisor, computed from ``fmod``, not ``a - floor(a/b) * b``).
* ``<<`` and ``>>`` wrap around 64 bits and use the shift count modulo 64.
* ``int ** negative int`` truncates (``2 ** -1 == 0``) instead of failing.
* ``str * n`` with a negative ``n`` is the empty string.
* ``Duration / int`` truncates toward zero; ``Duration * float`` and ``Duration / float``
  truncate toward zero and saturate at the bounds of 64-bit nanoseconds (NaN gives 0).
* ``==`` and ``!=`` compare None like Python: None equals None and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t

ARITHMETIC = frozenset({"+", "-", "*", "/", "//", "%", "**"})
SHIFTS = frozenset({"<<", ">>"})
EQUALITY = frozenset({"==", "!="})
ORDERING = frozenset({"<", "<=", ">", ">="})
COMPARISON = EQUALITY | ORDERING
BOOLEAN = frozenset({"&", "|", "^"})
DIVISIONS = frozenset({"/", "//", "%"})

_NUMBERS = (t.INT, t.FLOAT)
_DATETIMES = (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC)


# ------------------------------------------------------------------------------------------
# Types
# ------------------------------------------------------------------------------------------


def arithmetic_type(op: str, a: t.DType, b: t.DType) -> t.DType | None:
    """The result type of ``a op b`` for non-optional operand types; None when the
    operator is not defined on them."""
    if op in SHIFTS:
        return t.INT if a == b == t.INT else None
    if a in _NUMBERS and b in _NUMBERS:
        if op == "/":
            return t.FLOAT
        return t.INT if a == b == t.INT else t.FLOAT
    if op == "+" and a == b and a in (t.STR, t.BYTES):
        return a
    if op == "*" and {a, b} == {t.STR, t.INT}:
        return t.STR
    if a in _DATETIMES:
        if op in ("+", "-") and b == t.DURATION:
            return a
        if op == "-" and b == a:
            return t.DURATION
        return None
    if a == t.DURATION:
        return _duration_type(op, b)
    if b == t.DURATION and op == "*" and a in _NUMBERS:
        return t.DURATION
    if b == t.DURATION and op == "+" and a in _DATETIMES:
        return a
    if op == "+" and isinstance(a, t.Tuple) and isinstance(b, t.Tuple):
        return t.Tuple(*a.args, *b.args)
    return None


def _duration_type(op: str, b: t.DType) -> t.DType | None:
    if b == t.DURATION:
        return {"+": t.DURATION, "-": t.DURATION, "%": t.DURATION, "/": t.FLOAT, "//": t.INT}.get(
            op
        )
    if op == "+" and b in _DATETIMES:
        return b
    if op in ("*", "/") and b in _NUMBERS:
        return t.DURATION
    if op == "//" and b == t.INT:
        return t.DURATION
    return None


def comparable(op: str, left: t.DType, right: t.DType) -> bool:
    """Whether ``left op right`` is a valid comparison. Scalars may be Optional (a None
    compares as in Python with ``==``; ordering it gives None); inside tuples, elements
    must be comparable one by one and, for an ordering, not Optional (Python cannot order
    None)."""
    a, b = left.strip_optional(), right.strip_optional()
    if a == t.ANY or b == t.ANY:
        return True
    if _is_sequence(a) or _is_sequence(b):
        return _sequences_comparable(op, a, b)
    if a in _NUMBERS and b in _NUMBERS:
        return True
    if a != b:
        return False
    if op in EQUALITY:
        return True
    return not (a in (t.JSON, t.PY_OBJECT_WRAPPER, t.BYTES) or isinstance(a, t.Array))


def _is_sequence(dtype: t.DType) -> bool:
    return isinstance(dtype, t.Tuple | t.List)


def _items(dtype: t.DType, length: int) -> list[t.DType] | None:
    if isinstance(dtype, t.Tuple):
        return list(dtype.args)
    if isinstance(dtype, t.List):
        return [dtype.arg] * length
    return None


def _sequences_comparable(op: str, a: t.DType, b: t.DType) -> bool:
    if not (_is_sequence(a) and _is_sequence(b)):
        return False
    length = max(len(x.args) if isinstance(x, t.Tuple) else 1 for x in (a, b))
    left, right = _items(a, length), _items(b, length)
    assert left is not None and right is not None
    for x, y in zip(left, right, strict=False):
        if x == t.ANY or y == t.ANY or t.Optional(t.ANY) in (x, y) or t.NONE in (x, y):
            continue
        if op in ORDERING and (x.is_optional or y.is_optional):
            return False
        if not comparable(op, x, y):
            return False
    return True


# ------------------------------------------------------------------------------------------
# Values
# ------------------------------------------------------------------------------------------


def compile_binary(
    op: str, a: pl.Expr, b: pl.Expr, left: t.DType, right: t.DType, nullable: bool
) -> pl.Expr:
    """The Polars expression for ``a op b``, whose operands have the (non-optional) types
    ``left`` and ``right``; ``nullable`` says whether either operand may be None."""
    if op in EQUALITY:
        if nullable:  # None == None is True, None == 1 is False (as in Python)
            return a.eq_missing(b) if op == "==" else a.ne_missing(b)
        return a == b if op == "==" else a != b
    if op in ORDERING:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op in BOOLEAN:
        return {"&": a & b, "|": a | b, "^": a ^ b}[op]
    if op in SHIFTS:
        return _numpy(
            np.left_shift if op == "<<" else np.right_shift,
            a,
            b.cast(pl.Int64) & 63,
            pl.Int64(),
            pl.Int64(),
        )
    if left == t.DURATION or right == t.DURATION:
        return _duration(op, a, b, left, right)
    if left in _NUMBERS and right in _NUMBERS:
        return _numeric(op, a, b, left, right)
    if op == "+":
        if left == t.STR:
            return pl.concat_str([a, b])
        if left == t.BYTES:
            return pl.concat_str([a.cast(pl.Binary), b.cast(pl.Binary)]).cast(pl.Binary)
        return a + b
    if op == "*" and {left, right} == {t.STR, t.INT}:
        text, count = (a, b) if left == t.STR else (b, a)
        return text.repeat_by(count.clip(lower_bound=0)).list.join("")
    if op == "-":
        return a - b
    raise TypeError(f"operator {op} has no implementation for {left!r} and {right!r}")


def _numeric(op: str, a: pl.Expr, b: pl.Expr, left: t.DType, right: t.DType) -> pl.Expr:
    both_int = left == right == t.INT
    if op == "/":
        return _numpy(np.true_divide, a, b, pl.Float64(), pl.Float64())
    if op == "**":
        if both_int:
            return _int_power(a, b)
        return a.cast(pl.Float64).pow(b)
    if both_int or op in ("+", "-", "*"):
        return {
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "//": lambda: a // b,
            "%": lambda: a % b,
        }[op]()
    if op == "//":
        return _numpy(_floor_divide, a, b, pl.Float64(), pl.Float64())
    return _numpy(np.remainder, a, b, pl.Float64(), pl.Float64())


def _floor_divide(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.floor(np.true_divide(x, y))


def _int_power(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``a ** b`` on ints; a negative exponent truncates the (fractional) result."""
    exponent = b.cast(pl.Int64)
    positive = a.pow(exponent.clip(lower_bound=0)).cast(pl.Int64)
    odd = (exponent % 2) != 0
    negative = (
        pl.when(a == 1)
        .then(pl.lit(1, pl.Int64))
        .when(a == -1)
        .then(pl.when(odd).then(pl.lit(-1, pl.Int64)).otherwise(pl.lit(1, pl.Int64)))
        .otherwise(pl.lit(0, pl.Int64))
    )
    return pl.when(exponent < 0).then(negative).otherwise(positive)


def _duration(op: str, a: pl.Expr, b: pl.Expr, left: t.DType, right: t.DType) -> pl.Expr:
    if left in _NUMBERS:  # number * Duration
        return _duration(op, b, a, right, left)
    if right in _DATETIMES or left in _DATETIMES or op in ("+", "-"):
        return a + b if op == "+" else a - b
    nanos = a.dt.total_nanoseconds()
    if right == t.DURATION:
        other = b.dt.total_nanoseconds()
        if op == "/":
            return _numpy(np.true_divide, nanos, other, pl.Float64(), pl.Float64())
        if op == "//":
            return nanos // other
        return (nanos % other).cast(pl.Duration("ns"))
    if right == t.FLOAT:
        function = np.multiply if op == "*" else np.true_divide
        product = _numpy(function, nanos, b, pl.Float64(), pl.Float64())
        return _saturated_nanos(product).cast(pl.Duration("ns"))
    count = b.cast(pl.Int64)
    if op == "*":
        return (nanos * count).cast(pl.Duration("ns"))
    if op == "//":
        return (nanos // count).cast(pl.Duration("ns"))
    return _truncating_division(nanos, count).cast(pl.Duration("ns"))


def _truncating_division(x: pl.Expr, y: pl.Expr) -> pl.Expr:
    """Integer division rounding toward zero (Polars' ``//`` rounds down)."""
    floor = x // y
    inexact = (x % y) != 0
    signs_differ = (x < 0) != (y < 0)
    return floor + (inexact & signs_differ).cast(pl.Int64)


def _saturated_nanos(value: pl.Expr) -> pl.Expr:
    """Float nanoseconds to int64, toward zero, clamped to the int64 range (NaN is 0)."""
    return (
        pl.when(value.is_nan())
        .then(pl.lit(0, pl.Int64))
        .when(value >= float(2**63))
        .then(pl.lit(t.INT64_MAX, pl.Int64))
        .when(value <= float(t.INT64_MIN))
        .then(pl.lit(t.INT64_MIN, pl.Int64))
        .otherwise(value.cast(pl.Int64, strict=False))
    )


def _numpy(
    function: Callable[[np.ndarray, np.ndarray], Any],
    a: pl.Expr,
    b: pl.Expr,
    operands: pl.DataType,
    result: pl.DataType,
) -> pl.Expr:
    """``function`` (a numpy ufunc) over two columns, None where either operand is None.

    Polars computes some of these differently from IEEE/Python (see the module's text);
    numpy does them exactly, on whole columns."""

    def run(series: Sequence[pl.Series]) -> pl.Series:
        x, y = (s.cast(operands).fill_null(0).to_numpy() for s in series)
        with np.errstate(all="ignore"):
            return pl.Series("value", function(x, y), dtype=result)

    computed = pl.map_batches([a, b], run, return_dtype=result, is_elementwise=True)
    return pl.when(a.is_null() | b.is_null()).then(pl.lit(None, result)).otherwise(computed)


def zero_divisor(b: pl.Expr, right: t.DType) -> pl.Expr | None:
    """Where the divisor ``b`` (of type ``right``) is zero, for the division checks; None
    when the type cannot be zero."""
    base = right.strip_optional()
    if base in _NUMBERS:
        return b == 0
    if base == t.DURATION:
        return b.dt.total_nanoseconds() == 0
    return None


# ------------------------------------------------------------------------------------------
# Unary operators
# ------------------------------------------------------------------------------------------


def unary_type(op: str, dtype: t.DType) -> t.DType | None:
    """The result type of a unary operator (``-``, ``~``, ``abs``); None if not defined."""
    base = dtype.strip_optional()
    if base == t.ANY:
        return dtype
    if op == "~":
        return dtype if base == t.BOOL else None
    if op == "-":
        return dtype if base in (t.INT, t.FLOAT, t.DURATION) else None
    return dtype if base in _NUMBERS else None
