"""``expr.to_string()``: the text of any value, None included (as Pathway writes them).

Always a ``str`` column: None becomes ``"None"``, booleans ``"True"``/``"False"``, floats
their shortest round-tripping text, date-times ISO 8601 with nanoseconds (``+0000`` after
UTC ones), Json its compact text, pointers their ``^...`` form. Durations are refused
(Pathway prints them in a format of its own that we do not reproduce).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.base import ColumnExpression, Scope

_NAIVE_FORMAT = "%Y-%m-%dT%H:%M:%S.%9f"
_IN_POLARS = (t.INT, t.FLOAT, t.BOOL, t.STR, t.DATE_TIME_NAIVE, t.DATE_TIME_UTC)


class ToString(ColumnExpression):
    """The node behind ``to_string()``; computed in Python only for values stored as
    Python objects (Json, pointers, ``Any`` ...)."""

    name = "to_string"

    def __init__(self, arg: ColumnExpression) -> None:
        super().__init__()
        self.arg = arg
        self.args = (arg,)  # printed as a method call: (<table1>.a).to_string()
        self.label = "to_string"

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg,)

    def _infer(self, scope: Scope) -> t.DType:
        source = scope.dtype_of(self.arg).strip_optional()
        if source == t.DURATION:
            raise scope.fail(
                "to_string() of a Duration is not supported; use "
                "dt.total_seconds() or dt.nanoseconds() and format the number"
            )
        return t.STR

    def computed_in_python(self, scope: Scope) -> bool:
        return scope.dtype_of(self.arg).strip_optional() not in _IN_POLARS

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return [_text(value) for value in args[0]]

    def _polars(self, scope: Scope) -> pl.Expr:
        source = scope.dtype_of(self.arg).strip_optional()
        inner = self.arg.to_polars(scope)
        if source == t.INT:
            text = inner.cast(pl.String)
        elif source == t.FLOAT:
            text = inner.map_elements(repr, return_dtype=pl.String)
        elif source == t.BOOL:
            text = pl.when(inner).then(pl.lit("True")).otherwise(pl.lit("False"))
        elif source == t.DATE_TIME_NAIVE:
            text = inner.dt.strftime(_NAIVE_FORMAT)
        elif source == t.DATE_TIME_UTC:
            text = inner.dt.convert_time_zone("UTC").dt.strftime(_NAIVE_FORMAT + "+0000")
        else:
            text = inner
        return pl.when(inner.is_null()).then(pl.lit("None")).otherwise(text)


def _text(value: Any) -> str:
    if isinstance(value, t.Json):
        # through Json's own text first: it knows how to write numpy values and nested Json
        return json.dumps(json.loads(value.dumps()), separators=(",", ":"), ensure_ascii=False)
    return "None" if value is None else str(value)
