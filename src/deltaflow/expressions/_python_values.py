"""Helpers for values computed in Python, row by row: turning a Python node's results into a
column (keeping failures as error cells when asked), the per-row work of the Python nodes of
:mod:`deltaflow.expressions.core` (comparisons of Python values, indexing, Json conversions,
matrix products), and the user's frame for warnings. Nothing here knows the expression
classes.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._values import type_mismatch


def _series_keeping_errors(result: list[Any], dtype: t.DType) -> pl.Series:
    """A Python node's values as a column when failures are values: error values (a UDF that
    raised) and values not of the declared type (reported) become error cells."""
    from deltaflow import errors

    failed = [v is errors.ERROR for v in result]
    clean = [None if bad else v for v, bad in zip(result, failed, strict=True)]
    plain = _PLAIN_CHECKS.get(dtype.strip_optional())
    if plain is not None and not all(v is None or plain(v) for v in clean):
        series = None  # e.g. an int where a str is declared: never converted silently
    else:
        try:
            series = t.series_from_values("value", clean, dtype)
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
            series = None
    if series is None or series.null_count() != sum(v is None for v in clean):
        # Some value is not of the declared type: convert one by one, reporting the others.
        stored: list[Any] = []
        for position, value in enumerate(clean):
            if value is not None:
                try:
                    one = t.series_from_values("value", [value], dtype)
                    ok = one.null_count() == 0 and (plain is None or plain(value))
                except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
                    ok = False
                if not ok:
                    errors.report(type_mismatch(value, _engine_type_name(dtype)))
                    failed[position] = True
                    value = None
            stored.append(value)
        series = t.series_from_values("value", stored, dtype)
    if not any(failed):
        return series
    return errors.with_errors(series, pl.Series(failed, dtype=pl.Boolean))


_PLAIN_CHECKS: dict[t.DType, Callable[[Any], bool]] = {
    t.STR: lambda v: isinstance(v, str),
    t.INT: lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
    t.FLOAT: lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
    t.BOOL: lambda v: isinstance(v, bool | np.bool_),
}


def _engine_type_name(dtype: t.DType) -> str:
    base = dtype.strip_optional()
    names = {
        t.INT: "Int",
        t.FLOAT: "Float",
        t.STR: "String",
        t.BOOL: "Bool",
        t.BYTES: "Bytes",
        t.POINTER: "Pointer",
        t.JSON: "Json",
    }
    return names.get(base, repr(base))


_PYTHON_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _comparable_value(value: Any) -> Any:
    """Lists and tuples compare alike (lexicographically), Json by its value."""
    if isinstance(value, list):
        return tuple(_comparable_value(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_comparable_value(v) for v in value)
    if isinstance(value, t.Json):
        return value.value
    return value


def compare_rows(op: str, args: list[list[Any]]) -> list[Any]:
    """``BinaryOp`` on values kept as Python objects: tuple concatenation (``+``) or a
    comparison, row by row."""
    if op == "+":
        return [
            None if a is None or b is None else tuple(a) + tuple(b)
            for a, b in zip(args[0], args[1], strict=True)
        ]
    compare = _PYTHON_COMPARISONS[op]
    out: list[Any] = []
    for a, b in zip(args[0], args[1], strict=True):
        if a is None or b is None:
            out.append(compare(a is None, b is None) if op in ("==", "!=") else None)
            continue
        try:
            out.append(compare(_comparable_value(a), _comparable_value(b)))
        except TypeError as exc:
            raise TypeError(f"cannot compare {a!r} with {b!r} using {op}: {exc}") from None
    return out


def matmul_rows(args: list[list[Any]]) -> list[Any]:
    """``a @ b`` row by row (None where either is None)."""
    out: list[Any] = []
    for a, b in zip(args[0], args[1], strict=True):
        if a is None or b is None:
            out.append(None)
            continue
        try:
            out.append(np.asarray(np.matmul(a, b)))
        except ValueError as exc:  # shapes that do not fit
            raise ValueError(
                f"operator @ cannot multiply arrays of shapes "
                f"{np.shape(a)} and {np.shape(b)}: {exc}"
            ) from None
    return out


def index_rows(args: list[list[Any]], checked: bool) -> list[Any]:
    """``container[index]`` (``checked``: a miss raises IndexError) or ``.get(index,
    default)`` row by row."""
    containers, indexes, defaults = args
    out: list[Any] = []
    for container, index, default in zip(containers, indexes, defaults, strict=True):
        if container is None:
            out.append(None)
            continue
        if isinstance(container, t.Json):
            # A missing key or index is Json null with [], the default with .get().
            value = container.value
            try:
                if isinstance(value, list) and (not isinstance(index, int) or index < 0):
                    raise TypeError(index)  # Json arrays have no negative indices
                out.append(t.Json(value[index]))
            except (KeyError, IndexError, TypeError):
                out.append(t.Json.NULL if checked else default)
            continue
        try:
            out.append(container[index])
        except (KeyError, IndexError, TypeError):
            if checked:
                raise IndexError(f"index {index!r} out of range for {container!r}") from None
            out.append(default)
    return out


def convert_json_rows(
    args: list[list[Any]], target: t.DType, unwrap: bool, label: str
) -> list[Any]:
    """``.as_int()`` ... on Json values row by row; a null value gives the default."""
    converters: dict[t.DType, type] = {t.INT: int, t.FLOAT: float, t.STR: str, t.BOOL: bool}
    accepted: dict[t.DType, type | tuple[type, ...]] = {
        t.INT: int,
        t.FLOAT: (int, float),
        t.STR: str,
        t.BOOL: bool,
    }
    convert, expected = converters[target], accepted[target]
    out: list[Any] = []
    for value, default in zip(args[0], args[1], strict=True):
        raw = value.value if isinstance(value, t.Json) else value
        if raw is None:
            if default is None and unwrap:
                raise ValueError(f"{label}(unwrap=True) met a null value")
            out.append(None if default is None else convert(default))
            continue
        if not isinstance(raw, expected) or (target != t.BOOL and isinstance(raw, bool)):
            raise ValueError(f"cannot convert Json value {raw!r} with {label}()")
        out.append(convert(raw))
    return out
