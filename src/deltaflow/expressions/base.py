"""Column expressions: the lazily built trees users write inside ``select``, ``filter`` ...

An expression never computes by itself. Given a :class:`Scope` (which says what each column
reference means in the operation at hand) it can tell its type (``infer``, which also checks
it) and build a Polars expression (``to_polars``). Nodes that need Python per row (UDFs,
values kept as Python objects) are *python nodes*: the evaluator computes them first, as
columns, and the Polars expression then refers to those columns.

This module gathers the expression classes under the one name the rest of deltaflow imports
them by. They live in (lowest first): ``_python_values`` (per-row helpers), ``overloads``
(Python's operators), ``scope`` (:class:`Scope` and the typing errors), ``type_rules`` (the
types of items, JSON conversions and branches), ``core`` (:class:`ColumnExpression`, leaves,
operator nodes), ``conditionals``, ``conversions`` and ``calls``.
"""

from deltaflow.expressions.calls import (
    Apply,
    MethodCall,
    PythonMethodCall,
    UdfError,
    _annotated_return,
)
from deltaflow.expressions.conditionals import Coalesce, FillError, IfElse, NoErrors, Require
from deltaflow.expressions.conversions import Cast, DeclareType, PointerFrom, Unwrap
from deltaflow.expressions.core import (
    BinaryOp,
    ColumnExpression,
    ColumnReference,
    ConvertTo,
    GetItem,
    IsNone,
    Literal,
    MakeTuple,
    MatMul,
    PythonNode,
    UnaryOp,
    Value,
    _counter,
    wrap_value,
)
from deltaflow.expressions.scope import (
    ColumnNotFoundError,
    ExpressionAttributeError,
    ExpressionError,
    Scope,
)

__all__ = [
    "Apply",
    "BinaryOp",
    "Cast",
    "Coalesce",
    "ColumnExpression",
    "ColumnNotFoundError",
    "ColumnReference",
    "ConvertTo",
    "DeclareType",
    "ExpressionAttributeError",
    "ExpressionError",
    "FillError",
    "GetItem",
    "IfElse",
    "IsNone",
    "Literal",
    "MakeTuple",
    "MatMul",
    "MethodCall",
    "NoErrors",
    "PointerFrom",
    "PythonMethodCall",
    "PythonNode",
    "Require",
    "Scope",
    "UdfError",
    "UnaryOp",
    "Unwrap",
    "Value",
    "_annotated_return",
    "_counter",
    "wrap_value",
]
