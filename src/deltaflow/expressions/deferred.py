"""Expressions resolved by the operation that uses them: ``pw.this.ix(...)`` and
``table.ix(pw.this.ptr)``.

``t.ix(pointer)`` needs to know which table ``pointer`` is evaluated on. When the pointer
mentions ``pw.this`` (or when the indexed table itself is ``pw.this``), that table is only
known once the expression is used: ``DeferredIx`` records the request and gives
:class:`IxColumn` expressions, which the using operation (``select``, ``with_columns``,
``filter``, ``reduce``) rewrites into columns of a real ``ix`` table before typing anything.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from deltaflow import _types as t
from deltaflow.expressions.base import ColumnExpression, ColumnReference, Scope, _counter


class IxColumn(ColumnExpression):
    """Column ``name`` of the row of ``target`` whose id is ``pointer``."""

    def __init__(self, request: DeferredIx, name: str) -> None:
        super().__init__()
        self.request = request
        self.name = name

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.request.pointer,)

    def _infer(self, scope: Scope) -> t.DType:
        raise scope.fail(
            f"ix(...).{self.name} can only be used directly in select, "
            f"with_columns, filter or reduce"
        )

    def __repr__(self) -> str:
        return f"<ix({self.request.pointer!r}).{self.name}>"


class DeferredIx:
    """What ``table.ix(pointer)`` returns when ``pointer``'s table is not known yet."""

    def __init__(
        self, target: Any, pointer: ColumnExpression, *, optional: bool, allow_misses: bool
    ) -> None:
        self.target = target
        self.pointer = pointer
        self.optional = optional
        self.allow_misses = allow_misses

    def __getattr__(self, name: str) -> IxColumn:
        if name.startswith("_"):
            raise AttributeError(name)
        return IxColumn(self, name)

    def __getitem__(self, name: str | list[str]) -> Any:
        if isinstance(name, list):
            return [IxColumn(self, n) for n in name]
        return IxColumn(self, name.name if isinstance(name, ColumnReference) else name)

    def __iter__(self) -> Iterator[IxColumn]:
        columns = getattr(self.target, "column_names", None)
        if columns is None:
            raise TypeError("*pw.this.ix(...) cannot list the columns of pw.this; name them")
        return iter([IxColumn(self, n) for n in columns()])


def transform(
    expr: ColumnExpression, replace: Callable[[ColumnExpression], ColumnExpression | None]
) -> ColumnExpression:
    """``expr`` with every node for which ``replace`` returns an expression replaced by it
    (nodes are copied only where something below them changed)."""
    new = replace(expr)
    if new is not None:
        return new
    clone = copy.copy(expr)
    changed = False
    for attribute, value in vars(expr).items():
        if isinstance(value, ColumnExpression):
            updated: Any = transform(value, replace)
        elif isinstance(value, tuple | list) and any(
            isinstance(v, ColumnExpression) for v in value
        ):
            updated = type(value)(
                transform(v, replace) if isinstance(v, ColumnExpression) else v for v in value
            )
            if all(a is b for a, b in zip(updated, value)):
                updated = value
        else:
            continue
        if updated is not value:
            setattr(clone, attribute, updated)
            changed = True
    if not changed:
        return expr
    clone._uid = next(_counter)
    return clone


def has_ix_columns(expr: ColumnExpression) -> bool:
    return any(isinstance(node, IxColumn) for node in expr.walk())
