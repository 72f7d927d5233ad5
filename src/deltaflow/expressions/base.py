"""Column expressions: the lazily built trees users write inside ``select``, ``filter`` ...

An expression never computes by itself. Given a :class:`Scope` (which says what each column
reference means in the operation at hand) it can tell its type (``infer``, which also checks
it) and build a Polars expression (``to_polars``). Nodes that need Python per row (UDFs,
values kept as Python objects) are *python nodes*: the evaluator computes them first, as
columns, and the Polars expression then refers to those columns.
"""

from __future__ import annotations

import itertools
import numbers
import operator
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow.expressions import operators as ops

Value = Any
_counter = itertools.count()


class ExpressionError(TypeError):
    """An expression cannot be typed in its context (wrong column, impossible operation)."""


class ExpressionAttributeError(ExpressionError, AttributeError):
    """A method (``.dt.hour()``, ``abs()`` ...) that a column of this type does not have."""


class ColumnNotFoundError(KeyError, AttributeError):
    """A column name that the table does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "column not found"


class Scope:
    """How column references resolve in one operation.

    ``resolver(ref)`` returns the name of the frame column holding the referenced column and
    its type, or raises ``KeyError``/``ValueError`` with a message for the user.
    """

    def __init__(self, description: str,
                 resolver: Callable[[ColumnReference], tuple[str, t.DType]]) -> None:
        self.description = description
        self._resolver = resolver
        self._types: dict[int, t.DType] = {}
        self.python_columns: dict[int, str] = {}
        # Set while the evaluator compiles the error-keeping form of a projection: each
        # node's error mask (None: never an error), read by pw.fill_error and remove_errors.
        self.error_exprs: dict[int, pl.Expr | None] | None = None

    def resolve(self, ref: ColumnReference) -> tuple[str, t.DType]:
        return self._resolver(ref)

    def dtype_of(self, expr: ColumnExpression) -> t.DType:
        key = id(expr)
        if key not in self._types:
            dtype = expr._infer(self)
            if not getattr(expr, "accepts_futures", False):
                self._refuse_future_arguments(expr)
            self._types[key] = dtype
        return self._types[key]

    def _refuse_future_arguments(self, expr: ColumnExpression) -> None:
        """A column of a fully asynchronous UDF (``Future[T]``, deltaflow.udfs.future) may
        hold no value yet: only passing it along, casting it and other such UDFs take it."""
        for child in expr.children():
            dtype = self._types.get(id(child))  # the children _infer typed (no new lookups)
            if getattr(dtype, "is_future", False):
                raise self.fail(f"cannot compute {expr!r}: {child!r} has type {dtype!r} (a "
                                f"fully asynchronous UDF's result, maybe not there yet); "
                                f"call await_futures() on the table first")

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"{self.description}: {message}")


def wrap_value(value: Any) -> ColumnExpression:
    """Turn a constant into an expression; expressions pass through, and a Python tuple
    holding expressions is ``pw.make_tuple`` of its items (as in Pathway)."""
    if isinstance(value, ColumnExpression):
        return value
    if type(value) is tuple and any(isinstance(v, ColumnExpression) for v in value):
        return MakeTuple(*(wrap_value(v) for v in value))
    return Literal(value)


class ColumnExpression:
    """Base class of every column expression."""

    _python_node = False  # computed row by row in Python by the evaluator

    def __init__(self) -> None:
        self._uid = next(_counter)

    def __iter__(self) -> Iterator[Any]:
        # Without this, indexing (``__getitem__``) would make ``list(t.a)`` loop forever.
        raise TypeError(f"{self!r} is not iterable: a column expression stands for one value "
                        f"per row, computed when the pipeline runs; to work on the values in "
                        f"Python, use pw.apply(function, column) (or pw.udf)")

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
            raise TypeError(f"{label} returned values that are not of its declared type "
                            f"{dtype!r}: {exc}") from exc
        if series.null_count() != sum(v is None for v in result):
            # The conversion is lenient: a value of another type silently became null.
            bad = next(v for v, ok in zip(result, series.is_not_null(), strict=True)
                       if v is not None and not ok)
            raise TypeError(f"{label} returned {bad!r}, which is not of its declared type "
                            f"{dtype!r}")
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

    # --- operators -------------------------------------------------------------------
    def __add__(self, other: Any) -> ColumnExpression:
        return BinaryOp("+", self, wrap_value(other))

    def __radd__(self, other: Any) -> ColumnExpression:
        return BinaryOp("+", wrap_value(other), self)

    def __matmul__(self, other: Any) -> ColumnExpression:
        return MatMul(self, wrap_value(other))

    def __rmatmul__(self, other: Any) -> ColumnExpression:
        return MatMul(wrap_value(other), self)

    def __sub__(self, other: Any) -> ColumnExpression:
        return BinaryOp("-", self, wrap_value(other))

    def __rsub__(self, other: Any) -> ColumnExpression:
        return BinaryOp("-", wrap_value(other), self)

    def __mul__(self, other: Any) -> ColumnExpression:
        return BinaryOp("*", self, wrap_value(other))

    def __rmul__(self, other: Any) -> ColumnExpression:
        return BinaryOp("*", wrap_value(other), self)

    def __truediv__(self, other: Any) -> ColumnExpression:
        return BinaryOp("/", self, wrap_value(other))

    def __rtruediv__(self, other: Any) -> ColumnExpression:
        return BinaryOp("/", wrap_value(other), self)

    def __floordiv__(self, other: Any) -> ColumnExpression:
        return BinaryOp("//", self, wrap_value(other))

    def __rfloordiv__(self, other: Any) -> ColumnExpression:
        return BinaryOp("//", wrap_value(other), self)

    def __mod__(self, other: Any) -> ColumnExpression:
        return BinaryOp("%", self, wrap_value(other))

    def __rmod__(self, other: Any) -> ColumnExpression:
        return BinaryOp("%", wrap_value(other), self)

    def __pow__(self, other: Any) -> ColumnExpression:
        return BinaryOp("**", self, wrap_value(other))

    def __rpow__(self, other: Any) -> ColumnExpression:
        return BinaryOp("**", wrap_value(other), self)

    def __eq__(self, other: Any) -> ColumnExpression:  # type: ignore[override]
        return BinaryOp("==", self, wrap_value(other))

    def __ne__(self, other: Any) -> ColumnExpression:  # type: ignore[override]
        return BinaryOp("!=", self, wrap_value(other))

    def __lt__(self, other: Any) -> ColumnExpression:
        return BinaryOp("<", self, wrap_value(other))

    def __le__(self, other: Any) -> ColumnExpression:
        return BinaryOp("<=", self, wrap_value(other))

    def __gt__(self, other: Any) -> ColumnExpression:
        return BinaryOp(">", self, wrap_value(other))

    def __ge__(self, other: Any) -> ColumnExpression:
        return BinaryOp(">=", self, wrap_value(other))

    def __lshift__(self, other: Any) -> ColumnExpression:
        return BinaryOp("<<", self, wrap_value(other))

    def __rlshift__(self, other: Any) -> ColumnExpression:
        return BinaryOp("<<", wrap_value(other), self)

    def __rshift__(self, other: Any) -> ColumnExpression:
        return BinaryOp(">>", self, wrap_value(other))

    def __rrshift__(self, other: Any) -> ColumnExpression:
        return BinaryOp(">>", wrap_value(other), self)

    def __and__(self, other: Any) -> ColumnExpression:
        return BinaryOp("&", self, wrap_value(other))

    def __rand__(self, other: Any) -> ColumnExpression:
        return BinaryOp("&", wrap_value(other), self)

    def __or__(self, other: Any) -> ColumnExpression:
        return BinaryOp("|", self, wrap_value(other))

    def __ror__(self, other: Any) -> ColumnExpression:
        return BinaryOp("|", wrap_value(other), self)

    def __xor__(self, other: Any) -> ColumnExpression:
        return BinaryOp("^", self, wrap_value(other))

    def __rxor__(self, other: Any) -> ColumnExpression:
        return BinaryOp("^", wrap_value(other), self)

    def __invert__(self) -> ColumnExpression:
        return UnaryOp("~", self)

    def __neg__(self) -> ColumnExpression:
        return UnaryOp("-", self)

    def __abs__(self) -> ColumnExpression:
        return UnaryOp("abs", self)

    def __getitem__(self, index: Any) -> ColumnExpression:
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
                    errors.report(f"TypeError: cannot create an object of type "
                                  f"{_engine_type_name(dtype)} from value {value!r}")
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
    names = {t.INT: "Int", t.FLOAT: "Float", t.STR: "String", t.BOOL: "Bool",
             t.BYTES: "Bytes", t.POINTER: "Pointer", t.JSON: "Json"}
    return names.get(base, repr(base))


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
            return t.Optional(t.ANY)
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

_PYTHON_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
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
                raise scope.fail(f"cannot compare {t.describe(left)} with {t.describe(right)}"
                                 f" using {op}: they are ids of rows with different keys")
            if not ops.comparable(op, left, right):
                raise scope.fail(f"cannot compare {left!r} with {right!r} using {op} "
                                 f"(in {self._describe()})")
            return t.BOOL
        if op in ops.BOOLEAN:
            if a == b == t.BOOL:
                return t.Optional(t.BOOL) if nullable else t.BOOL
            if a == b == t.INT:
                return t.Optional(t.INT) if nullable else t.INT
            raise scope.fail(f"operator {op} needs two bool (or two int) operands, "
                             f"got {left!r} and {right!r}")
        if a == t.ANY or b == t.ANY:
            return t.ANY
        result = ops.arithmetic_type(op, a, b)
        if result is None:
            raise scope.fail(f"operator {op} is not defined for {left!r} and {right!r}"
                             f" (in {self._describe()})")
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
        if self.op == "+":
            return [None if a is None or b is None else tuple(a) + tuple(b)
                    for a, b in zip(args[0], args[1], strict=True)]
        compare = _PYTHON_COMPARISONS[self.op]
        out: list[Any] = []
        for a, b in zip(args[0], args[1], strict=True):
            if a is None or b is None:
                out.append(compare(a is None, b is None) if self.op in ("==", "!=") else None)
                continue
            try:
                out.append(compare(_comparable_value(a), _comparable_value(b)))
            except TypeError as exc:
                raise TypeError(f"cannot compare {a!r} with {b!r} using {self.op}: "
                                f"{exc}") from None
        return out

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
        nullable = scope.dtype_of(self.left).is_optional or \
            scope.dtype_of(self.right).is_optional
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
            raise ExpressionAttributeError(f"{scope.description}: abs() needs an int or "
                                           f"float column, got {dtype!r}")
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


class IfElse(ColumnExpression):
    def __init__(self, cond: ColumnExpression, then: ColumnExpression,
                 otherwise: ColumnExpression) -> None:
        super().__init__()
        self.cond, self.then, self.otherwise = cond, then, otherwise

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.cond, self.then, self.otherwise)

    def _infer(self, scope: Scope) -> t.DType:
        cond = scope.dtype_of(self.cond)
        if cond.strip_optional() != t.BOOL:
            raise scope.fail(f"pw.if_else needs a bool condition, got {cond!r}")
        a, b = scope.dtype_of(self.then), scope.dtype_of(self.otherwise)
        result = _merge_types(a, b)
        if result is None:
            raise scope.fail(f"pw.if_else branches have incompatible types {a!r} and {b!r}")
        return result

    def computed_in_python(self, scope: Scope) -> bool:
        return scope.dtype_of(self).stored_as_object

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return [then if cond else otherwise
                for cond, then, otherwise in zip(*args, strict=True)]

    def _polars(self, scope: Scope) -> pl.Expr:
        out = scope.dtype_of(self)
        return (pl.when(self.cond.to_polars(scope))
                .then(_coerce(self.then, out, scope))
                .otherwise(_coerce(self.otherwise, out, scope)))


def _merge_types(a: t.DType, b: t.DType) -> t.DType | None:
    if a == t.Optional(t.ANY):
        return t.optional(b)
    if b == t.Optional(t.ANY):
        return t.optional(a)
    return t.common_supertype(a, b)


def _coerce(expr: ColumnExpression, target: t.DType, scope: Scope) -> pl.Expr:
    compiled = expr.to_polars(scope)
    source = scope.dtype_of(expr).strip_optional()
    if source == t.INT and target.strip_optional() == t.FLOAT:
        return compiled.cast(pl.Float64)
    return compiled


class Coalesce(ColumnExpression):
    def __init__(self, *args: ColumnExpression) -> None:
        super().__init__()
        self.args = args

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args

    def _infer(self, scope: Scope) -> t.DType:
        if not self.args:
            raise scope.fail("pw.coalesce needs at least one argument")
        result: t.DType | None = None
        for arg in self.args:
            dtype = scope.dtype_of(arg)
            if result is None:
                result = dtype
                continue
            merged = _merge_types(result, dtype)
            if merged is None:
                raise scope.fail(f"pw.coalesce arguments have incompatible types {result!r} "
                                 f"and {dtype!r}")
            result = merged
        assert result is not None
        if not all(scope.dtype_of(a).is_optional for a in self.args):
            return result.strip_optional()
        return result

    def computed_in_python(self, scope: Scope) -> bool:
        return scope.dtype_of(self).stored_as_object

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return [next((v for v in values if v is not None), None)
                for values in zip(*args, strict=True)]

    def _polars(self, scope: Scope) -> pl.Expr:
        out = scope.dtype_of(self)
        return pl.coalesce([_coerce(a, out, scope) for a in self.args])


class Require(ColumnExpression):
    """``pw.require(val, *deps)``: ``val`` unless one of ``deps`` is None, then None."""

    def __init__(self, value: ColumnExpression, *deps: ColumnExpression) -> None:
        super().__init__()
        self.value = value
        self.deps = deps

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.value, *self.deps)

    def _infer(self, scope: Scope) -> t.DType:
        for dep in self.deps:
            scope.dtype_of(dep)
        return t.optional(scope.dtype_of(self.value))

    def _polars(self, scope: Scope) -> pl.Expr:
        if not self.deps:
            return self.value.to_polars(scope)
        any_null = pl.any_horizontal([d.to_polars(scope).is_null() for d in self.deps])
        return pl.when(any_null).then(None).otherwise(self.value.to_polars(scope))


_CAST_POLARS_OK = {t.INT, t.FLOAT, t.BOOL, t.STR}


class Cast(ColumnExpression):
    """``pw.cast(type, expr)``: convert values to another type."""

    accepts_futures = True  # as in Pathway: a Future column may be cast (or to_string'ed)

    def __init__(self, target: Any, arg: ColumnExpression) -> None:
        super().__init__()
        self.target = t.wrap(target)
        self.arg = arg

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg,)

    def _infer(self, scope: Scope) -> t.DType:
        source = scope.dtype_of(self.arg)
        src, dst = source.strip_optional(), self.target.strip_optional()
        if src == dst or src == t.ANY or dst == t.ANY:
            pass
        elif not (src in _CAST_POLARS_OK and dst in _CAST_POLARS_OK):
            raise scope.fail(f"cannot cast {source!r} to {self.target!r}")
        return t.optional(dst) if source.is_optional else self.target

    def _polars(self, scope: Scope) -> pl.Expr:
        src = scope.dtype_of(self.arg).strip_optional()
        dst = self.target.strip_optional()
        inner = self.arg.to_polars(scope)
        if src == dst or dst == t.ANY or src == t.ANY:
            return inner
        if dst == t.STR and src == t.BOOL:
            return pl.when(inner).then(pl.lit("True")).otherwise(pl.lit("False"))
        if dst == t.STR and src == t.FLOAT:
            return inner.map_elements(repr, return_dtype=pl.String)
        if dst == t.BOOL and src == t.STR:
            return inner.str.len_bytes() > 0  # a non-empty string is true, as in Pathway
        return inner.cast(dst.to_polars(), strict=True)


class DeclareType(ColumnExpression):
    """``pw.declare_type(type, expr)``: change the declared type, keep the values."""

    def __init__(self, target: Any, arg: ColumnExpression) -> None:
        super().__init__()
        self.target = t.wrap(target)
        self.arg = arg

    @property
    def accepts_futures(self) -> bool:
        """A ``Future`` column may be declared a ``Future`` (concat's common types)."""
        return getattr(self.target, "is_future", False)

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg,)

    def _infer(self, scope: Scope) -> t.DType:
        source = scope.dtype_of(self.arg)
        # From Any, any type may be declared (as in Pathway): the values are converted to the
        # target's storage when computed, and one that does not fit is an error then.
        stored_alike = source.to_polars() == self.target.to_polars() or self.target == t.ANY \
            or (source == t.NONE and self.target.is_optional) or source.strip_optional() == t.ANY
        widening = source.strip_optional() == t.INT and self.target.strip_optional() == t.FLOAT
        if not stored_alike and not widening:
            raise scope.fail(f"declare_type: values of {source!r} are not stored like "
                             f"{self.target!r}; use pw.cast")
        return self.target

    def _polars(self, scope: Scope) -> pl.Expr:
        inner = self.arg.to_polars(scope)
        source = scope.dtype_of(self.arg)
        if source.strip_optional() == t.ANY and self.target.strip_optional() != t.ANY:
            target = self.target
            return inner.map_batches(lambda series: _declared_from_any(series, target),
                                     return_dtype=target.to_polars(), is_elementwise=True)
        if source.to_polars() != self.target.to_polars() and self.target != t.ANY:
            return inner.cast(self.target.to_polars())
        return inner


def _declared_from_any(series: pl.Series, target: t.DType) -> pl.Series:
    """Values of an ``Any`` column stored as ``target`` declares them (``declare_type`` /
    ``update_types``); a ``TypeError`` for a value that is not of that type."""
    values = series.to_list()
    stored = t.series_from_values(series.name, values, target)
    if stored.null_count() != sum(v is None for v in values):
        bad = next(v for v, s in zip(values, stored.to_list(), strict=True)
                   if v is not None and s is None)
        raise TypeError(f"declare_type: the value {bad!r} ({type(bad).__name__}) is not of "
                        f"the declared type {target!r}; use pw.cast to convert values")
    return stored


# ------------------------------------------------------------------------------------------
# Python nodes
# ------------------------------------------------------------------------------------------


class PythonNode(ColumnExpression):
    """A node computed in Python, row by row, from its children's values."""

    _python_node = True
    label = "expression"



class Apply(PythonNode):
    """A Python function applied to every row (``pw.apply``, ``@pw.udf``).

    How the calls are made (executor, cache, batches) is decided by ``options`` (built by
    :mod:`deltaflow.udfs`; None for a plain synchronous call); the evaluation itself lives in
    :mod:`deltaflow.udfs.evaluation`. A row whose call failed is turned into an error in one
    place, :meth:`fail`.
    """

    def __init__(self, fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 return_type: Any = None, *, propagate_none: bool = False,
                 deterministic: bool = False, name: str | None = None,
                 options: Any = None) -> None:
        super().__init__()
        self.fun = fun
        self.args = tuple(wrap_value(a) for a in args)
        self.kwarg_names = tuple(kwargs)
        self.kwargs = tuple(wrap_value(v) for v in kwargs.values())
        self.return_type = None if return_type is None else t.wrap(return_type)
        self.propagate_none = propagate_none
        self.deterministic = deterministic
        self.label: str = name or str(getattr(fun, "__name__", repr(fun)))
        self.options = options  # a deltaflow.udfs.evaluation.CallOptions, or None
        # Whether arguments may be Future columns: set for fully asynchronous UDFs, whose
        # calls may take another's result.
        self.accepts_futures = False

    def children(self) -> tuple[ColumnExpression, ...]:
        return (*self.args, *self.kwargs)

    def _infer(self, scope: Scope) -> t.DType:
        arg_types = [scope.dtype_of(c) for c in self.children()]
        if self.return_type is not None:
            result = self.return_type
        else:
            result = _annotated_return(self.fun)
        if self.propagate_none and any(a.is_optional for a in arg_types):
            if getattr(result, "is_future", False):  # Future[T] -> Future[Optional[T]]
                # A FutureType, not imported here: deltaflow.udfs.future imports this module.
                future: Any = result
                return type(future)(t.optional(future.wrapped))
            result = t.optional(result)
        return result

    def compute_rows(self, args: list[pl.Series], size: int, dtype: t.DType,
                     ids: pl.Series, diffs: pl.Series) -> pl.Series:
        """:meth:`compute` knowing each row's id and diff: the value a non-deterministic
        function gave a row is remembered, and its deletion retracts that same value."""
        from deltaflow.udfs.evaluation import compute_with_rows

        return compute_with_rows(self, args, size, dtype, ids, diffs)

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        from deltaflow.udfs.evaluation import evaluate

        results, failures = evaluate(self, args, size)
        if failures:
            from deltaflow import errors

            if not errors.keeps_errors():
                self.fail(args, failures)
            for row in sorted(failures):  # terminate_on_error=False: error values
                results[row] = errors.on_failure(errors.exception_message(failures[row]))
        return results

    def fail(self, args: list[list[Any]], failures: dict[int, BaseException]) -> NoReturn:
        """What a failed call becomes (``failures``: exceptions by row): today the run stops
        with a :class:`UdfError` naming the function and the first failed row."""
        row = min(failures)
        values = [column[row] for column in args]
        positional = len(self.args)
        kwargs = dict(zip(self.kwarg_names, values[positional:], strict=True))
        error = failures[row]
        raise UdfError.wrapping(self.label, values[:positional], kwargs, error) from error


class UdfError(RuntimeError):
    """A user function raised while the pipeline ran; names the function and the row.

    Raised as an instance of a subclass that also derives from the type of the original
    exception, so that ``except ZeroDivisionError`` (what Pathway raises) catches it too.
    """

    _subclasses: dict[type[BaseException], type[UdfError]] = {}

    def __init__(self, name: str, args: list[Any], kwargs: dict[str, Any],
                 error: BaseException) -> None:
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        self.message = (f"function {name!r} failed on arguments ({shown}): "
                        f"{type(error).__name__}: {error}")
        RuntimeError.__init__(self, self.message)
        self.function = name
        self.error = error

    def __str__(self) -> str:
        return self.message

    @classmethod
    def wrapping(cls, name: str, args: list[Any], kwargs: dict[str, Any],
                 error: BaseException) -> UdfError:
        """The error to raise for ``error``: a UdfError that is also a ``type(error)``."""
        kind = type(error)
        subclass = cls._subclasses.get(kind)
        if subclass is None and not issubclass(kind, UdfError):
            try:
                subclass = type(f"UdfError[{kind.__name__}]", (cls, kind),
                                {"__module__": cls.__module__})
            except TypeError:  # an exception type that cannot be mixed in
                subclass = cls
            cls._subclasses[kind] = subclass
        try:
            return (subclass or cls)(name, args, kwargs, error)
        except Exception:  # noqa: BLE001 - a mixed-in type with an unusual constructor
            return cls(name, args, kwargs, error)


def _annotated_return(fun: Callable[..., Any]) -> t.DType:
    import inspect
    import typing

    target = fun
    if not inspect.isfunction(target) and not inspect.ismethod(target):
        target = getattr(fun, "__call__", fun)  # noqa: B004
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        return t.ANY
    if "return" not in hints:
        return t.ANY
    try:
        return t.wrap(hints["return"])
    except TypeError:
        return t.ANY


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
            raise scope.fail(f"operator @ needs two numpy array columns, got {left!r} and "
                             f"{right!r}")
        return t.optional(t.ARRAY) if left.is_optional or right.is_optional else t.ARRAY

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        out: list[Any] = []
        for a, b in zip(args[0], args[1], strict=True):
            if a is None or b is None:
                out.append(None)
                continue
            try:
                out.append(np.asarray(np.matmul(a, b)))
            except ValueError as exc:  # shapes that do not fit
                raise ValueError(f"operator @ cannot multiply arrays of shapes "
                                 f"{np.shape(a)} and {np.shape(b)}: {exc}") from None
        return out


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


def _user_stacklevel() -> int:
    """The ``stacklevel`` making a warning point at the innermost caller outside deltaflow."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


class GetItem(PythonNode):
    """``expr[index]`` on tuples, lists, arrays and Json; ``expr.get(index, default)``."""

    label = "indexing"

    def __init__(self, arg: ColumnExpression, index: ColumnExpression,
                 default: ColumnExpression | None = None, checked: bool = True) -> None:
        super().__init__()
        self.arg = arg
        self.index = index
        self.default = default if default is not None else Literal(None)
        self.checked = checked

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg, self.index, self.default)

    def _infer(self, scope: Scope) -> t.DType:
        container = scope.dtype_of(self.arg)
        base = container.strip_optional()
        scope.dtype_of(self.index)
        if base == t.JSON:
            if container.is_optional:
                raise scope.fail(f"Cannot get from {t.Json | None}.")
            if self.checked:
                return t.JSON
            default = scope.dtype_of(self.default)
            if default.strip_optional() not in (t.JSON, t.ANY) and default != t.NONE:
                raise scope.fail(f"Default must be of type {t.Json | None}, found "
                                 f"{default.strip_optional().typehint}.")
            return t.JSON if default.strip_optional() == t.JSON and not default.is_optional \
                else t.Optional(t.JSON)
        if isinstance(base, t.Tuple):
            return self._tuple_item_type(scope, container, base)
        if isinstance(base, t.List):
            return base.arg if self.checked else t.optional(base.arg)
        if isinstance(base, t.Array):
            return base.element()  # .get() on arrays keeps the element type, as in Pathway
        if base == t.ANY:
            return t.ANY
        if base in (t.STR,):
            return t.STR
        raise scope.fail(f"values of type {container!r} cannot be indexed")

    def _tuple_item_type(self, scope: Scope, container: t.DType, base: t.Tuple) -> t.DType:
        """The type of an item of a tuple: the element at a constant index, the common type
        of the elements at a computed one (Any when they differ)."""
        default = scope.dtype_of(self.default)
        if isinstance(self.index, Literal) and isinstance(self.index.value, int) \
                and not isinstance(self.index.value, bool):
            index = self.index.value
            if -len(base.args) <= index < len(base.args):
                return base.args[index]
            where = f"{scope.description}: index {index} is out of range for {container!r}"
            if self.checked:
                # Known when the pipeline is defined: an IndexError, as Python would raise.
                raise IndexError(where)
            warnings.warn(f"{where}; .get() always gives the default here, write the "
                          f"default alone", UserWarning, stacklevel=_user_stacklevel())
            return default
        items = set(base.args)
        if len(items) != 1:
            return t.ANY
        (item,) = items
        if self.checked:
            return item
        merged = _merge_types(item, default)
        return t.ANY if merged is None else merged


    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
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
                    out.append(t.Json.NULL if self.checked else default)
                continue
            try:
                out.append(container[index])
            except (KeyError, IndexError, TypeError):
                if self.checked:
                    raise IndexError(f"index {index!r} out of range for {container!r}") from None
                out.append(default)
        return out


class ConvertTo(PythonNode):
    """``.as_int()`` / ``.as_float()`` / ``.as_str()`` / ``.as_bool()`` on Json values; a
    null (or missing) value gives ``default``."""

    def __init__(self, arg: ColumnExpression, target: t.DType, unwrap: bool,
                 default: Any = None) -> None:
        super().__init__()
        self.arg = arg
        self.target = target
        self.unwrap = unwrap
        self.default = wrap_value(default)
        self.label = f"as_{target!r}"

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg, self.default)

    def _infer(self, scope: Scope) -> t.DType:
        source = scope.dtype_of(self.arg)
        if source.strip_optional() not in (t.JSON, t.ANY):
            raise scope.fail(f"{self.label}({self.arg!r}) can only be applied to JSON columns, "
                             f"but column has type {source.typehint}.")
        default = scope.dtype_of(self.default)
        if default.strip_optional() not in (t.ANY,) and not (
                isinstance(self.default, Literal) and self.default.value is None) and \
                not t.is_subtype(default.strip_optional(), self.target):
            raise scope.fail(f"type of default {default.strip_optional().typehint} is not "
                             f"compatible with {self.target.typehint}.")
        if self.unwrap or not default.is_optional and not (
                isinstance(self.default, Literal) and self.default.value is None):
            return self.target
        return t.Optional(self.target)

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        converters: dict[t.DType, type] = {t.INT: int, t.FLOAT: float, t.STR: str, t.BOOL: bool}
        accepted: dict[t.DType, type | tuple[type, ...]] = {
            t.INT: int, t.FLOAT: (int, float), t.STR: str, t.BOOL: bool}
        convert, expected = converters[self.target], accepted[self.target]
        out: list[Any] = []
        for value, default in zip(args[0], args[1], strict=True):
            raw = value.value if isinstance(value, t.Json) else value
            if raw is None:
                if default is None and self.unwrap:
                    raise ValueError(f"{self.label}(unwrap=True) met a null value")
                out.append(None if default is None else convert(default))
                continue
            if not isinstance(raw, expected) or (self.target != t.BOOL
                                                 and isinstance(raw, bool)):
                raise ValueError(f"cannot convert Json value {raw!r} with {self.label}()")
            out.append(convert(raw))
        return out


class Unwrap(PythonNode):
    """``pw.unwrap(expr)``: drop ``Optional`` from the type; a None value stops the run."""

    label = "pw.unwrap"

    def compute(self, args: list[pl.Series], size: int, dtype: t.DType) -> pl.Series:
        if args[0].null_count():
            from deltaflow import errors

            if not errors.keeps_errors():
                raise ValueError("pw.unwrap met a None value")
            missing = args[0].is_null()
            errors.report("cannot unwrap a None value (pw.unwrap)", count=int(missing.sum()))
            return errors.with_errors(args[0], missing)
        return args[0]

    def __init__(self, arg: ColumnExpression) -> None:
        super().__init__()
        self.arg = arg

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg,)

    def _infer(self, scope: Scope) -> t.DType:
        return scope.dtype_of(self.arg).strip_optional()



class FillError(ColumnExpression):
    """``pw.fill_error(col, replacement)``: ``replacement`` where ``col`` is an error.

    Errors exist only in runs with ``terminate_on_error=False``; the evaluator then compiles
    this node against the error masks of its argument (``Scope.error_exprs``)."""

    def __init__(self, arg: ColumnExpression, replacement: ColumnExpression) -> None:
        super().__init__()
        self.arg = arg
        self.replacement = replacement

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg, self.replacement)

    def _infer(self, scope: Scope) -> t.DType:
        scope.dtype_of(self.replacement)
        return scope.dtype_of(self.arg)

    def _polars(self, scope: Scope) -> pl.Expr:
        value = self.arg.to_polars(scope)
        arg_errors = None if scope.error_exprs is None else scope.error_exprs.get(id(self.arg))
        if arg_errors is None:
            return value
        out = scope.dtype_of(self)
        return (pl.when(arg_errors.fill_null(False))
                .then(_coerce(self.replacement, out, scope)).otherwise(value))


class NoErrors(ColumnExpression):
    """True where none of ``args`` is an error (the test behind ``Table.remove_errors``);
    never an error itself."""

    def __init__(self, *args: ColumnExpression) -> None:
        super().__init__()
        self.args = args

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args

    def _infer(self, scope: Scope) -> t.DType:
        for arg in self.args:
            scope.dtype_of(arg)
        return t.BOOL

    def _polars(self, scope: Scope) -> pl.Expr:
        masks = [] if scope.error_exprs is None else \
            [m for a in self.args if (m := scope.error_exprs.get(id(a))) is not None]
        if not masks:
            return pl.lit(True)
        return ~pl.any_horizontal([m.fill_null(False) for m in masks])


class PointerFrom(ColumnExpression):
    """``t.pointer_from(*values)``: the id a row keyed by ``values`` gets."""

    def __init__(self, *args: ColumnExpression, optional: bool = False,
                 instance: ColumnExpression | None = None) -> None:
        super().__init__()
        self.args = args
        self.optional = optional
        self.instance = instance
        self.table: Any = None  # the table whose pointer_from built it (for printing)

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args + ((self.instance,) if self.instance is not None else ())

    def _infer(self, scope: Scope) -> t.DType:
        # Pointer[key types]; with optional=True a None key gives a None pointer, so the
        # pointer is to rows keyed by the non-None values.
        types = [scope.dtype_of(a) for a in self.children()]
        if self.optional and any(x.is_optional for x in types):
            return t.Optional(t.PointerType([x.strip_optional() for x in types]))
        return t.PointerType(types)

    def _polars(self, scope: Scope) -> pl.Expr:
        from deltaflow._ids import id_expr

        parts = [(c.to_polars(scope), scope.dtype_of(c)) for c in self.children()]
        ids = id_expr(parts)
        if self.optional:
            any_null = pl.any_horizontal([p.is_null() for p, _ in parts])
            return pl.when(any_null).then(None).otherwise(ids)
        return ids


class MethodCall(ColumnExpression):
    """A method of the ``.str``/``.dt``/``.num`` namespaces.

    ``type_rule(scope, arg_types) -> result type`` checks arguments; ``build(args, arg_types)``
    builds the Polars expression from the compiled arguments.
    """

    def __init__(self, name: str, args: tuple[ColumnExpression, ...],
                 type_rule: Callable[[Scope, list[t.DType]], t.DType],
                 build: Callable[[list[pl.Expr], list[t.DType]], pl.Expr]) -> None:
        super().__init__()
        self.name = name
        self.args = args
        self.type_rule = type_rule
        self.build = build

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args

    def _infer(self, scope: Scope) -> t.DType:
        return self.type_rule(scope, [scope.dtype_of(a) for a in self.args])

    def _polars(self, scope: Scope) -> pl.Expr:
        return self.build([a.to_polars(scope) for a in self.args],
                          [scope.dtype_of(a) for a in self.args])


class PythonMethodCall(PythonNode):
    """A namespace method computed in Python per row (when Polars has no equivalent)."""

    def __init__(self, name: str, args: tuple[ColumnExpression, ...],
                 type_rule: Callable[[Scope, list[t.DType]], t.DType],
                 fun: Callable[..., Any]) -> None:
        super().__init__()
        self.label = name
        self.args = args
        self.type_rule = type_rule
        self.fun = fun

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args

    def _infer(self, scope: Scope) -> t.DType:
        return self.type_rule(scope, [scope.dtype_of(a) for a in self.args])

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        out = []
        for row in range(size):
            values = [column[row] for column in args]
            out.append(None if values[0] is None else self.fun(*values))
        return out
