"""Simple arithmetic of small frames computed with NumPy instead of a Polars query.

A Polars ``select`` has a fixed cost (planning the query, evaluating expressions through its
machinery) that dominates on the few rows of a streaming delta: ~30 us on a warm cache and
several times that on the cold cache of an engine thread woken by a new minibatch. A
projection made only of column references, int/float/bool literals and the operators below
gets the same values from NumPy on the column arrays, which costs a few microseconds.

Only operations whose NumPy result is bit for bit the Polars one are taken: ``+ - *`` and
unary ``-`` on ints and floats (int64 arithmetic wraps in both; an int meeting a float is
promoted to float64 in both), comparisons of ints, and ``& | ^ ~`` of bools, on columns
without nulls. Anything else (divisions, optional types, floats compared, strings ...) keeps
the Polars path, as does a projection that is not entirely of this kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._small_frames import series_of_array
from deltaflow.expressions.base import (
    BinaryOp,
    ColumnExpression,
    ColumnReference,
    Literal,
    Scope,
    UnaryOp,
)

Arrays = Mapping[str, np.ndarray]
Compute = Callable[[Arrays], Any]

_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
}
_INT_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
_BOOLEAN: dict[str, Callable[[Any, Any], Any]] = {
    "&": np.bitwise_and,
    "|": np.bitwise_or,
    "^": np.bitwise_xor,
}
_NUMBERS = (t.INT, t.FLOAT)
#: The physical column type NumPy reads without a conversion, per column type.
_PHYSICAL: dict[t.DType, pl.DataType] = {
    t.INT: pl.Int64(),
    t.FLOAT: pl.Float64(),
    t.BOOL: pl.Boolean(),
}
_NUMPY: dict[t.DType, type[np.generic]] = {t.INT: np.int64, t.FLOAT: np.float64, t.BOOL: np.bool_}


class NumpyProjection:
    """A projection's outputs as NumPy computations (or copies of input columns)."""

    def __init__(
        self,
        outputs: list[tuple[str, str | Compute, t.DType]],
        inputs: list[tuple[str, pl.DataType]],
    ) -> None:
        self.outputs = outputs  # (name, source column or computation, type)
        self.inputs = inputs  # the columns the computations read, with their Polars type

    def run(self, frame: pl.DataFrame) -> list[pl.Series] | None:
        """The output columns for ``frame`` (None if an input column holds nulls or is not
        of the type the computation was compiled for)."""
        arrays: dict[str, np.ndarray] = {}
        for name, polars_type in self.inputs:
            column = frame.get_column(name)
            if column.null_count() or column.dtype != polars_type:
                return None
            arrays[name] = column.to_numpy()
        height = frame.height
        out: list[pl.Series] = []
        for name, how, dtype in self.outputs:
            if isinstance(how, str):
                out.append(frame.get_column(how).alias(name))
                continue
            with np.errstate(all="ignore"):  # float overflow to inf is no error in Polars
                values = how(arrays)
            if not isinstance(values, np.ndarray) or values.shape != (height,):
                values = np.full(height, values, dtype=_NUMPY[dtype])
            series = series_of_array(name, values)
            if series.dtype != _PHYSICAL[dtype]:
                series = pl.Series(name, values, dtype=_PHYSICAL[dtype])
            out.append(series)
        return out


def compile_numpy(
    scope: Scope,
    outputs: Sequence[tuple[str, ColumnExpression]],
    types: Mapping[str, t.DType],
    schema: Mapping[str, pl.DataType],
) -> NumpyProjection | None:
    """The NumPy form of a projection over frames of ``schema``, or None when one of its
    outputs is not a simple computation (see the module docstring)."""
    inputs: set[str] = set()
    compiled: list[tuple[str, str | Compute, t.DType]] = []
    computes = False
    for name, expr in outputs:
        dtype = types[name]
        if dtype not in _PHYSICAL:
            return None
        if isinstance(expr, ColumnReference):
            source = _column(expr, scope, schema)
            if source is None:
                return None
            compiled.append((name, source, dtype))
            continue
        used: set[str] = set()
        compute = _compile(expr, scope, schema, used)
        if compute is None or not used:  # constants alone: leave them to Polars
            return None
        inputs |= used
        computes = True
        compiled.append((name, compute, dtype))
    if not computes:
        return None  # only copies: CompiledProjection.copies() handles those
    return NumpyProjection(compiled, [(name, schema[name]) for name in sorted(inputs)])


def _column(ref: ColumnReference, scope: Scope, schema: Mapping[str, pl.DataType]) -> str | None:
    """The input column of ``ref`` when NumPy reads it as it is, else None."""
    name, dtype = scope.resolve(ref)[:2]
    wanted = _PHYSICAL.get(dtype)
    if wanted is None or schema.get(name) != wanted:
        return None
    return name


def _compile(
    expr: ColumnExpression, scope: Scope, schema: Mapping[str, pl.DataType], used: set[str]
) -> Compute | None:
    dtype = scope.dtype_of(expr)
    if dtype not in _PHYSICAL:
        return None
    if isinstance(expr, ColumnReference):
        column = _column(expr, scope, schema)
        if column is None:
            return None
        used.add(column)
        return lambda arrays: arrays[column]
    if isinstance(expr, Literal):
        value = expr.value
        if type(value) is bool and dtype == t.BOOL:
            constant: Any = np.bool_(value)
        elif type(value) is int and dtype == t.INT and t.INT64_MIN <= value <= t.INT64_MAX:
            constant = np.int64(value)
        elif type(value) is float and dtype == t.FLOAT:
            constant = np.float64(value)
        else:
            return None
        return lambda arrays: constant
    if isinstance(expr, UnaryOp):
        inner = _compile(expr.arg, scope, schema, used)
        if inner is None:
            return None
        if expr.op == "-" and dtype in _NUMBERS:
            return lambda arrays: np.negative(inner(arrays))
        if expr.op == "~" and dtype == t.BOOL:
            return lambda arrays: np.logical_not(inner(arrays))
        return None
    if isinstance(expr, BinaryOp):
        return _binary(expr, scope, schema, used)
    return None


def _binary(
    expr: BinaryOp, scope: Scope, schema: Mapping[str, pl.DataType], used: set[str]
) -> Compute | None:
    left_type, right_type = scope.dtype_of(expr.left), scope.dtype_of(expr.right)
    if expr.op in _ARITHMETIC and left_type in _NUMBERS and right_type in _NUMBERS:
        function = _ARITHMETIC[expr.op]
    elif expr.op in _INT_COMPARISONS and left_type == right_type == t.INT:
        function = _INT_COMPARISONS[expr.op]
    elif expr.op in _BOOLEAN and left_type == right_type == t.BOOL:
        function = _BOOLEAN[expr.op]
    else:
        return None
    left = _compile(expr.left, scope, schema, used)
    right = _compile(expr.right, scope, schema, used)
    if left is None or right is None:
        return None
    return lambda arrays: function(left(arrays), right(arrays))


__all__ = ["NumpyProjection", "compile_numpy"]
