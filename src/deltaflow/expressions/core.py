"""The core of column expressions: :class:`ColumnExpression`, the leaves
(column references, literals) and the nodes Python's operators and the basic methods build
(``+ == & ~``, ``@``, ``[]``/``get``, ``is_none``, ``as_int`` ...).

An expression never computes by itself. Given a :class:`Scope` (which says what each column
reference means in the operation at hand) it can tell its type (``infer``, which also checks
it) and build a Polars expression (``to_polars``). Nodes that need Python per row (UDFs,
values kept as Python objects) are *python nodes*: the evaluator computes them first, as
columns, and the Polars expression then refers to those columns.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions import operators as ops
from deltaflow.expressions._python_values import (
    _series_keeping_errors,
    compare_rows,
    convert_json_rows,
    index_rows,
    matmul_rows,
)
from deltaflow.expressions.overloads import OperatorOverloads
from deltaflow.expressions.scope import (
    ColumnNotFoundError,
    ExpressionAttributeError,
    ExpressionError,
    Scope,
)
from deltaflow.expressions.type_rules import item_type, json_conversion_type

Value = Any
_counter = itertools.count()


def wrap_value(value: Any) -> ColumnExpression:
    """Turn a constant into an expression; expressions pass through, and a Python tuple
    holding expressions is ``pw.make_tuple`` of its items (as in Pathway)."""
    if isinstance(value, ColumnExpression):
        return value
    if type(value) is tuple and any(isinstance(v, ColumnExpression) for v in value):
        return MakeTuple(*(wrap_value(v) for v in value))
    return Literal(value)


class ColumnExpression(OperatorOverloads):
    """Base class of every column expression."""

    _python_node = False  # computed row by row in Python by the evaluator

    def __init__(self) -> None:
        self._uid = next(_counter)

    def __iter__(self) -> Iterator[Any]:
        # Without this, indexing (``__getitem__``) would make ``list(t.a)`` loop forever.
        raise TypeError(
            f"{self!r} is not iterable: a column expression stands for one value "
            f"per row, computed when the pipeline runs; to work on the values in "
            f"Python, use pw.apply(function, column) (or pw.udf)"
        )

    # --- to be provided by subclasses -------------------------------------------------
    def children(self) -> tuple[ColumnExpression, ...]:
        return ()

    def _infer(self, scope: Scope) -> t.DType:
        raise NotImplementedError

    def _polars(self, scope: Scope) -> pl.Expr:
        raise NotImplementedError

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        """Python nodes: compute the values of ``size`` rows from the children's values."""
        raise NotImplementedError

    # --- public-ish machinery ------------------------------------------------------------
    def to_polars(self, scope: Scope) -> pl.Expr:
        column = scope.python_columns.get(id(self))
        if column is not None:
            return pl.col(column)
        return self._polars(scope)

    def computed_in_python(self, scope: Scope) -> bool:
        """Whether the evaluator computes this node row by row (see :meth:`compute`)."""
        return self._python_node

    def compute(self, args: list[pl.Series], size: int, dtype: t.DType) -> pl.Series:
        """The node's column computed in Python from its children's columns."""
        label = getattr(self, "label", type(self).__name__)
        values = [t.values_from_series(series) for series in args]
        result = self._py_eval(values, size)
        from deltaflow import errors

        if errors.keeps_errors():
            return _series_keeping_errors(result, dtype)
        try:
            series = t.series_from_values("value", result, dtype)
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError) as exc:
            raise TypeError(
                f"{label} returned values that are not of its declared type {dtype!r}: {exc}"
            ) from exc
        if series.null_count() != sum(v is None for v in result):
            # The conversion is lenient: a value of another type silently became null.
            bad = next(
                v
                for v, ok in zip(result, series.is_not_null(), strict=True)
                if v is not None and not ok
            )
            raise TypeError(
                f"{label} returned {bad!r}, which is not of its declared type {dtype!r}"
            )
        return series

    def walk(self) -> Iterator[ColumnExpression]:
        """All nodes, children before parents."""
        for child in self.children():
            yield from child.walk()
        yield self

    def references(self) -> list[ColumnReference]:
        return [node for node in self.walk() if isinstance(node, ColumnReference)]

    def __bool__(self) -> bool:
        raise TypeError(
            "a column expression has no truth value: use & | ~ instead of and/or/not, and "
            "pw.if_else instead of if"
        )

    def __hash__(self) -> int:
        return self._uid

    def __repr__(self) -> str:
        from deltaflow.expressions.printer import expression_text

        return expression_text(self)

    # --- the nodes built by the operators of OperatorOverloads --------------------------
    def _binary_op(self, op: str, left: Any, right: Any) -> ColumnExpression:
        return BinaryOp(op, wrap_value(left), wrap_value(right))

    def _unary_op(self, op: str) -> ColumnExpression:
        return UnaryOp(op, self)

    def _matrix_product(self, left: Any, right: Any) -> ColumnExpression:
        return MatMul(wrap_value(left), wrap_value(right))

    def _indexed(self, index: Any) -> ColumnExpression:
        return GetItem(self, wrap_value(index))

    # --- methods ---------------------------------------------------------------------
    def is_none(self) -> ColumnExpression:
        return IsNone(self, negate=False)

    def is_not_none(self) -> ColumnExpression:
        return IsNone(self, negate=True)

    def as_int(self, default: Any = None, unwrap: bool = False) -> ColumnExpression:
        return ConvertTo(self, t.INT, unwrap, default)

    def as_float(self, default: Any = None, unwrap: bool = False) -> ColumnExpression:
        return ConvertTo(self, t.FLOAT, unwrap, default)

    def as_str(self, default: Any = None, unwrap: bool = False) -> ColumnExpression:
        return ConvertTo(self, t.STR, unwrap, default)

    def as_bool(self, default: Any = None, unwrap: bool = False) -> ColumnExpression:
        return ConvertTo(self, t.BOOL, unwrap, default)

    def get(self, index: Any, default: Any = None) -> ColumnExpression:
        return GetItem(self, wrap_value(index), default=wrap_value(default), checked=False)

    def to_string(self) -> ColumnExpression:
        from deltaflow.expressions.to_string import ToString

        return ToString(self)

    @property
    def str(self) -> Any:
        from deltaflow.expressions.namespaces import StringNamespace

        return StringNamespace(self)

    @property
    def dt(self) -> Any:
        from deltaflow.expressions.namespaces import DateTimeNamespace

        return DateTimeNamespace(self)

    @property
    def num(self) -> Any:
        from deltaflow.expressions.namespaces import NumericalNamespace

        return NumericalNamespace(self)


# ------------------------------------------------------------------------------------------
# Leaves
# ------------------------------------------------------------------------------------------


class ColumnReference(ColumnExpression):
    """``table.column``: a column of a table, or of a placeholder such as ``pw.this``."""

    def __init__(self, table: Any, name: str) -> None:
        super().__init__()
        self._table = table
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def table(self) -> Any:
        return self._table

    def _infer(self, scope: Scope) -> t.DType:
        try:
            return scope.resolve(self)[1]
        except KeyError as exc:
            raise ColumnNotFoundError(f"{scope.description}: {exc}") from None
        except ValueError as exc:
            failure = scope.fail(str(exc))
            if isinstance(exc, ExpressionError):  # keeps its class (a ValueError as well)
                failure = type(exc)(str(failure))
            raise failure from None

    def _polars(self, scope: Scope) -> pl.Expr:
        return pl.col(scope.resolve(self)[0])


class Literal(ColumnExpression):
    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value

    def _infer(self, scope: Scope) -> t.DType:
        if self.value is None:
            return t.NONE  # widens to Optional[T] next to a T (if_else, coalesce, concat ...)
        return t.infer_dtype([self.value])

    def _polars(self, scope: Scope) -> pl.Expr:
        dtype = scope.dtype_of(self)
        if self.value is None:
            return pl.lit(None)
        polars_type = dtype.to_polars()
        if polars_type == pl.Object:
            stored = t.to_storage(self.value, dtype)
            return pl.lit(pl.Series("literal", [stored], dtype=pl.Object)).first()
        return pl.lit(t.series_from_values("literal", [self.value], dtype)).first()

    def __repr__(self) -> str:
        return repr(self.value)


# ------------------------------------------------------------------------------------------
# Operators
# ------------------------------------------------------------------------------------------


class BinaryOp(ColumnExpression):
    def __init__(self, op: str, left: ColumnExpression, right: ColumnExpression) -> None:
        super().__init__()
        self.op = op
        self.left = left
        self.right = right

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.left, self.right)

    def _null_literal_side(self) -> ColumnExpression | None:
        if isinstance(self.right, Literal) and self.right.value is None:
            return self.left
        if isinstance(self.left, Literal) and self.left.value is None:
            return self.right
        return None

    def _infer(self, scope: Scope) -> t.DType:
        left, right = scope.dtype_of(self.left), scope.dtype_of(self.right)
        nullable = left.is_optional or right.is_optional
        a, b = left.strip_optional(), right.strip_optional()
        op = self.op
        if op in ops.COMPARISON:
            if op in ops.EQUALITY and self._null_literal_side() is not None:
                return t.BOOL
            if not t.pointers_compatible(a, b):
                raise scope.fail(
                    f"cannot compare {t.describe(left)} with {t.describe(right)}"
                    f" using {op}: they are ids of rows with different keys"
                )
            if not ops.comparable(op, left, right):
                raise scope.fail(
                    f"cannot compare {left!r} with {right!r} using {op} (in {self._describe()})"
                )
            return t.BOOL
        if op in ops.BOOLEAN:
            if a == b == t.BOOL:
                return t.Optional(t.BOOL) if nullable else t.BOOL
            if a == b == t.INT:
                return t.Optional(t.INT) if nullable else t.INT
            raise scope.fail(
                f"operator {op} needs two bool (or two int) operands, got {left!r} and {right!r}"
            )
        if a == t.ANY or b == t.ANY:
            return t.ANY
        result = ops.arithmetic_type(op, a, b)
        if result is None:
            raise scope.fail(
                f"operator {op} is not defined for {left!r} and {right!r} (in {self._describe()})"
            )
        return t.Optional(result) if nullable else result

    def _describe(self) -> str:
        return f"{_short(self.left)} {self.op} {_short(self.right)}"

    def computed_in_python(self, scope: Scope) -> bool:
        """Comparisons of values kept as Python objects (tuples, lists, Json ...) and tuple
        concatenation run row by row; everything else is a Polars expression."""
        if self.op in ("==", "!=") and self._null_literal_side() is not None:
            return False
        a = scope.dtype_of(self.left).strip_optional()
        b = scope.dtype_of(self.right).strip_optional()
        if a == t.ANY or b == t.ANY:
            return False
        if self.op in ops.COMPARISON:
            return a.stored_as_object or b.stored_as_object
        return self.op == "+" and isinstance(a, t.Tuple) and isinstance(b, t.Tuple)

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return compare_rows(self.op, args)

    def _polars(self, scope: Scope) -> pl.Expr:
        op = self.op
        if op in ("==", "!=") and (side := self._null_literal_side()) is not None:
            inner = side.to_polars(scope)
            return inner.is_null() if op == "==" else inner.is_not_null()
        left_type = scope.dtype_of(self.left).strip_optional()
        right_type = scope.dtype_of(self.right).strip_optional()
        if (left_type.stored_as_object or right_type.stored_as_object) and left_type != t.ANY:
            raise scope.fail(f"operator {op} on {left_type!r} values is not supported")
        a, b = self.left.to_polars(scope), self.right.to_polars(scope)
        nullable = scope.dtype_of(self.left).is_optional or scope.dtype_of(self.right).is_optional
        return ops.compile_binary(op, a, b, left_type, right_type, nullable)

    def zero_divisor(self, scope: Scope) -> pl.Expr | None:
        """Where this division's divisor is zero (None: not a division, or a divisor type
        that has no zero); the evaluator raises ZeroDivisionError for those rows."""
        if self.op not in ops.DIVISIONS:
            return None
        return ops.zero_divisor(self.right.to_polars(scope), scope.dtype_of(self.right))


def _short(expr: ColumnExpression) -> str:
    if isinstance(expr, ColumnReference):
        return expr.name
    if isinstance(expr, Literal):
        return repr(expr.value)
    return "(...)"


class UnaryOp(ColumnExpression):
    def __init__(self, op: str, arg: ColumnExpression) -> None:
        super().__init__()
        self.op = op
        self.arg = arg

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg,)

    def _infer(self, scope: Scope) -> t.DType:
        dtype = scope.dtype_of(self.arg)
        result = ops.unary_type(self.op, dtype)
        if result is not None:
            return result
        if self.op == "abs":  # abs() is the num.abs() method, missing on this type
            raise ExpressionAttributeError(
                f"{scope.description}: abs() needs an int or float column, got {dtype!r}"
            )
        if self.op == "~":
            raise scope.fail(f"operator ~ needs a bool column, got {dtype!r}")
        raise scope.fail(f"operator {self.op} is not defined for {dtype!r}")

    def _polars(self, scope: Scope) -> pl.Expr:
        inner = self.arg.to_polars(scope)
        if self.op == "~":
            return ~inner
        if self.op == "-":
            return -inner
        return inner.abs()


class IsNone(ColumnExpression):
    def __init__(self, arg: ColumnExpression, negate: bool) -> None:
        super().__init__()
        self.arg = arg
        self.negate = negate

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg,)

    def _infer(self, scope: Scope) -> t.DType:
        scope.dtype_of(self.arg)
        return t.BOOL

    def _polars(self, scope: Scope) -> pl.Expr:
        inner = self.arg.to_polars(scope)
        return inner.is_not_null() if self.negate else inner.is_null()


# ------------------------------------------------------------------------------------------
# Python nodes
# ------------------------------------------------------------------------------------------


class PythonNode(ColumnExpression):
    """A node computed in Python, row by row, from its children's values."""

    _python_node = True
    label = "expression"


class MatMul(PythonNode):
    """``a @ b`` on numpy array columns: numpy's matrix product per row, always an array
    (a 0-d one for two vectors), whatever the element type, as in Pathway. Shapes that do
    not fit (or 0-d operands) fail with a ValueError when the row is computed."""

    label = "@"

    def __init__(self, left: ColumnExpression, right: ColumnExpression) -> None:
        super().__init__()
        self.left = left
        self.right = right

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.left, self.right)

    def _infer(self, scope: Scope) -> t.DType:
        left, right = scope.dtype_of(self.left), scope.dtype_of(self.right)
        a, b = left.strip_optional(), right.strip_optional()
        if not (isinstance(a, t.Array) and isinstance(b, t.Array)):
            raise scope.fail(
                f"operator @ needs two numpy array columns, got {left!r} and {right!r}"
            )
        return t.optional(t.ARRAY) if left.is_optional or right.is_optional else t.ARRAY

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return matmul_rows(args)


class MakeTuple(PythonNode):
    label = "pw.make_tuple"

    def __init__(self, *args: ColumnExpression) -> None:
        super().__init__()
        self.args = args

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args

    def _infer(self, scope: Scope) -> t.DType:
        return t.Tuple(*(scope.dtype_of(a) for a in self.args))

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return [tuple(column[row] for column in args) for row in range(size)]


class GetItem(PythonNode):
    """``expr[index]`` on tuples, lists, arrays and Json; ``expr.get(index, default)``."""

    label = "indexing"

    def __init__(
        self,
        arg: ColumnExpression,
        index: ColumnExpression,
        default: ColumnExpression | None = None,
        checked: bool = True,
    ) -> None:
        super().__init__()
        self.arg = arg
        self.index = index
        self.default = default if default is not None else Literal(None)
        self.checked = checked

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg, self.index, self.default)

    def _infer(self, scope: Scope) -> t.DType:
        container = scope.dtype_of(self.arg)
        scope.dtype_of(self.index)
        index = self.index
        constant = (
            index.value
            if isinstance(index, Literal)
            and isinstance(index.value, int)
            and not isinstance(index.value, bool)
            else None
        )
        return item_type(
            scope, container, lambda: scope.dtype_of(self.default), constant, self.checked
        )

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return index_rows(args, self.checked)


class ConvertTo(PythonNode):
    """``.as_int()`` / ``.as_float()`` / ``.as_str()`` / ``.as_bool()`` on Json values; a
    null (or missing) value gives ``default``."""

    def __init__(
        self, arg: ColumnExpression, target: t.DType, unwrap: bool, default: Any = None
    ) -> None:
        super().__init__()
        self.arg = arg
        self.target = target
        self.unwrap = unwrap
        self.default = wrap_value(default)
        self.label = f"as_{target!r}"

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg, self.default)

    def _infer(self, scope: Scope) -> t.DType:
        return json_conversion_type(
            scope,
            self.label,
            self.arg,
            scope.dtype_of(self.arg),
            self.target,
            self.unwrap,
            lambda: scope.dtype_of(self.default),
            isinstance(self.default, Literal) and self.default.value is None,
        )

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return convert_json_rows(args, self.target, self.unwrap, self.label)
