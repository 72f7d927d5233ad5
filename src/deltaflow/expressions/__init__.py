"""Column expressions and the functions that build them (``pw.apply``, ``pw.if_else`` ...)."""

from deltaflow.expressions.base import (
    ColumnExpression,
    ColumnReference,
    ExpressionError,
    Scope,
    UdfError,
)
from deltaflow.expressions.functions import (
    apply,
    apply_async,
    apply_with_type,
    cast,
    coalesce,
    declare_type,
    fill_error,
    if_else,
    make_tuple,
    require,
    udf,
    unwrap,
)
from deltaflow.expressions.placeholders import left, right, this

__all__ = [
    "ColumnExpression",
    "ColumnReference",
    "ExpressionError",
    "Scope",
    "UdfError",
    "apply",
    "apply_async",
    "apply_with_type",
    "cast",
    "coalesce",
    "declare_type",
    "fill_error",
    "if_else",
    "left",
    "make_tuple",
    "require",
    "right",
    "this",
    "udf",
    "unwrap",
]
