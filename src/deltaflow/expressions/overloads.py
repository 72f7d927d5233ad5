"""Python's operators on column expressions (``+``, ``==``, ``&``, ``@``, ``[]`` ...).

:class:`OperatorOverloads` is a base class of
:class:`~deltaflow.expressions.core.ColumnExpression`. Each operator only says which node
it means; :class:`~deltaflow.expressions.core.ColumnExpression` builds the nodes through
four hooks (``_binary_op``, ``_unary_op``, ``_matrix_product``, ``_indexed``), so this module
needs none of the node classes (which are themselves column expressions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deltaflow.expressions.core import ColumnExpression


class OperatorOverloads:
    """The operators of a column expression, each building one expression node."""

    __slots__ = ()

    # --- the nodes the operators build (provided by ColumnExpression) --------------------
    def _binary_op(self, op: str, left: Any, right: Any) -> ColumnExpression:
        raise NotImplementedError

    def _unary_op(self, op: str) -> ColumnExpression:
        raise NotImplementedError

    def _matrix_product(self, left: Any, right: Any) -> ColumnExpression:
        raise NotImplementedError

    def _indexed(self, index: Any) -> ColumnExpression:
        raise NotImplementedError

    # --- operators -------------------------------------------------------------------
    def __add__(self, other: Any) -> ColumnExpression:
        return self._binary_op("+", self, other)

    def __radd__(self, other: Any) -> ColumnExpression:
        return self._binary_op("+", other, self)

    def __matmul__(self, other: Any) -> ColumnExpression:
        return self._matrix_product(self, other)

    def __rmatmul__(self, other: Any) -> ColumnExpression:
        return self._matrix_product(other, self)

    def __sub__(self, other: Any) -> ColumnExpression:
        return self._binary_op("-", self, other)

    def __rsub__(self, other: Any) -> ColumnExpression:
        return self._binary_op("-", other, self)

    def __mul__(self, other: Any) -> ColumnExpression:
        return self._binary_op("*", self, other)

    def __rmul__(self, other: Any) -> ColumnExpression:
        return self._binary_op("*", other, self)

    def __truediv__(self, other: Any) -> ColumnExpression:
        return self._binary_op("/", self, other)

    def __rtruediv__(self, other: Any) -> ColumnExpression:
        return self._binary_op("/", other, self)

    def __floordiv__(self, other: Any) -> ColumnExpression:
        return self._binary_op("//", self, other)

    def __rfloordiv__(self, other: Any) -> ColumnExpression:
        return self._binary_op("//", other, self)

    def __mod__(self, other: Any) -> ColumnExpression:
        return self._binary_op("%", self, other)

    def __rmod__(self, other: Any) -> ColumnExpression:
        return self._binary_op("%", other, self)

    def __pow__(self, other: Any) -> ColumnExpression:
        return self._binary_op("**", self, other)

    def __rpow__(self, other: Any) -> ColumnExpression:
        return self._binary_op("**", other, self)

    def __eq__(self, other: Any) -> ColumnExpression:  # type: ignore[override]
        return self._binary_op("==", self, other)

    def __ne__(self, other: Any) -> ColumnExpression:  # type: ignore[override]
        return self._binary_op("!=", self, other)

    def __lt__(self, other: Any) -> ColumnExpression:
        return self._binary_op("<", self, other)

    def __le__(self, other: Any) -> ColumnExpression:
        return self._binary_op("<=", self, other)

    def __gt__(self, other: Any) -> ColumnExpression:
        return self._binary_op(">", self, other)

    def __ge__(self, other: Any) -> ColumnExpression:
        return self._binary_op(">=", self, other)

    def __lshift__(self, other: Any) -> ColumnExpression:
        return self._binary_op("<<", self, other)

    def __rlshift__(self, other: Any) -> ColumnExpression:
        return self._binary_op("<<", other, self)

    def __rshift__(self, other: Any) -> ColumnExpression:
        return self._binary_op(">>", self, other)

    def __rrshift__(self, other: Any) -> ColumnExpression:
        return self._binary_op(">>", other, self)

    def __and__(self, other: Any) -> ColumnExpression:
        return self._binary_op("&", self, other)

    def __rand__(self, other: Any) -> ColumnExpression:
        return self._binary_op("&", other, self)

    def __or__(self, other: Any) -> ColumnExpression:
        return self._binary_op("|", self, other)

    def __ror__(self, other: Any) -> ColumnExpression:
        return self._binary_op("|", other, self)

    def __xor__(self, other: Any) -> ColumnExpression:
        return self._binary_op("^", self, other)

    def __rxor__(self, other: Any) -> ColumnExpression:
        return self._binary_op("^", other, self)

    def __invert__(self) -> ColumnExpression:
        return self._unary_op("~")

    def __neg__(self) -> ColumnExpression:
        return self._unary_op("-")

    def __abs__(self) -> ColumnExpression:
        return self._unary_op("abs")

    def __getitem__(self, index: Any) -> ColumnExpression:
        return self._indexed(index)
