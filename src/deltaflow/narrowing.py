"""Small typing rules shared by ``Table`` and join results.

* A filter whose whole condition is ``column.is_not_none()`` (or ``column != None``) keeps
  only rows where that column has a value, so the result types it without ``Optional``
  (as Pathway does; a condition combining it with anything else narrows nothing).
* ``id`` is the row id, never an ordinary column: a select (or reduce) that names an output
  ``id`` is refused when the pipeline is defined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from deltaflow import _types as t
from deltaflow.expressions.base import (
    BinaryOp,
    ColumnExpression,
    ColumnReference,
    IsNone,
    Literal,
    Scope,
)


def not_none_reference(condition: ColumnExpression) -> ColumnReference | None:
    """The column a filter condition requires to have a value, when the condition is
    exactly ``column.is_not_none()`` or ``column != None``."""
    if isinstance(condition, IsNone) and condition.negate:
        argument = condition.arg
    elif isinstance(condition, BinaryOp) and condition.op == "!=":
        sides = (condition.left, condition.right)
        constants = [s for s in sides if isinstance(s, Literal) and s.value is None]
        if len(constants) != 1:
            return None
        argument = sides[1] if constants[0] is sides[0] else sides[0]
    else:
        return None
    return argument if type(argument) is ColumnReference else None


def narrowed_columns(
    columns: Mapping[str, t.DType], condition: ColumnExpression, scope: Scope
) -> dict[str, t.DType]:
    """``columns`` (of the frame a filter reads, typed by ``scope``) after a filter on
    ``condition``: the column it requires to have a value loses ``Optional``."""
    narrowed = dict(columns)
    reference = not_none_reference(condition)
    if reference is None:
        return narrowed
    try:
        column, _ = scope.resolve(reference)
    except (KeyError, ValueError, TypeError):
        return narrowed
    if column in narrowed:
        narrowed[column] = narrowed[column].strip_optional()
    return narrowed


def check_not_id(names: Iterable[str], description: str) -> None:
    """Refuse an output column named ``id`` (the row id is not a column to set)."""
    if "id" in names:
        raise ValueError(
            f"{description}: 'id' cannot be a column name (it is the row id); "
            f"use with_id / with_id_from to set ids"
        )


__all__ = ["check_not_id", "narrowed_columns", "not_none_reference"]
