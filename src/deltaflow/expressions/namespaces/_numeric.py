"""The ``.num`` namespace: ``t.x.num.abs()`` ..."""

from __future__ import annotations

from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.base import ColumnExpression
from deltaflow.expressions.namespaces._common import _INT_PARAM, _NUMBERS, _Namespace, _Param


class NumericalNamespace(_Namespace):
    """Numeric methods: ``t.x.num.abs()`` ..."""

    def abs(self) -> ColumnExpression:
        """The absolute value."""
        return self._call(
            "num.abs",
            (),
            _NUMBERS,
            (),
            lambda types: types[0].strip_optional(),
            lambda a, _: a[0].abs(),
        )

    def round(self, decimals: Any = 0) -> ColumnExpression:
        """Rounded to ``decimals`` digits, halves to even, exactly as Python's ``round``."""
        params = (_Param("decimals", _INT_PARAM),)

        def same(types: list[t.DType]) -> t.DType:
            return types[0].strip_optional()

        if isinstance(decimals, int) and decimals == 0:
            # Rounding to whole numbers is exact in Polars; to decimals it is not always the
            # correctly rounded result Python gives, so that case runs per row.
            return self._call(
                "num.round",
                (decimals,),
                _NUMBERS,
                params,
                same,
                lambda a, types: (
                    a[0]
                    if types[0].strip_optional() == t.INT
                    else a[0].round(0, mode="half_to_even")
                ),
            )
        return self._python(
            "num.round",
            (decimals,),
            _NUMBERS,
            params,
            same,
            lambda value, digits: round(value, digits),
        )

    def fill_na(self, default_value: Any) -> ColumnExpression:
        """The value, or ``default_value`` where it is None or NaN."""

        def result(types: list[t.DType]) -> t.DType:
            return types[0].strip_optional()

        def build(a: list[pl.Expr], types: list[t.DType]) -> pl.Expr:
            value, default = a
            if types[0].strip_optional() == t.FLOAT:
                value = value.fill_nan(None)
            else:
                default = default.cast(pl.Int64)
            return value.fill_null(default)

        return self._call(
            "num.fill_na",
            (default_value,),
            _NUMBERS,
            (_Param("default_value", _NUMBERS),),
            result,
            build,
            nullable_result=False,
        )
