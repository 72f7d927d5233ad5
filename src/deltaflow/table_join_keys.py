"""What a join matches on: :class:`JoinMode` and the equality conditions
``left_expr == right_expr`` turned into typed key expressions (:func:`equality_keys`).

Plain joins (:mod:`deltaflow.table_join`) and temporal joins (``deltaflow.temporal``) both read
their conditions with these; they are kept apart from :class:`~deltaflow.table_join.JoinResult`
because they know nothing of join results, only of the two sides' scopes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, TypeAlias

from deltaflow import _types as t
from deltaflow.expressions.base import (
    BinaryOp,
    ColumnExpression,
    ColumnReference,
    ExpressionError,
    Scope,
)
from deltaflow.udfs.future import refuse_futures


class JoinMode(enum.Enum):
    """How a join treats rows without a partner."""

    INNER = 0
    LEFT = 1
    RIGHT = 2
    OUTER = 3


_MODE_NAMES = {
    JoinMode.INNER: "inner",
    JoinMode.LEFT: "left",
    JoinMode.RIGHT: "right",
    JoinMode.OUTER: "outer",
}


def fits(expr: ColumnExpression, scope: Scope) -> bool:
    """Whether ``expr`` can be typed in ``scope`` (its columns all belong there)."""
    try:
        scope.dtype_of(expr)
    except (ExpressionError, KeyError, ValueError, AttributeError):
        return False
    return True


JoinKeys: TypeAlias = tuple[
    list[ColumnExpression], list[ColumnExpression], list[t.DType], dict[str, tuple[str, str]]
]


def equality_keys(
    conditions: Iterable[Any],
    left_scope: Scope,
    right_scope: Scope,
    description: str,
    *,
    swapped: str = "refuse",
    not_equality: type[Exception] = ValueError,
    coalesce: bool = True,
    typing_errors: tuple[type[Exception], ...] = (ExpressionError,),
) -> JoinKeys:
    """The key expressions of join conditions ``left == right``: the left keys, the right
    keys, their common types, and the columns named alike on both sides (coalesced into one
    result column). A condition written right-side first is refused (``swapped="refuse"``,
    as plain joins do in Pathway) or turned around (``"swap"``)."""
    left_keys: list[ColumnExpression] = []
    right_keys: list[ColumnExpression] = []
    key_types: list[t.DType] = []
    coalesced: dict[str, tuple[str, str]] = {}
    for condition in conditions:
        if not (isinstance(condition, BinaryOp) and condition.op == "=="):
            raise not_equality(
                f"{description}: join conditions must be equalities "
                f"left_column == right_column, got {condition!r}"
            )
        lhs, rhs = condition.left, condition.right
        if not fits(lhs, left_scope) and fits(rhs, left_scope) and fits(lhs, right_scope):
            if swapped == "refuse":
                raise ValueError(
                    f"{description}: in a join condition the left table's "
                    f"expression goes on the left of ==, the right table's on "
                    f"the right (write {rhs!r} == {lhs!r})"
                )
            lhs, rhs = rhs, lhs
        try:
            lt, rt = left_scope.dtype_of(lhs), right_scope.dtype_of(rhs)
        except typing_errors as exc:
            raise ExpressionError(
                f"{description}: each condition must compare a left "
                f"expression with a right one: {exc}"
            ) from None
        refuse_futures(
            [(f"the condition's key {lhs!r}", lt), (f"the condition's key {rhs!r}", rt)],
            "join",
            description,
        )
        common = t.common_supertype(lt, rt)
        if common is None:
            raise TypeError(
                f"{description}: cannot join {lt!r} with {rt!r} (condition {condition!r})"
            )
        left_keys.append(lhs)
        right_keys.append(rhs)
        key_types.append(common)
        if (
            coalesce
            and isinstance(lhs, ColumnReference)
            and isinstance(rhs, ColumnReference)
            and lhs.name == rhs.name
            and lhs.name != "id"
        ):
            coalesced[lhs.name] = (
                f"__l__{left_scope.resolve(lhs)[0]}",
                f"__r__{right_scope.resolve(rhs)[0]}",
            )
    return left_keys, right_keys, key_types, coalesced
